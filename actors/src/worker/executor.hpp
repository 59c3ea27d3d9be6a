#pragma once

#include <memory>

#include "wire/interfaces.hpp"
#include "worker/result_outbox.hpp"
#include "worker/task_pool.hpp"
#include "worker/task_runner.hpp"

namespace dref::internal {

class worker_context;

/// Most threads a worker's tasks run on at once (all but one of them
/// waiting): how many tasks of a tree may wait in one worker.
constexpr size_t max_task_threads = 64;

/// State of a worker's executor: the actor that takes the worker's task
/// batches and hands them to its `task_pool` (tasks run there, in arrival
/// order, a waiting task's slot given to the next), keeps each result as a
/// copy for its owner (`process_refs::keep_copy`) and reports it
/// (`result_outbox`). The actor itself never runs a task, so it always
/// takes the next batch, also while every task waits. Touched only by the
/// executor's thread; the pool and the outbox have their own locks.
struct executor_state {
  std::shared_ptr<worker_context> ctx;
  /// Results not yet sent; shared with the pool's threads and the outbox's
  /// timer thread.
  std::shared_ptr<result_outbox> outbox;
  std::unique_ptr<task_pool> pool;
  static inline const char* name = "dref.executor";
  ~executor_state();
};

using executor_pointer = executor_actor::stateful_pointer<executor_state>;

/// The executor's behavior; it ends when its driver goes down (nobody will
/// read or free its objects any more).
executor_actor::behavior_type executor_fn(executor_pointer self,
                                          std::shared_ptr<worker_context> ctx,
                                          driver_actor driver,
                                          actor_table actors);

} // namespace dref::internal
