#pragma once

#include <cstddef>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"
#include "caf/error.hpp"
#include "caf/deserializer.hpp"
#include "caf/detail/serialized_size.hpp"
#include "caf/meta/type_name.hpp"
#include "caf/serializer.hpp"
#include "caf/serializer_impl.hpp"

#include "dref/refs/error.hpp"
#include "dref/refs/fwd.hpp"
#include "dref/refs/ref.hpp"
#include "dref/refs/type_tag.hpp"
#include "dref/store/buffer.hpp"

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

/// Serializes `x` into `out` (appending) with CAF's binary format.
template <class T>
caf::error to_blob(const T& x, blob& out) {
  caf::binary_serializer sink{nullptr, out};
  if (auto err = sink(const_cast<T&>(x)))
    return make_error(refs_errc::serialization_failed, "cannot serialize a "
                                                         + type_tag<T>());
  return caf::none;
}

/// The serialized bytes of one value, not owned: an argument as the
/// registry's invokers read it (from a task, a worker's store, or straight
/// from a mapped node-store segment).
struct byte_view {
  const char* data = nullptr;
  size_t size = 0;
};

/// Reads `x` from `size` bytes at `data`; fails unless exactly all bytes are
/// consumed.
template <class T>
caf::error from_bytes(const char* data, size_t size, T& x) {
  caf::binary_deserializer source{static_cast<caf::execution_unit*>(nullptr),
                                  data, size};
  if (auto err = source(x))
    return make_error(refs_errc::serialization_failed,
                      "cannot deserialize a " + type_tag<T>());
  if (source.remaining() != 0)
    return make_error(refs_errc::serialization_failed,
                      "trailing bytes after a " + type_tag<T>());
  return caf::none;
}

/// Reads `x` from `in`; fails unless exactly all bytes are consumed.
template <class T>
caf::error from_blob(const blob& in, T& x) {
  return from_bytes(in.data(), in.size(), x);
}

// -- zero-copy buffers ---------------------------------------------------------

/// While alive, every `dref::buffer` deserialized on this thread from bytes
/// that lie inside one of `sources` becomes a view of those bytes, kept
/// alive by that source's handle (a mapped node-store segment, or a stored
/// heap copy), instead of a heap copy. The runtime sets one around reading
/// task arguments and around `get`.
/// Who may touch it: the thread that made it, on the stack only; `sources`
/// must outlive the scope. Scopes nest; the innermost one counts.
class zero_copy_scope {
public:
  explicit zero_copy_scope(const std::vector<buffer>& sources) noexcept;
  ~zero_copy_scope();
  zero_copy_scope(const zero_copy_scope&) = delete;
  zero_copy_scope& operator=(const zero_copy_scope&) = delete;

private:
  const std::vector<buffer>* prev_;
};

namespace detail {

/// Writes a buffer as a sequence of `size()` bytes (begin_sequence, one
/// apply_raw, end_sequence): the same bytes as a `std::vector<char>`.
caf::error save_buffer(caf::serializer& f, const buffer& x);

/// Reads a buffer written by `save_buffer`: a view when the bytes lie in a
/// source of the current `zero_copy_scope` (and `f` is a binary
/// deserializer), else a heap-owned copy.
caf::error load_buffer(caf::deserializer& f, buffer& x);

} // namespace detail

/// Serializes a `dref::buffer` as a length-prefixed byte sequence; see
/// `zero_copy_scope` for when reading it back copies nothing.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, buffer& x) {
  if constexpr (std::is_base_of_v<caf::serializer, Inspector>)
    return detail::save_buffer(f, x);
  else if constexpr (std::is_base_of_v<caf::deserializer, Inspector>)
    return detail::load_buffer(f, x);
  else
    return f(caf::meta::type_name("dref.buffer"));
}

// -- results written in place ------------------------------------------------

/// Where a large task result is written in place: a worker sets one (a
/// region of the node store) around each task, so that a result above
/// `threshold()` serialized bytes goes straight into shared memory instead
/// of through a heap blob (see `write_value`).
/// Who may touch it: the thread running the task, through the innermost
/// `result_sink_scope`.
class result_sink {
public:
  virtual ~result_sink() = default;
  /// Results of more serialized bytes than this are offered to `open`.
  virtual size_t threshold() const = 0;
  /// A writable region of exactly `size` bytes, or null (the result is then
  /// serialized into a blob as usual, e.g. when the store is full).
  virtual char* open(size_t size) = 0;
  /// The region holds the whole value now (or, with `ok == false`, the
  /// value could not be written: the region is given up).
  virtual void close(bool ok) = 0;
  /// Offered a result that is a `dref::buffer` before anything else: true
  /// if its bytes are a node-store segment that task code filled in place
  /// (`buffer_writer`) and the sink sealed that segment as the result (no
  /// copy; nothing else is written); false to serialize it as usual.
  virtual bool seal_in_place(const buffer&) {
    return false;
  }
};

/// Makes `sink` the current result sink of this thread while alive.
/// Who may touch it: the thread that made it, on the stack only.
class result_sink_scope {
public:
  explicit result_sink_scope(result_sink* sink) noexcept;
  ~result_sink_scope();
  result_sink_scope(const result_sink_scope&) = delete;
  result_sink_scope& operator=(const result_sink_scope&) = delete;

private:
  result_sink* prev_;
};

namespace detail {

/// The sink of the innermost `result_sink_scope` of this thread, or null.
result_sink* current_result_sink() noexcept;

/// A fixed memory region as the container of a CAF binary serializer:
/// writes past its end are dropped and flagged.
struct region_buffer {
  using value_type = char;
  char* base = nullptr;
  size_t capacity = 0;
  size_t used = 0;
  bool overflow = false;
  size_t size() const noexcept {
    return used;
  }
  char* data() noexcept {
    return base;
  }
  char* end() noexcept {
    return base + used;
  }
  void insert(char*, const char* first, const char* last) {
    auto n = static_cast<size_t>(last - first);
    if (n > capacity - used) {
      overflow = true;
      return;
    }
    std::memcpy(base + used, first, n);
    used += n;
  }
  void insert(char*, size_t n, int value) {
    if (n > capacity - used) {
      overflow = true;
      return;
    }
    std::memset(base + used, value, n);
    used += n;
  }
};

} // namespace detail

/// Serializes a task's result `x`: a `dref::buffer` filled in place in the
/// node store is sealed as it is (`result_sink::seal_in_place`); else
/// straight into the current result sink's region when there is one and
/// `x` is larger than its threshold (then `out` stays empty), else into
/// `out` (as `to_blob`). A size pass comes first; refs met during it are
/// not collected (the write collects them).
template <class T>
caf::error write_value(const T& x, blob& out) {
  if (auto sink = detail::current_result_sink()) {
    if constexpr (std::is_same_v<T, buffer>)
      if (sink->seal_in_place(x))
        return caf::none; // filled in place by the task: sealed, no copy
    size_t size = 0;
    {
      std::vector<ref_base> ignored;
      ref_collect_scope not_collected{ignored};
      caf::detail::serialized_size_inspector f{
        static_cast<caf::execution_unit*>(nullptr)};
      if (!f(const_cast<T&>(x)))
        size = f.result();
    }
    if (size > sink->threshold()) {
      if (auto region = sink->open(size)) {
        detail::region_buffer buf{region, size};
        caf::serializer_impl<detail::region_buffer> f{
          static_cast<caf::execution_unit*>(nullptr), buf};
        auto err = f(const_cast<T&>(x));
        bool ok = !err && !buf.overflow && buf.used == size;
        sink->close(ok);
        if (!ok)
          return make_error(refs_errc::serialization_failed,
                            "cannot serialize a " + type_tag<T>()
                              + " into the node store");
        return caf::none;
      }
    }
  }
  return to_blob(x, out);
}

} // namespace dref
