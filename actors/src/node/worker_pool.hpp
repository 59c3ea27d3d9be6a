#pragma once

#include <chrono>
#include <mutex>
#include <set>
#include <string>

#include "caf/expected.hpp"

#include "wire/worker_settings.hpp"

namespace dref::internal {

/// Starts worker processes and reaps them.
///
/// A worker is this same program started again (`/proc/self/exe` with the
/// same arguments) with `DREF_WORKER` set in its environment. It dies with
/// its parent process: it inherits, as descriptor 3, the read end of a
/// "lifeline" pipe whose write end only the parent holds, and exits when
/// that pipe reports end-of-file (the kernel closes the write end when the
/// parent dies, however it dies). Every pid the pool started is reaped by
/// `reap`, `kill_and_reap` or `stop_all`; processes are only ever ended by
/// pid. Thread safety: all members lock `mtx_`.
class worker_pool {
public:
  ~worker_pool();

  /// The descriptor number at which a worker finds its lifeline.
  static constexpr int lifeline_fd = internal::lifeline_fd;

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
  std::set<int> pids_;            // guarded by mtx_
  int lifeline_[2] = {-1, -1};    // guarded by mtx_; made on first launch
};

} // namespace dref::internal
