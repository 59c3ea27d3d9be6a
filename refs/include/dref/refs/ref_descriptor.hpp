#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "caf/error.hpp"
#include "caf/fwd.hpp"
#include "caf/meta/type_name.hpp"

#include "dref/refs/error.hpp"
#include "dref/refs/object_id.hpp"
#include "dref/refs/process_address.hpp"

namespace dref {

/// The first u64 of a descriptor of format 2 (written since cluster
/// protocol 9): no incarnation takes this value (`new_owner_id` never draws
/// it), so a reader tells format 2 from format 1, which starts with the
/// owner's incarnation (`id.owner`). The values below it down to
/// `0xFFFFFFFFFFFFFFF0` are kept for later formats.
constexpr uint64_t ref_descriptor_format2 = 0xFFFFFFFFFFFFFFFFull;

/// How a ref looks on the wire: the object's id plus the address of the
/// process that owns it, so that any process reading the ref can reach the
/// owner (to borrow, fetch, and release) without asking anyone else, plus
/// the type of the value it names.
///
/// Plain value type. Frozen once released (it is part of every value that
/// holds refs, also of durable states and kept values on disk): a new
/// field needs a new format, told apart by its first u64. Format 2 is
/// written, formats 2 and 1 are read (docs/formats.md, "Ref descriptors").
/// Invariant of a well-formed descriptor: `owner.process` is `id.owner`
/// (the id names its owner's incarnation) or 0 (owner unknown), and
/// `holder` is valid exactly when `hold != 0`.
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
  /// The `type_tag` of the value the ref names (`int32`, `std::string`,
  /// ...): a ref read as a `ref<T>` of another `T` fails its reads with
  /// `type_mismatch`. Empty when unknown: in descriptors of format 1, and
  /// in the `contained` lists of the protocol, which name refs only to hold
  /// them.
  std::string type;

  friend bool operator==(const ref_descriptor& x,
                         const ref_descriptor& y) noexcept {
    return x.id == y.id && x.owner == y.owner && x.hold == y.hold
           && x.holder == y.holder && x.type == y.type;
  }
};

/// Flags of format 2 (a u8 after the id): which fields follow.
enum ref_descriptor_flags : uint8_t {
  /// `owner.process` is `id.owner` and is not written again (only the
  /// owner's host and port follow); else the whole `owner` follows.
  owner_is_id_owner = 1,
  /// `hold` and `holder` follow; else both are empty (0, no address).
  has_transit_hold = 2,
};

/// Format 2: the u64 `ref_descriptor_format2`, `type`, `id`, a u8 of
/// `ref_descriptor_flags`, then `owner` (its host and port only, with
/// `owner_is_id_owner`), then `hold` and `holder` (with `has_transit_hold`).
/// Format 1 (up to cluster protocol 8): `id`, `owner`, `hold`, `holder`,
/// no type. Written in format 2; read in either.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ref_descriptor& x) {
  constexpr auto name = caf::meta::type_name("dref.ref_descriptor");
  if constexpr (Inspector::writes_state) {
    // The first u64 tells the format.
    uint64_t first = 0;
    if (auto err = f(name, first))
      return err;
    x = ref_descriptor{};
    if (first != ref_descriptor_format2) {
      x.id.owner = first;
      return f(x.id.seq, x.owner, x.hold, x.holder);
    }
    uint8_t flags = 0;
    if (auto err = f(x.type, x.id, flags))
      return err;
    if ((flags & ~uint8_t{owner_is_id_owner | has_transit_hold}) != 0)
      return make_error(refs_errc::serialization_failed,
                        "a ref descriptor with flags this build does not "
                        "know");
    caf::error err;
    if (flags & owner_is_id_owner) {
      x.owner.process = x.id.owner;
      err = f(x.owner.host, x.owner.port);
    } else {
      err = f(x.owner);
    }
    if (err || (flags & has_transit_hold) == 0)
      return err;
    return f(x.hold, x.holder);
  } else if constexpr (std::is_base_of_v<caf::serializer, Inspector>) {
    uint64_t format = ref_descriptor_format2;
    uint8_t flags = 0;
    if (x.owner.process == x.id.owner)
      flags |= owner_is_id_owner;
    if (x.hold != 0 || x.holder != process_address{})
      flags |= has_transit_hold;
    if (auto err = f(name, format, x.type, x.id, flags))
      return err;
    auto err = (flags & owner_is_id_owner) ? f(x.owner.host, x.owner.port)
                                           : f(x.owner);
    if (err || (flags & has_transit_hold) == 0)
      return err;
    return f(x.hold, x.holder);
  } else {
    // Rendering (deep_to_string): every field, no format marker or flags.
    return f(name, x.type, x.id, x.owner, x.hold, x.holder);
  }
}

} // namespace dref
