#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/persist/checkpoint_store.hpp"
#include "dref/persist/error.hpp"

namespace dref {

/// A `checkpoint_store` for tests that wraps another one and fails chosen
/// calls: `fail_next_writes(n, persist_errc::disk_full)` makes the next n
/// writes return `disk_full` without reaching the wrapped store, so "a
/// failed write changes nothing" can be tested on top of a real store.
/// Everything else is passed through unchanged.
///
/// Thread safety: any thread; `mtx_` guards the fault plan and the
/// counters (not held while the wrapped store runs).
/// Invariant: a write that fails here never reached the wrapped store.
/// Ownership: the wrapped store is borrowed and must outlive the wrapper;
/// the wrapper's creator frees it.
class fault_injecting_store final : public checkpoint_store {
public:
  /// Counters since construction.
  struct statistics {
    /// Up by one per `write` call.
    size_t write_calls = 0;
    /// Up by one per write passed to the wrapped store.
    size_t forwarded_writes = 0;
    /// Up by one per write failed here.
    size_t injected_write_faults = 0;
    /// Up by one per read or keys call failed here.
    size_t injected_read_faults = 0;
  };

  explicit fault_injecting_store(checkpoint_store& inner);

  /// Fails the next `n` writes with `code` (replacing an earlier plan).
  void fail_next_writes(size_t n, persist_errc code);

  /// Fails the next `n` reads (`read` and `keys`) with `code`.
  void fail_next_reads(size_t n, persist_errc code);

  statistics stats() const;

  caf::error write(const write_batch& batch) override;

  caf::expected<std::optional<std::string>>
  read(column_family cf, const std::string& key) const override;

  caf::expected<std::vector<std::string>>
  keys(column_family cf, const std::string& prefix = {}) const override;

private:
  // Whether the next read fails, and with which error; counts it.
  caf::error take_read_fault(const std::string& what) const;

  checkpoint_store& inner_;
  mutable std::mutex mtx_;
  size_t failing_writes_ = 0;                            // guarded by mtx_
  persist_errc write_code_ = persist_errc::io_error;     // guarded by mtx_
  mutable size_t failing_reads_ = 0;                     // guarded by mtx_
  persist_errc read_code_ = persist_errc::io_error;      // guarded by mtx_
  mutable statistics stats_;                             // guarded by mtx_
};

} // namespace dref
