#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "caf/timespan.hpp"

#include "core/blocking.hpp"

#include "dref/actors/task_spec.hpp"

namespace dref::internal {

/// The threads that run a worker's tasks ("Task trees" in
/// docs/architecture.md). Normally one task runs at a time, in arrival
/// order. When a running task waits (for a value, a fetch, its children:
/// every wait of a task thread is a `blocking_scope`), its slot is given to
/// the next task, on an idle thread or a new one, up to `max_threads`: a
/// task waiting on children it called does not starve the worker, and a
/// recursive task tree completes as long as fewer than `max_threads` of its
/// tasks wait in one worker at once.
///
/// Rules:
/// 1. At most one task runs that is not waiting (a task that stops waiting
///    goes on at once, so briefly there may be more).
/// 2. Tasks start in arrival order, except that a task of an actor with a
///    task running (or waiting) is passed over: one actor's tasks run one
///    at a time, in arrival order.
/// 3. A task reading a result that a task of this pool is still making
///    waits for it (`await_produced`, itself a wait), so a consumer that
///    starts while its producer waits does not read a missing copy.
///
/// Who touches it: the executor actor (`push`, `stop`) and the pool's own
/// threads; every member locks the shared state's mutex. Lifetime: the
/// threads share the state, so `stop` never waits for a task that does not
/// end (a thread still running user code finishes it and exits).
class task_pool {
public:
  /// Runs one task and reports it; `more_follow`: a later task of the same
  /// batch follows.
  using run_fn = std::function<void(task_spec& t, bool more_follow)>;
  /// Called after the last task of a batch, and whenever the queue ran dry
  /// (send what is pending: results leave at the end of their batch, as
  /// they did when one thread ran the batch).
  using idle_fn = std::function<void()>;

  task_pool(run_fn run, idle_fn idle, size_t max_threads);
  ~task_pool();

  task_pool(const task_pool&) = delete;
  task_pool& operator=(const task_pool&) = delete;

  /// Queues `batch` in order.
  void push(std::vector<task_spec>&& batch);

  /// Idle threads exit, running ones after their task; later pushes are
  /// dropped. Idempotent.
  void stop();

  /// Rule 3: waits at most `timeout` until no task queued or running here
  /// makes `id`; false on timeout.
  bool await_produced(const object_id& id, caf::timespan timeout);

  /// True if a task queued or running here makes `id`.
  bool producing(const object_id& id) const;

  /// Threads started so far (tests, stats).
  size_t threads() const;

private:
  struct state;

  static void run_thread(std::shared_ptr<state> st);
  // @pre st.mtx held. Starts a thread if a queued task could start and no
  // idle thread will take it.
  static void maybe_grow(const std::shared_ptr<state>& st);

  std::shared_ptr<state> st_;
};

} // namespace dref::internal
