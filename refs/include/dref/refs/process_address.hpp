#pragma once

#include <cstdint>
#include <string>

#include "caf/meta/type_name.hpp"

namespace dref {

/// Where one process of a cluster can be reached, and which run of it this
/// is: the host and TCP port of its ref server (the actor that answers the
/// reference protocol for it) and its incarnation.
///
/// The incarnation is a random 64-bit number the process draws when it
/// starts (`new_owner_id`); it is also the `owner` part of every object id
/// the process makes, so an id names its owner's incarnation. A process that
/// restarts gets a new one, so a message or a ref meant for an earlier run
/// can be told apart (CAF 0.17's `node_id` is derived from the machine and
/// the pid and repeats across restarts, so it cannot serve).
///
/// Plain value type. Frozen once released: it is part of every ref
/// descriptor (docs/formats.md).
struct process_address {
  /// The incarnation (never 0 for a real process).
  uint64_t process = 0;
  /// Host of the ref server: an IPv4 address or a host name.
  std::string host;
  /// TCP port of the ref server.
  uint16_t port = 0;

  /// True when the address names a reachable process.
  bool valid() const noexcept {
    return process != 0 && port != 0 && !host.empty();
  }

  friend bool operator==(const process_address& x,
                         const process_address& y) noexcept {
    return x.process == y.process && x.port == y.port && x.host == y.host;
  }

  friend bool operator!=(const process_address& x,
                         const process_address& y) noexcept {
    return !(x == y);
  }
};

/// Renders as `host:port (incarnation <hex>)`.
std::string to_string(const process_address& x);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_address& x) {
  return f(caf::meta::type_name("dref.process_address"), x.process, x.host,
           x.port);
}

} // namespace dref
