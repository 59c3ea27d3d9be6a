#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include "caf/error.hpp"

#include "dref/persist/checkpoint_store.hpp"

namespace dref {

/// Limits on how much one group write may carry.
struct group_commit_options {
  /// A group stops growing once its batches hold this many key and value
  /// bytes (the leader's own batch always goes in, however large).
  size_t max_group_bytes = 4 * 1024 * 1024;
  /// ... or once it has this many batches.
  size_t max_group_batches = 1024;
};

/// Group commit: lets many threads submit write batches and turns whatever
/// is queued into ONE synced `checkpoint_store::write`, so N concurrent
/// durable writes cost about one fsync instead of N. A synchronous class:
/// no actors, no threads of its own; the submitting threads do the work.
///
/// Protocol (leader/follower), for each `submit(batch)`:
/// 1. The submitter locks `mtx_` and appends a waiter for its batch to
///    `queue_` (FIFO).
/// 2. It sleeps until either its waiter is done (a leader wrote it) or its
///    waiter is the front of `queue_`. The front waiter's thread is the
///    only leader; a waiter stays queued until its group is done, so at most
///    one group write runs at a time.
/// 3. As leader it takes a group: the front waiters in queue order, up to
///    `max_group_batches` batches and `max_group_bytes` (its own batch
///    always). It unlocks `mtx_`, merges the group's batches in queue order
///    (a later batch's op on a key wins, as if written one after another)
///    and calls the store's `write` once.
/// 4. It locks `mtx_` again, gives every waiter of the group the result of
///    that one write (success, or the same error for all: the store
///    promises a failed write changed nothing, so no batch of a failed
///    group is applied), removes the group from `queue_`, wakes the group's
///    waiters and the new front waiter (the next leader), and returns.
/// 5. A woken follower whose waiter is done returns its result.
///
/// Termination: every `submit` ends with success or a definite error once
/// the store's `write` calls return. A waiter only waits for the groups
/// ahead of it in a FIFO queue plus its own group's one write; each leader
/// removes its group before waking the next, so the queue always drains
/// (an exception while merging becomes `io_error` for the group rather
/// than leaving it queued).
///
/// Thread safety: `submit`, `stats` and `pending` may be called from any
/// thread at once; `mtx_` guards `queue_` and the counters.
/// Invariant: batches reach the store in submission order (a batch's group
/// is written after every earlier group); every queued waiter belongs to a
/// thread blocked in `submit`.
/// Ownership: owned by whoever constructs it (e.g. the node's durable-actor
/// service); `store` is borrowed and must outlive it; destroy it only when
/// no `submit` is running.
class group_committer {
public:
  /// Counters since construction.
  struct statistics {
    /// Up by one when `submit` is called.
    uint64_t batches = 0;
    /// Up by one per group: each call of the store's `write`.
    uint64_t store_writes = 0;
    /// Up by the group's size when a group write fails.
    uint64_t failed_batches = 0;
  };

  explicit group_committer(checkpoint_store& store,
                           group_commit_options opts = {});

  group_committer(const group_committer&) = delete;
  group_committer& operator=(const group_committer&) = delete;

  /// Writes `batch` durably, together with whatever other threads queued:
  /// blocks until the group write holding `batch` ended, and returns its
  /// result (the store's error, e.g. `disk_full`, when it failed; then
  /// nothing of `batch` was written).
  caf::error submit(const write_batch& batch);

  /// A snapshot of the counters.
  statistics stats() const;

  /// Batches submitted and not yet finished (queued or being written).
  size_t pending() const;

private:
  // One submit call; lives on the submitter's stack for the whole call.
  // `result` and `done` are guarded by mtx_; `cv` wakes only its owner.
  struct waiter {
    const write_batch* batch;
    caf::error result;
    bool done = false;
    std::condition_variable cv;
  };

  checkpoint_store& store_;
  const group_commit_options opts_;
  mutable std::mutex mtx_;
  std::deque<waiter*> queue_; // guarded by mtx_
  statistics stats_;          // guarded by mtx_
};

} // namespace dref
