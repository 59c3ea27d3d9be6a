#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "caf/meta/type_name.hpp"

namespace dref {

/// Names one immutable object in the cluster.
///
/// An id is made once by the object's owner and never reused: `owner` is a
/// random 64-bit number drawn when the owning process starts, `seq` counts up
/// from 1 inside that owner. The pair is therefore unique across processes
/// and restarts without any coordination. A default-constructed id (both
/// zero) names nothing. Plain value type: copy freely, from any thread.
struct object_id {
  uint64_t owner = 0;
  uint64_t seq = 0;

  /// True when the id names an object.
  bool valid() const noexcept {
    return seq != 0;
  }

  friend bool operator==(const object_id& x, const object_id& y) noexcept {
    return x.owner == y.owner && x.seq == y.seq;
  }
  friend bool operator!=(const object_id& x, const object_id& y) noexcept {
    return !(x == y);
  }
  friend bool operator<(const object_id& x, const object_id& y) noexcept {
    return x.owner != y.owner ? x.owner < y.owner : x.seq < y.seq;
  }
};

/// A fresh random process id for the `owner` part of the ids a process
/// makes (never 0, never one of the top 16 values, which mark formats of
/// `ref_descriptor`).
uint64_t new_owner_id();

/// Renders as `<owner hex>:<seq>`.
std::string to_string(const object_id& x);

/// Parses what `to_string` renders (exactly 16 lower-case hex digits, a
/// colon, a decimal seq without sign or leading zeros); nothing otherwise.
std::optional<object_id> object_id_from_string(std::string_view text);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, object_id& x) {
  return f(caf::meta::type_name("dref.object_id"), x.owner, x.seq);
}

} // namespace dref

namespace std {
template <>
struct hash<dref::object_id> {
  size_t operator()(const dref::object_id& x) const noexcept {
    // seq varies fastest; mix owner in so ids of many owners spread.
    return static_cast<size_t>(x.seq * 0x9E3779B97F4A7C15ull
                               ^ (x.owner + (x.owner >> 29)));
  }
};
} // namespace std
