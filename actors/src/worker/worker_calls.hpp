#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/process_refs.hpp"
#include "wire/interfaces.hpp"

#include "dref/actors/task_spec.hpp"
#include "dref/refs/ref.hpp"

namespace dref::internal {

class worker_context;

/// The calls a worker's own tasks make ("Task trees" in
/// docs/architecture.md): the worker owns their results, like the driver
/// owns its calls' results, through the same owner half of the call path
/// (`submit/call_owner.hpp`); the node's scheduler (the driver's dispatcher
/// today, the node service's in stage 4) places them on workers.
///
/// Protocol of one call:
/// 1. `submit` (a task thread): a new id owned by this worker enters its
///    ownership table as pending, with the task as lineage; the arguments
///    are protected (`protect_args`); every ref argument names its owner
///    (`borrowed_ref`, `from`); the task goes to the scheduler
///    (`submit_atom`): at once when none of this worker's calls is in
///    flight (latency), else in the next batch, sent when the batch is
///    full, when a task of this worker waits or ends, when results come
///    back, or at most `max_delay` later (the control actor's timer):
///    batching coalesces calls, never withholds them. The caller gets the
///    ref at once.
/// 2. The scheduler places and runs it like any task; the worker that ran
///    it keeps the result as a copy for this worker and reports it to the
///    scheduler, which forwards it (`done_atom`) with the worker keeping the
///    copy (or a failure: that worker died, no worker left).
/// 3. `on_results` (the control actor): the copy's worker is connected
///    first (the copies there are read and freed through it), then each
///    result completes its object (`complete_owned`), ends its arguments'
///    protection, and wakes readers.
/// Termination: step 2 ends with a result or a failure as for every task;
/// when this worker dies its objects fail with `owner_died` at every
/// borrower, and the tasks its tasks called run to their end, their
/// copies freed by the scheduler.
///
/// Who touches it: task threads (`submit`) and the control actor
/// (`on_results`); its state is guarded by the worker's ref mutex
/// (`process_refs::mutex()`), which `location` is called under.
/// Owned by the worker context.
class worker_calls {
public:
  worker_calls(worker_context& ctx, driver_actor scheduler);

  /// Step 1; errors become a failed ref.
  ref_base submit(task_spec spec, const void* call_site);

  /// Sends the calls batched so far (step 1). Any thread.
  void flush();

  /// The actor whose timer bounds how long a batch waits (`flush_atom`).
  void set_timer(caf::actor control);

  /// A ref owned by this worker that failed with `err` at once.
  ref_base failed(caf::error err);

  /// Step 3 for the results run at worker `w` (published at `at`).
  void on_results(worker_id w, const process_address& at,
                  std::vector<task_result>& results);

  /// The ref server of location `w` (a worker keeping copies of results
  /// this worker owns), or null. @pre the ref mutex held.
  caf::actor location(worker_id w);

  /// Calls submitted and not yet answered.
  size_t in_flight();

  /// Longest a batched call waits before it is sent.
  static constexpr auto max_delay = std::chrono::milliseconds{2};

  /// Most calls in one batch.
  static constexpr size_t max_batch = 1024;

private:
  worker_context& ctx_;
  driver_actor scheduler_;
  caf::actor timer_;
  // Calls not yet sent, and whether the timer is armed for them.
  std::mutex batch_mtx_;
  std::vector<task_spec> batch_;   // guarded by batch_mtx_
  bool armed_ = false;             // guarded by batch_mtx_
  // Guarded by the ref mutex:
  std::unordered_map<object_id, std::shared_ptr<const task_spec>> in_flight_;
  std::unordered_map<worker_id, process_address> workers_;
};

} // namespace dref::internal
