#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "dref/actors/task_spec.hpp"

namespace dref::internal {

/// The results a worker's executor has made and not yet sent to their
/// owner ("The call path", step 6, in docs/architecture.md). Batching may
/// coalesce results, never withhold them: a result leaves at the end of
/// its batch, or at most `max_delay` after it was made while the executor
/// is still busy with later tasks of the batch (a task that blocks does
/// not pin the results made before it).
///
/// Protocol:
/// 1. The executor `push`es each result as its task ends, saying whether
///    more tasks of the batch follow. A result entering an empty outbox
///    while more follow arms the timer (deadline: now + `max_delay`),
///    unless it is armed already. A `push` past the deadline sends at once.
/// 2. At the end of each batch the executor calls `flush`: what is pending
///    is sent, the timer disarmed.
/// 3. The timer thread wakes at the deadline and sends what is pending if
///    the executor did not (it is still running a task).
/// Every send happens under `mtx_`, and `send` hands the results to CAF
/// synchronously (a remote proxy enqueues them to the connection at once),
/// so the owner receives results in the order they were pushed: the order
/// the worker ran its tasks, on which "Rollback after a failed write"
/// (step 4) depends. Termination: each result is sent by the batch's
/// `flush` or by the first timer expiry after it was pushed, whichever is
/// first; `stop` ends the timer thread (pending results are dropped: the
/// executor is going away, and so is its owner's interest in them).
///
/// Cost: a batch of one task (the synchronous call path) never arms the
/// timer; a longer batch arms it once per send (so at most once per
/// `max_delay`, plus once per batch): a lock and a condition-variable
/// notify.
///
/// Who touches it: the executor's thread (`push`, `flush`) and the timer
/// thread it owns; every member function locks `mtx_`, which guards every
/// field. `send` is called with `mtx_` held and must not call back.
/// Owned by the executor's state; the destructor stops and joins the
/// timer thread.
class result_outbox {
public:
  using clock_type = std::chrono::steady_clock;
  using send_fn = std::function<void(std::vector<task_result>&&)>;

  result_outbox(send_fn send, clock_type::duration max_delay);

  ~result_outbox();

  result_outbox(const result_outbox&) = delete;
  result_outbox& operator=(const result_outbox&) = delete;

  /// Step 1: one more result; `more_follow`: the executor goes on with
  /// another task of the batch before its next `flush`.
  void push(task_result r, bool more_follow);

  /// Step 2: sends what is pending (nothing if empty), disarms the timer.
  void flush();

  /// Ends the timer thread; later pushes are dropped. Idempotent.
  void stop();

  /// Sends the timer made since the start (step 3; for tests).
  size_t timer_sends() const;

  /// True while the timer is armed (for tests).
  bool armed() const;

private:
  // @pre mtx_ held. Sends what is pending and disarms the timer.
  void send_locked();
  // The timer thread (step 3).
  void run_timer();

  const send_fn send_;
  const clock_type::duration max_delay_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<task_result> pending_;         // guarded by mtx_
  std::optional<clock_type::time_point> deadline_; // armed timer; mtx_
  size_t timer_sends_ = 0;                   // guarded by mtx_
  bool stopped_ = false;                     // guarded by mtx_
  std::thread timer_;
};

} // namespace dref::internal
