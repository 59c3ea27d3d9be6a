#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "caf/actor_addr.hpp"
#include "caf/stateful_actor.hpp"
#include "caf/typed_event_based_actor.hpp"
#include "caf/typed_response_promise.hpp"

#include "wire/interfaces.hpp"

#include "dref/refs/ref_core.hpp"

namespace dref::internal {

class process_refs;

/// The state of a process's ref server: the actor that answers the
/// reference protocol for the process (`ref_server_actor`) and sends what
/// its `ref_core` queues. Every process runs it, with the same code.
///
/// Who may touch it: the actor itself (its state is touched only by its
/// handlers). It never blocks: connections it lacks are made in the
/// background (`peer_directory::connect_later`) while the messages for
/// that peer wait here (`parked`).
///
/// Invariants: every promise it holds is delivered exactly once: when the
/// object is ready (`waiters`), when the forwarded request is answered,
/// fails or its peer goes down (`forwarded`), or with `runtime_down` when
/// the actor ends.
struct ref_server_state {
  ~ref_server_state();

  std::shared_ptr<process_refs> refs;
  /// Gets of owned objects that are still pending, with `node_ok`.
  std::unordered_map<
    object_id,
    std::vector<std::pair<caf::typed_response_promise<value_msg>, bool>>>
    waiters;
  /// Gets forwarded to another process: token -> (peer, owner asked?,
  /// node_ok, promise).
  struct forward {
    caf::actor_addr peer;
    bool owner = false;
    bool node_ok = false;
    object_id id;
    caf::typed_response_promise<value_msg> rp;
  };
  std::map<uint64_t, forward> forwarded;
  uint64_t next_token = 1;
  /// Peers monitored: handle -> incarnation.
  std::unordered_map<caf::actor_addr, uint64_t> monitored;
  /// Messages for peers not connected yet, by incarnation.
  struct parked_msgs {
    std::vector<borrow_request> registrations;
    std::vector<release_request> releases;
    std::vector<hold_release_request> hold_releases;
    std::vector<std::pair<object_id, caf::typed_response_promise<value_msg>>>
      gets;
  };
  std::unordered_map<uint64_t, parked_msgs> parked;
  static inline const char* name = "dref.ref_server";
};

using ref_server_pointer = ref_server_actor::stateful_pointer<ref_server_state>;

/// The behavior of a process's ref server (spawned by `process_refs::start`).
/// The numbered protocols it serves are in `ref_core.hpp` and
/// docs/architecture.md ("Borrowing and nested refs", "Reading a value").
ref_server_actor::behavior_type ref_server_fn(ref_server_pointer self,
                                              std::shared_ptr<process_refs>
                                                refs);

} // namespace dref::internal
