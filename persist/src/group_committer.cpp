#include "dref/persist/group_committer.hpp"

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "dref/persist/error.hpp"

namespace dref {

group_committer::group_committer(checkpoint_store& store,
                                 group_commit_options opts)
  : store_(store), opts_(opts) {
  // nop
}

caf::error group_committer::submit(const write_batch& batch) {
  waiter self{&batch, caf::error{}, false, {}};
  std::unique_lock<std::mutex> guard{mtx_};
  // Step 1: queue up.
  ++stats_.batches;
  queue_.push_back(&self);
  // Step 2: wait until written by a leader, or leader ourselves.
  self.cv.wait(guard, [&] { return self.done || queue_.front() == &self; });
  if (self.done)
    return std::move(self.result); // Step 5.
  // Step 3: take a group from the front (we are queue_[0]).
  size_t group_size = 1;
  size_t group_bytes = batch.byte_size();
  while (group_size < queue_.size() && group_size < opts_.max_group_batches) {
    auto next = queue_[group_size]->batch->byte_size();
    if (group_bytes + next > opts_.max_group_bytes)
      break;
    group_bytes += next;
    ++group_size;
  }
  // Waiters behind us may be appended while we write, but none of the
  // group's entries move: only a leader pops, and we are the leader.
  std::vector<waiter*> group;
  try {
    group.assign(queue_.begin(), queue_.begin() + group_size);
  } catch (const std::exception&) {
    group_size = 1; // no memory for a group: write our own batch alone
    group.clear();
  }
  guard.unlock();
  caf::error result;
  try {
    if (group_size == 1) {
      result = store_.write(batch); // no copy for a group of one
    } else {
      write_batch merged;
      size_t ops = 0;
      for (auto w : group)
        ops += w->batch->ops.size();
      merged.ops.reserve(ops);
      for (auto w : group)
        merged.append(*w->batch);
      result = store_.write(merged);
    }
  } catch (const std::exception& e) {
    // E.g. bad_alloc while merging. The group must still leave the queue,
    // or every later submitter would wait forever.
    result = make_error(persist_errc::io_error,
                        std::string{"group write failed: "} + e.what());
  }
  // Step 4: hand out the result, pop the group, wake the next leader.
  guard.lock();
  ++stats_.store_writes;
  if (result)
    stats_.failed_batches += group_size;
  for (size_t i = 0; i < group_size; ++i)
    queue_.pop_front();
  for (auto w : group) {
    if (w == &self)
      continue;
    w->result = result;
    w->done = true;
    w->cv.notify_one();
  }
  if (!queue_.empty())
    queue_.front()->cv.notify_one();
  return result;
}

group_committer::statistics group_committer::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

size_t group_committer::pending() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return queue_.size();
}

} // namespace dref
