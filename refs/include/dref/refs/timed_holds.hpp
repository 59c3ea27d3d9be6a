#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "dref/refs/object_id.hpp"

namespace dref {

/// Refs a process keeps on objects for a bounded time on behalf of someone
/// who cannot hold them yet: each hold counts as one local ref of its
/// process (the caller counts it) and ends when released by its token or
/// when its deadline passes, whichever comes first.
///
/// `ref_core` keeps two sets: *transit holds* (refs this process sent in
/// plain CAF messages, released by the receiver once it is a registered
/// borrower) and *lingering holds* (the protections a dead process held,
/// kept for a grace period so that refs it sent just before dying can still
/// be registered).
///
/// Thread safety: none; guarded with the `ref_core` that owns it. Plain
/// bookkeeping: the caller counts the local ref down for every id a release
/// or an expiry returns.
class timed_holds {
public:
  using clock_type = std::chrono::steady_clock;
  using time_point = clock_type::time_point;

  /// Keeps a hold on `id` until `deadline`; returns its token (never 0).
  uint64_t hold(const object_id& id, time_point deadline);

  /// Ends the hold `token`; its object, or nothing if unknown or ended.
  std::optional<object_id> release(uint64_t token);

  /// Ends every hold whose deadline is not after `now`; their objects (one
  /// entry per hold).
  std::vector<object_id> expire(time_point now);

  /// Ends every hold; their objects.
  std::vector<object_id> clear();

  /// The earliest deadline of a hold, if any.
  std::optional<time_point> next_deadline() const;

  /// Holds kept now.
  size_t size() const noexcept {
    return holds_.size();
  }

private:
  struct held {
    object_id id;
    time_point deadline;
  };
  std::unordered_map<uint64_t, held> holds_;
  std::multimap<time_point, uint64_t> by_deadline_;
  uint64_t next_ = 1;
};

} // namespace dref
