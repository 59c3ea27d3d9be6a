#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <unordered_map>
#include <vector>

#include "caf/expected.hpp"

#include "worker/durable_state.hpp"
#include "worker/result_sink.hpp"

#include "dref/actors/task_spec.hpp"
#include "dref/refs/ref.hpp"

namespace dref::internal {

class worker_context;

/// The actor instances a worker hosts, by actor id. Touched by the task
/// pool's threads: the map itself only under `mtx` (`find`, `emplace`,
/// `erase`); an instance only by its actor's task, and one actor's tasks
/// run one at a time (`task_pool`, rule 2), so an element is never touched
/// by two threads at once. `count` is read by the worker's stats too.
struct actor_table {
  /// The instance of `actor`, or null.
  actor_instance* find(uint64_t actor);
  /// The slot of `actor` (made empty if new); true if it was new.
  std::pair<actor_instance*, bool> emplace(uint64_t actor);
  /// Drops `actor`; true if it existed.
  bool erase(uint64_t actor);

  std::shared_ptr<std::mutex> mtx = std::make_shared<std::mutex>();
  std::unordered_map<uint64_t, actor_instance> instances;
  std::shared_ptr<std::atomic<uint64_t>> count
    = std::make_shared<std::atomic<uint64_t>>(0);
};

/// One task run in a worker, as its executor does it:
/// 1. resolve the arguments (inline; an object this worker owns; a copy it
///    keeps; the node store, read in place; another process), holding the
///    refs inside them (registered before the task runs, see
///    `process_refs::hold`);
/// 2. check the types against the registered signature and run the
///    function, constructor or method (an exception becomes `task_failed`);
/// 3. for a durable actor, save its state with the values its refs refer to
///    (`saved`).
/// Returns the serialized result or the error. The refs the arguments hold
/// land in `held` (the caller drops them after storing the result); the
/// refs inside the result in `out_refs`. A result above the inline limit
/// may be written through `sink` straight into the node store.
/// Termination: every read is bounded (`fetch_timeout`); the task's own
/// code is the user's.
caf::expected<blob> run_task(worker_context& ctx, actor_table& actors,
                             const task_spec& t, durable_state& saved,
                             std::vector<object_id>& held,
                             std::vector<ref_base>& out_refs,
                             node_result_sink* sink);

} // namespace dref::internal
