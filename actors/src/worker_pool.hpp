#pragma once

#include <chrono>
#include <mutex>
#include <set>
#include <string>

#include "caf/expected.hpp"

namespace dref::internal {

/// Starts worker processes and reaps them.
///
/// A worker is this same program started again (`/proc/self/exe` with the
/// same arguments) with `DREF_WORKER` set in its environment; it dies with
/// its parent (PR_SET_PDEATHSIG). Every pid the pool started is reaped by
/// `reap`, `kill_and_reap` or `stop_all`; processes are only ever ended by
/// pid. Thread safety: all members lock `mtx_`.
class worker_pool {
public:
  ~worker_pool();

  /// Starts one worker whose `DREF_WORKER` is `spec`; returns its pid.
  caf::expected<int> launch(const std::string& spec);

  /// True if `pid` has exited (and is now reaped).
  bool reap(int pid);

  /// SIGKILLs `pid` and waits for it.
  void kill_and_reap(int pid);

  /// Waits up to `grace` for every worker to exit, then SIGKILLs and reaps
  /// the rest.
  void stop_all(std::chrono::milliseconds grace);

  /// Pids started and not yet reaped.
  std::set<int> pids() const;

private:
  mutable std::mutex mtx_;
  std::set<int> pids_; // guarded by mtx_
};

} // namespace dref::internal
