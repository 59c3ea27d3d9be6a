#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "caf/timespan.hpp"

namespace dref {

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
  /// Directory of the checkpoint store of durable actors (RocksDB); empty
  /// means `<run directory>/state` (see docs/operations.md).
  std::string state_dir;
};

/// Passed as a timeout: wait without a bound.
constexpr caf::timespan no_timeout = caf::timespan::max();

} // namespace dref
