#pragma once

#include "caf/error.hpp"
#include "caf/fwd.hpp"
#include "caf/thread_hook.hpp"

namespace dref::internal {

/// Told when the thread it watches starts and stops waiting (for a value,
/// a fetch, a registration). A worker's task pool is one: while a task
/// waits, another thread may run the next task, so a task waiting on its
/// children does not starve the worker ("Task trees", docs/architecture.md).
///
/// Who touches it: the watched thread calls `on_block` / `on_unblock` in
/// pairs (never nested: `blocking_scope` only reports the outermost wait).
/// Lifetime: the installer (`blocking_observer_scope`) keeps it alive while
/// it is installed.
class blocking_observer {
public:
  virtual ~blocking_observer() = default;
  virtual void on_block() = 0;
  virtual void on_unblock() = 0;
};

/// Installs `obs` as the calling thread's observer until destroyed.
class blocking_observer_scope {
public:
  explicit blocking_observer_scope(blocking_observer* obs) noexcept;
  ~blocking_observer_scope();

  blocking_observer_scope(const blocking_observer_scope&) = delete;
  blocking_observer_scope& operator=(const blocking_observer_scope&) = delete;

private:
  blocking_observer* prev_;
};

/// Marks a wait of the calling thread: the thread's observer (if any) hears
/// `on_block` now and `on_unblock` at the end. Nested scopes report once.
class blocking_scope {
public:
  blocking_scope() noexcept;
  ~blocking_scope();

  blocking_scope(const blocking_scope&) = delete;
  blocking_scope& operator=(const blocking_scope&) = delete;

private:
  blocking_observer* obs_;
};

/// True on a thread that has a blocking observer (a worker's task thread).
bool on_task_thread() noexcept;

/// Marks the threads of an actor system's scheduler (CAF names them
/// `caf.multiplexer` before it calls the hooks; the clock thread and
/// detached actors' threads have other names), so that a blocking read on
/// one of them is refused instead of starving the scheduler. Installed by
/// `configure_system` in every process.
class scheduler_thread_hook : public caf::thread_hook {
public:
  void init(caf::actor_system& sys) override;
  void thread_started() override;
  void thread_terminates() override;

private:
  caf::actor_system* sys_ = nullptr;
};

/// The actor system whose scheduler runs the calling thread, or null.
const caf::actor_system* scheduler_of_this_thread() noexcept;

/// `actors_errc::would_block` naming `what` when the calling thread belongs
/// to the scheduler of `sys`, else none.
caf::error check_may_block(const caf::actor_system& sys, const char* what);

} // namespace dref::internal
