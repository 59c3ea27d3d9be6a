#pragma once

#include <memory>

#include "wire/interfaces.hpp"
#include "worker/result_outbox.hpp"
#include "worker/task_runner.hpp"

namespace dref::internal {

class worker_context;

/// State of a worker's executor: the actor that runs the worker's tasks one
/// at a time, in arrival order (`run_task`), keeps each result as a copy
/// for its owner (`process_refs::keep_copy`) and reports it
/// (`result_outbox`). Touched only by the executor's own thread.
struct executor_state {
  std::shared_ptr<worker_context> ctx;
  actor_table actors;
  /// Results not yet sent; shared with the outbox's timer thread, which
  /// sends them while a later task of the batch runs.
  std::unique_ptr<result_outbox> outbox;
  static inline const char* name = "dref.executor";
};

using executor_pointer = executor_actor::stateful_pointer<executor_state>;

/// The executor's behavior; it ends when its driver goes down (nobody will
/// read or free its objects any more).
executor_actor::behavior_type executor_fn(executor_pointer self,
                                          std::shared_ptr<worker_context> ctx,
                                          driver_actor driver,
                                          actor_table actors);

} // namespace dref::internal
