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
  /// A ref sent in a plain CAF message: the sender keeps the object alive
  /// under this token (a *transit hold*) until the receiver, once it is a
  /// registered borrower, tells it to let go. 0 for refs inside dref values
  /// (their holders are described by the protocol, docs/architecture.md).
  uint64_t hold = 0;
  /// The ref server of the process keeping the transit hold.
  std::string holder_host;
  uint16_t holder_port = 0;

  friend bool operator==(const ref_descriptor& x,
                         const ref_descriptor& y) noexcept {
    return x.id == y.id && x.host == y.host && x.port == y.port
           && x.hold == y.hold && x.holder_host == y.holder_host
           && x.holder_port == y.holder_port;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ref_descriptor& x) {
  return f(caf::meta::type_name("dref.ref_descriptor"), x.id, x.host, x.port,
           x.hold, x.holder_host, x.holder_port);
}

} // namespace dref
