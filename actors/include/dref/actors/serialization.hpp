#pragma once

#include <string>
#include <typeinfo>
#include <type_traits>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"
#include "caf/error.hpp"
#include "caf/meta/type_name.hpp"

#include "dref/refs/error.hpp"
#include "dref/refs/fwd.hpp"

namespace dref {

/// The value of a call whose function returns `void`.
struct unit_t {
  friend bool operator==(unit_t, unit_t) noexcept {
    return true;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unit_t&) {
  return f(caf::meta::type_name("dref.unit"));
}

/// Maps a function's return type to the type its ref holds.
template <class R>
using result_type_t = std::conditional_t<std::is_void_v<R>, unit_t,
                                         std::decay_t<R>>;

/// A name for `T` that is equal in every process running the same build;
/// checked by workers so that a mismatch fails with `type_mismatch` instead
/// of misreading bytes.
template <class T>
const std::string& type_tag() {
  static const std::string tag = typeid(T).name();
  return tag;
}

/// Serializes `x` into `out` (appending) with CAF's binary format.
template <class T>
caf::error to_blob(const T& x, blob& out) {
  caf::binary_serializer sink{nullptr, out};
  if (auto err = sink(const_cast<T&>(x)))
    return make_error(refs_errc::serialization_failed, "cannot serialize a "
                                                         + type_tag<T>());
  return caf::none;
}

/// Reads `x` from `in`; fails unless exactly all bytes are consumed.
template <class T>
caf::error from_blob(const blob& in, T& x) {
  caf::binary_deserializer source{nullptr, in};
  if (auto err = source(x))
    return make_error(refs_errc::serialization_failed,
                      "cannot deserialize a " + type_tag<T>());
  if (source.remaining() != 0)
    return make_error(refs_errc::serialization_failed,
                      "trailing bytes after a " + type_tag<T>());
  return caf::none;
}

} // namespace dref
