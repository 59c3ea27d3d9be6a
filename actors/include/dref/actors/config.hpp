#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "caf/timespan.hpp"

namespace dref {

class fault_injecting_store;

/// Settings of a `runtime`. Plain value; read once when the runtime starts.
struct config {
  /// Worker processes to start; 0 means one per hardware core.
  size_t num_workers = 0;
  /// Results up to this many serialized bytes travel inline in replies and
  /// live in the owner's memory; larger ones live once in the node store
  /// (shared memory every process on the node reads without copying), or in
  /// the producing worker when the node store refuses them (full).
  size_t inline_limit = 100 * 1024;
  /// Bytes of values the node store keeps in shared memory (`/dev/shm`);
  /// beyond it, least recently used values are spilled to `spill_dir`.
  uint64_t store_capacity = uint64_t{4} << 30;
  /// Where the node store spills values; empty means a directory of this
  /// runtime under the run directory (`<run directory>/spill-<pid>-<n>`),
  /// made at start and removed at stop.
  std::string spill_dir;
  /// Bound on starting all workers.
  caf::timespan start_timeout = std::chrono::seconds(30);
  /// Bound on one worker-to-worker fetch of an argument.
  caf::timespan fetch_timeout = std::chrono::seconds(30);
  /// Start a new worker when one dies.
  bool restart_workers = true;
  /// CAF scheduler threads per process (0: CAF's default).
  size_t scheduler_threads = 2;
  /// CAF scheduler policy: "sharing" (lowest latency here) or "stealing".
  std::string scheduler_policy = "sharing";
  /// CAF middleman worker threads (0: the multiplexer delivers directly).
  size_t middleman_workers = 0;
  /// Middleman heartbeat interval; a peer silent for
  /// `connection_timeout` is declared dead (detects hung processes).
  caf::timespan heartbeat_interval = std::chrono::milliseconds(500);
  caf::timespan connection_timeout = std::chrono::seconds(5);
  /// How long a sender keeps a ref it sent in a plain CAF message alive for
  /// a receiver that never registers (the message was lost).
  caf::timespan transit_timeout = std::chrono::seconds(60);
  /// How long the protections a process that died held (its borrows, the
  /// arguments of its tasks) outlive it, so that refs it sent just before
  /// dying can still be registered by their receivers (docs/architecture.md,
  /// "Borrowing", step 5). A ref in a message from a process that died must
  /// reach its receiver within this time.
  caf::timespan death_grace = std::chrono::seconds(2);
  /// Directory of the checkpoint store of durable actors (RocksDB); empty
  /// means `<run directory>/state` (see docs/operations.md).
  std::string state_dir;
  /// Test hook, unset in production. When set, the driver's checkpoint
  /// store is wrapped in a `fault_injecting_store` (persist/) and this is
  /// called with it once, when the store opens (at the first durable
  /// spawn). A test keeps the reference (valid until the runtime is
  /// destroyed) to fail chosen writes or reads, e.g.
  /// `fail_next_writes(1, persist_errc::disk_full)`.
  std::function<void(fault_injecting_store&)> checkpoint_faults;
  /// Test hook, off in production: every call on a durable actor is sent
  /// to its worker twice in a row, as a retry would be, and the owner takes
  /// the second answer (which the actor's sequence table must give without
  /// applying the call again).
  bool test_resend_durable_calls = false;
  /// Test hook, empty in production: the caller id of this driver's calls
  /// on durable actors (normally "driver-<random owner id>", new in every
  /// run). A second run with the same id numbers its calls from 1 again, so
  /// they look like retries of the first run's calls: this is how tests
  /// show that the sequence table stored with the state answers retries
  /// after a restart.
  std::string test_caller_id;
};

/// When a durable actor's state is written (see `durable`). The default,
/// every call, acknowledges a call only once its effect is on disk. The
/// others acknowledge at once and write every `calls` calls and/or once
/// `interval` passed since the last write (whichever comes first; 0 turns
/// a trigger off): weaker, because a crash of the driver loses up to
/// `calls` - 1 acknowledged calls or `interval` of them. A worker's death
/// loses nothing (the driver holds the newest state), a clean stop writes
/// what is pending, and a failed write is retried at the next trigger
/// instead of failing calls. See docs/architecture.md.
struct checkpoint_policy {
  uint64_t calls = 1;
  caf::timespan interval = caf::timespan{0};

  bool every_call() const noexcept {
    return calls == 1 && interval == caf::timespan{0};
  }
};

/// Passed as a timeout: wait without a bound.
constexpr caf::timespan no_timeout = caf::timespan::max();

} // namespace dref
