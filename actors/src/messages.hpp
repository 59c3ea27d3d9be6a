#pragma once

// The typed interfaces between a driver (owner) and its workers, and the
// types they carry. Internal: users never see these.

#include <cstdint>
#include <memory>
#include <vector>

#include "caf/actor.hpp"
#include "caf/fwd.hpp"
#include "caf/meta/type_name.hpp"
#include "caf/replies_to.hpp"
#include "caf/typed_actor.hpp"

#include "dref/actors/atoms.hpp"
#include "dref/actors/memory.hpp"
#include "dref/actors/runtime.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/refs/object_id.hpp"
#include "dref/store/buffer.hpp"

namespace dref::internal {

/// Runs the tasks of one worker process, one at a time, in arrival order;
/// the ids that come along are freed from the worker's store (frees ride on
/// task batches so that the synchronous path sends no extra message).
using executor_actor = caf::typed_actor<
  caf::reacts_to<submit_atom, std::vector<task_spec>, std::vector<object_id>>>;

/// Serves a worker's stored values to the owner and to other workers.
///
/// It is also the worker's ref server: the owner of the objects the worker's
/// tasks `put` (get, borrow, release), and the address other processes
/// name in the refs it hands out.
using store_actor = caf::typed_actor<
  caf::replies_to<fetch_atom, object_id>::with<value_msg>,
  caf::replies_to<get_atom, object_id>::with<value_msg>,
  caf::replies_to<borrow_atom, std::vector<object_id>, uint64_t,
                  caf::actor>::with<std::vector<object_id>>,
  caf::reacts_to<release_atom, std::vector<object_id>, uint64_t>,
  caf::reacts_to<release_hold_atom, std::vector<uint64_t>>,
  caf::reacts_to<free_atom, std::vector<object_id>>,
  caf::replies_to<stats_atom>::with<worker_stats>,
  caf::replies_to<memory_atom>::with<process_memory>>;

/// A worker introduces itself to its owner.
struct worker_registration {
  uint32_t version = 0;
  worker_id id = 0;
  int32_t pid = 0;
  uint16_t port = 0;
  /// The worker's process id as an owner (the `owner` of the ids it makes).
  uint64_t process = 0;
  executor_actor executor;
  store_actor store;
  caf::actor echo;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_registration& x) {
  return f(caf::meta::type_name("dref.worker_registration"), x.version, x.id,
           x.pid, x.port, x.process, x.executor, x.store, x.echo);
}

/// The owner: receives registrations and results, answers `get`, and is
/// the driver's ref server (borrow, release; see docs/architecture.md,
/// "Borrowing").
using owner_actor = caf::typed_actor<
  caf::replies_to<borrow_atom, std::vector<object_id>, uint64_t,
                  caf::actor>::with<std::vector<object_id>>,
  caf::reacts_to<release_atom, std::vector<object_id>, uint64_t>,
  caf::reacts_to<release_hold_atom, std::vector<uint64_t>>,
  caf::reacts_to<register_borrow_atom, uint64_t, std::vector<object_id>>,
  caf::replies_to<register_atom, worker_registration>::with<caf::ok_atom>,
  caf::reacts_to<done_atom, worker_id, std::vector<task_result>>,
  caf::reacts_to<flush_atom, bool>,
  caf::reacts_to<check_atom, int32_t>,
  caf::reacts_to<ckpt_atom>,
  caf::replies_to<get_atom, object_id>::with<value_msg>,
  caf::replies_to<kept_atom, object_id>::with<value_msg>,
  caf::replies_to<kept_atom, std::vector<object_id>>::with<
    std::vector<object_id>>,
  caf::replies_to<memory_atom>::with<process_memory, std::vector<uint16_t>>>;

/// True if `err` says a value could not be fetched because its owner or
/// holder is gone, unreachable, or does not know the object (timeouts are
/// not: the owner may just be slow, and the caller's time is up).
/// A ref that fails so may still be read from a durable actor's kept copy
/// ("Refs in durable state", docs/architecture.md).
bool is_fetch_failure(const caf::error& err);

/// True if `err` is the failure of an object itself, as its owner stores
/// it (its task threw, its worker died, ...), as opposed to a failure to
/// read it.
bool is_object_failure(const caf::error& err);

/// A buffer viewing a heap copy of a value, which it keeps alive.
inline buffer view_of(std::shared_ptr<const blob> b) {
  auto data = b->data();
  auto size = b->size();
  return buffer{data, size, 0, std::move(b)};
}

/// Registers every message type above and the error categories.
void add_message_types(caf::actor_system_config& cfg);

/// Applies the settings both drivers and workers use (scheduler threads,
/// heartbeats, middleman) and loads the middleman.
void configure_system(caf::actor_system_config& cfg, const config& rc);

} // namespace dref::internal
