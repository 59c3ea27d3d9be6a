#pragma once

// A driver ended by SIGINT or SIGTERM removes its runtimes' files first,
// as a normal exit would (its workers leave through their lifeline pipe).
// See docs/operations.md, "Stopping a driver with a signal".

#include <cstdint>
#include <string>

namespace dref::internal {

/// The files a running runtime leaves on this node. Plain value.
struct exit_files {
  /// The node store's shared-memory directory and the prefix of every file
  /// it makes there and in `spill_dir` (`dref.<uid>.<name>.<pid>.`:
  /// segments, pooled segments, spill files, the lock file).
  std::string shm_dir;
  std::string store_prefix;
  /// The node store's spill directory; the runtime made it (and removes it
  /// whole) if `own_spill_dir`, else only the store's files in it go.
  std::string spill_dir;
  bool own_spill_dir = false;
  /// `<run dir>/<pid>.port`, the driver's announcement to `dref memory`.
  std::string run_file;
};

/// Removes the files `f` names (any thread; missing files are fine).
void remove_exit_files(const exit_files& f);

/// One runtime's claim on the process-wide cleanup on SIGINT and SIGTERM.
///
/// While at least one claim exists, a handler is installed for each of the
/// two signals whose disposition was the default when the first claim was
/// made (a handler or SIG_IGN set by the program is never replaced); the
/// last claim to go restores the default where the handler is still ours.
/// On such a signal:
/// 1. the handler (async-signal-safe) writes the signal's number to a
///    self-pipe;
/// 2. a watcher thread reads it and removes the files of every claim;
/// 3. it restores the default disposition and raises the signal again, so
///    the process ends by that signal with its usual exit status.
/// Ends: the process ends by the signal (or, should raise return, by
/// `_exit(128 + signal)`). In a child forked without exec, and while no
/// watcher runs, the handler takes the default action itself.
///
/// Who may touch it: any thread; `set` and the destructor take a
/// process-wide lock. Owned by the runtime (from `start` to the end of
/// `stop`, so a signal during either still cleans up).
class exit_cleanup {
public:
  exit_cleanup();
  ~exit_cleanup();

  exit_cleanup(const exit_cleanup&) = delete;
  exit_cleanup& operator=(const exit_cleanup&) = delete;

  /// The files to remove for this claim (replaces the previous set).
  void set(exit_files f);

private:
  uint64_t token_;
};

} // namespace dref::internal
