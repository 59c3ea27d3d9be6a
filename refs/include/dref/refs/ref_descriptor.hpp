#pragma once

#include <cstdint>
#include <string>

#include "caf/meta/type_name.hpp"

#include "dref/refs/object_id.hpp"

namespace dref {

/// How a ref looks on the wire: the object's id plus the address of the
/// process that owns it, so that any process reading the ref can reach the
/// owner (to borrow, fetch, and release) without asking anyone else.
///
/// Plain value type. Frozen once released (it is part of every value that
/// holds refs): new fields need a new cluster protocol version.
struct ref_descriptor {
  object_id id;
  /// Host of the owner's ref server (today always 127.0.0.1).
  std::string host;
  /// TCP port of the owner's ref server.
  uint16_t port = 0;

  friend bool operator==(const ref_descriptor& x,
                         const ref_descriptor& y) noexcept {
    return x.id == y.id && x.host == y.host && x.port == y.port;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ref_descriptor& x) {
  return f(caf::meta::type_name("dref.ref_descriptor"), x.id, x.host, x.port);
}

} // namespace dref
