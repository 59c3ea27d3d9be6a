#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "caf/expected.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/store/buffer.hpp"
#include "dref/store/fwd.hpp"
#include "dref/store/node_store.hpp"
#include "dref/store/transfer_server.hpp"

namespace dref {

/// Pulls values from other nodes' stores into a local node store, one
/// transfer per object at a time: concurrent pulls of the same object
/// share one transfer.
///
/// Pull protocol (`pull`), ends in a buffer or a definite error:
/// 1. If the local store holds the object, return it (no transfer).
/// 2. If a transfer of it is in flight, wait for that one and return its
///    result (dedup).
/// 3. Else start one: connect (bounded by `timeout`) and ask for stripe 0
///    of `streams` stripes. The response carries the value's size and the
///    stripe count the peer chose (at most one stripe per 2 MiB of value,
///    so values under 4 MiB use one connection).
/// 4. Start one thread per further stripe: it connects and asks for its
///    stripe at once (so the peer holds the value for it while step 5
///    runs), checks that the answer names the same size and count, and
///    waits for the local segment (bounded by `timeout`). A stripe the
///    peer no longer has is `transfer_failed` (the value was dropped
///    mid-pull), not `not_found`.
/// 5. `create` a secondary copy locally (room made by eviction/spilling as
///    for any put) and hand it to the stripes.
/// 6. Receive every stripe straight into its range of the new segment at
///    once, in chunks of at most `chunk_size` bytes, each receive bounded
///    by `timeout`. The first failure shuts every stripe's socket down and
///    wakes waiting stripes, so all end at once.
/// 7. Join the stripes and seal the copy. A failure anywhere aborts it:
///    nothing partial stays. An exception (no thread to be had, no memory)
///    ends the pull with `transfer_failed` and still wakes its waiters.
///
/// Why stripes: one loopback or LAN stream is bounded by one core copying
/// out of the socket while the sender's core waits, and the reverse;
/// two streams keep both ends' cores copying (docs/performance.md, "Striped
/// pulls": 100 MiB over loopback on 2 cores, one stream 1.4-2.3 GB/s, two
/// 4.1-4.5 GB/s).
///
/// Thread safety: all members may be called from any thread; `mtx_`
/// guards the in-flight table and the counter. Ownership: the caller keeps
/// `local` alive as long as the client.
class transfer_client {
public:
  static constexpr size_t chunk_size = size_t{8} << 20;

  /// Streams per pull when none is given: the number of cores, at least
  /// 2 and at most 4.
  static uint32_t default_streams();

  explicit transfer_client(node_store& local,
                           std::chrono::milliseconds timeout
                           = std::chrono::seconds{30},
                           uint32_t streams = default_streams());

  /// Returns the object from the local store, pulling it from `from` first
  /// if needed. Errors: `not_found` (the peer does not hold it),
  /// `transfer_failed`, and the local store's `create` errors.
  caf::expected<buffer> pull(const object_id& id, const store_endpoint& from);

  /// The stripe count this client asks for.
  uint32_t streams() const noexcept {
    return streams_;
  }

  /// Transfers started since construction (one per deduplicated pull).
  uint64_t transfers() const;

  /// Callers currently in a pull of `id` that transfers (the transferring
  /// caller plus those waiting for it).
  size_t pulling(const object_id& id) const;

  /// Test hook: runs in the transferring thread before it connects.
  void on_transfer_start(std::function<void(const object_id&)> hook);

  /// The server's counters: pulls served, bytes served.
  static caf::expected<std::pair<uint64_t, uint64_t>>
  server_stats(const store_endpoint& at,
               std::chrono::milliseconds timeout = std::chrono::seconds{30});

private:
  struct flight {
    std::condition_variable cv;
    bool done = false;
    size_t callers = 1;
    caf::expected<buffer> result{caf::error{}};
  };

  caf::expected<buffer> transfer(const object_id& id,
                                 const store_endpoint& from);

  node_store& local_;
  std::chrono::milliseconds timeout_;
  uint32_t streams_;
  mutable std::mutex mtx_;
  std::unordered_map<object_id, std::shared_ptr<flight>> flights_; // mtx_
  uint64_t transfers_ = 0;                                         // mtx_
  std::function<void(const object_id&)> hook_;                     // mtx_
};

} // namespace dref
