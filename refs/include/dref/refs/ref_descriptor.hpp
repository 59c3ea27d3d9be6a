#pragma once

#include <cstdint>
#include <string>

#include "caf/meta/type_name.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/refs/process_address.hpp"

namespace dref {

/// How a ref looks on the wire: the object's id plus the address of the
/// process that owns it, so that any process reading the ref can reach the
/// owner (to borrow, fetch, and release) without asking anyone else.
///
/// Plain value type. Frozen once released (it is part of every value that
/// holds refs): new fields need a new cluster protocol version.
/// Invariant of a well-formed descriptor: `owner.process == id.owner`
/// (the id names its owner's incarnation), and `holder` is valid exactly
/// when `hold != 0`.
struct ref_descriptor {
  object_id id;
  /// The owner's ref server and incarnation.
  process_address owner;
  /// A ref sent in a plain CAF message: the sender keeps the object alive
  /// under this token (a *transit hold*) until the receiver, once it is a
  /// registered borrower, tells it to let go. 0 for refs inside dref values
  /// (their holders are described by the protocol, docs/architecture.md).
  uint64_t hold = 0;
  /// The process keeping the transit hold.
  process_address holder;

  friend bool operator==(const ref_descriptor& x,
                         const ref_descriptor& y) noexcept {
    return x.id == y.id && x.owner == y.owner && x.hold == y.hold
           && x.holder == y.holder;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ref_descriptor& x) {
  return f(caf::meta::type_name("dref.ref_descriptor"), x.id, x.owner, x.hold,
           x.holder);
}

} // namespace dref
