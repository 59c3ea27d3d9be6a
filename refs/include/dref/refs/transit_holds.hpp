#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dref/refs/ref.hpp"

namespace dref {

/// The refs a process sent in plain CAF messages, each kept alive under a
/// token until the receiver, once a registered borrower, releases it, or
/// until it expires (the message was lost). See docs/architecture.md,
/// "Refs in plain CAF messages".
///
/// Thread safety: every member locks its own mutex; refs are dropped (and so
/// counted down in their context) only after that mutex is released, so a
/// context may call in while holding its own lock only for `hold`.
class transit_holds {
public:
  using clock_type = std::chrono::steady_clock;

  /// Keeps `x` until `deadline`; returns its token (never 0).
  uint64_t hold(ref_base x, clock_type::time_point deadline);

  /// Drops the holds `tokens` (unknown ones are ignored).
  void release(const std::vector<uint64_t>& tokens);

  /// Drops every hold whose deadline is not after `now`.
  void expire(clock_type::time_point now = clock_type::now());

  /// Drops every hold.
  void clear();

  /// Holds kept now.
  size_t size() const;

private:
  mutable std::mutex mtx_;
  std::unordered_map<uint64_t, std::pair<ref_base, clock_type::time_point>>
    holds_;               // guarded by mtx_
  uint64_t next_ = 1;     // guarded by mtx_
};

} // namespace dref
