#pragma once

// The typed interfaces between the processes of a cluster and the types
// they carry (docs/formats.md). Internal: users never see these.

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
#include "dref/refs/process_address.hpp"
#include "dref/store/buffer.hpp"

namespace dref::internal {

/// The reference protocol of one process: every process of a cluster runs
/// one ref server (the same code, `core/ref_server.hpp`), published at the
/// address its refs' descriptors name. Peers reach it with
/// `remote_actor<ref_server_actor>`.
using ref_server_actor = caf::typed_actor<
  // The value of an object this process owns (a pending one is answered
  // when it is ready); of another process's object, asked from its owner.
  caf::replies_to<get_atom, object_id>::with<value_msg>,
  // A copy this process keeps for the object's owner.
  caf::replies_to<fetch_atom, object_id>::with<value_msg>,
  // Borrowing, step 2 at the owner: ids and their borrow generations, the
  // borrower's address; answered with the ids it does not own.
  caf::replies_to<borrow_atom, std::vector<object_id>, std::vector<uint64_t>,
                  process_address>::with<std::vector<object_id>>,
  // Borrowing, step 4 at the owner: ids, generations, borrower.
  caf::reacts_to<release_atom, std::vector<object_id>, std::vector<uint64_t>,
                 uint64_t>,
  // A receiver of refs sent in plain messages is registered: let go.
  caf::reacts_to<release_hold_atom, std::vector<uint64_t>>,
  // The owner frees copies this process keeps.
  caf::reacts_to<free_atom, std::vector<object_id>>,
  // What this process holds (`dref memory`).
  caf::replies_to<memory_atom>::with<process_memory>,
  // Local only: send what the core queued.
  caf::reacts_to<flush_atom>,
  // Local only: owned objects left pending (answer waiting gets).
  caf::reacts_to<ready_atom, std::vector<object_id>>,
  // Local only: the ref server of a process, connected in the background
  // (null: the connection failed).
  caf::reacts_to<peer_atom, uint64_t, caf::actor>,
  // Local only: a transit or lingering hold's deadline passed.
  caf::reacts_to<tick_atom>,
  // From the node's scheduler: the process with this incarnation died
  // (also when this one never talked to it): its objects fail here, and
  // the copies kept for it go.
  caf::reacts_to<gone_atom, uint64_t>>;

/// Runs the tasks of one worker process, one at a time, in arrival order;
/// the ids that come along are copies its owner frees (frees ride on task
/// batches so that the synchronous path sends no extra message).
using executor_actor = caf::typed_actor<
  caf::reacts_to<submit_atom, std::vector<task_spec>, std::vector<object_id>>>;

/// A worker's answers to its node about itself, and the results of the
/// tasks its own tasks called ("Task trees", docs/architecture.md): the
/// node's scheduler forwards them with the worker that keeps each copy
/// (its id and address; `owner_location` and an empty address for a
/// failure no worker keeps).
using worker_control_actor = caf::typed_actor<
  caf::replies_to<stats_atom>::with<worker_stats>,
  caf::reacts_to<done_atom, worker_id, process_address,
                 std::vector<task_result>>,
  // Local only: send the calls batched so far (their timer).
  caf::reacts_to<flush_atom>>;

/// A worker introduces itself to its driver.
struct worker_registration {
  uint32_t version = 0;
  worker_id id = 0;
  int32_t pid = 0;
  /// The worker's ref server and where it is published.
  process_address address;
  ref_server_actor refs;
  executor_actor executor;
  worker_control_actor control;
  caf::actor echo;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_registration& x) {
  return f(caf::meta::type_name("dref.worker_registration"), x.version, x.id,
           x.pid, x.address, x.refs, x.executor, x.control, x.echo);
}

/// The driver: worker registrations, task results, its timers, durable
/// actors' kept copies, and the report `dref memory` asks for. Its refs are
/// served by its ref server, like every process's.
using driver_actor = caf::typed_actor<
  // Answered with the driver's ref server and its address.
  caf::replies_to<register_atom, worker_registration>::with<
    process_address, ref_server_actor>,
  caf::reacts_to<done_atom, worker_id, std::vector<task_result>>,
  // A worker's tasks called these: place them; the worker owns the results.
  caf::reacts_to<submit_atom, worker_id, std::vector<task_spec>>,
  caf::reacts_to<flush_atom, bool>,
  caf::reacts_to<check_atom, int32_t>,
  caf::reacts_to<ckpt_atom>,
  caf::replies_to<kept_atom, object_id>::with<value_msg>,
  caf::replies_to<kept_atom, std::vector<object_id>>::with<
    std::vector<object_id>>,
  caf::replies_to<memory_atom>::with<process_memory, std::vector<uint16_t>>>;

/// Registers every message type above and the error categories.
void add_message_types(caf::actor_system_config& cfg);

/// Applies the settings both drivers and workers use (scheduler threads,
/// heartbeats, middleman) and loads the middleman.
void configure_system(caf::actor_system_config& cfg, const config& rc);

} // namespace dref::internal
