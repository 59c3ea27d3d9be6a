#pragma once

// The state of a durable actor instance a worker hosts, and how it is saved
// with the values its refs refer to ("Refs in durable state",
// docs/architecture.md).

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "caf/error.hpp"

#include "dref/actors/registry.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/refs/ref.hpp"

namespace dref::internal {

class worker_context;

/// One actor instance hosted by a worker; owned by its executor's actor
/// table, touched only by the executor's thread.
struct actor_instance {
  const actor_class_entry* cls = nullptr;
  std::shared_ptr<void> object;
  /// Name of a durable actor, empty otherwise.
  std::string durable;
  /// Durable actors: the sequence table that belongs to the state.
  sequence_table table;
  /// Durable actors: the values the last state sent to the owner refers
  /// to (id -> the refs inside that value); their values were sent with it
  /// or before ("Refs in durable state", docs/architecture.md). Empty
  /// after a restore: the next state sends every value again.
  std::map<object_id, std::vector<object_id>> kept;
};

/// A durable actor's state after a task, to travel with its result.
struct durable_state {
  std::string name;
  blob state;
  sequence_table table;
  bool set = false;
  bool unchanged = false; // a const method ran: nothing to write
  bool refused = false;   // the state could not be saved: roll back
  std::vector<object_id> kept;
  std::vector<kept_ref_value> kept_values;
};


/// Refs in durable state, step 1: the values `refs` (collected from the
/// state) refer to, transitively, go with the state; those sent with an
/// earlier state of `inst` are not sent again. A value that is itself a
/// failure (`is_object_failure`: its task failed) is not kept; any other
/// error refuses the state (`persist_errc::io_error` naming the actor and
/// the value).
caf::error keep_values(actor_instance& inst, worker_context& ctx,
                       std::vector<ref_base>& refs, durable_state& out);

/// Saves the state of a durable instance into `out`, with the values its
/// refs refer to. On failure `out` says the state was refused.
caf::error save_state(actor_instance& inst, worker_context& ctx,
                      durable_state& out);

} // namespace dref::internal
