#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"

namespace dref {

/// A set of writes applied all together or not at all.
struct write_batch {
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<std::string> erases;
};

/// Durable key-value storage for checkpoints. Implementations: an in-memory
/// twin for tests (`memory_checkpoint_store`) and, with the durable-actor
/// work, RocksDB; no storage-engine type appears in this interface.
///
/// Thread safety: implementations are safe to call from any thread.
/// Invariant: a `write` that returns no error is durable and fully visible
/// to later reads; one that returns an error changed nothing.
class checkpoint_store {
public:
  virtual ~checkpoint_store();

  /// Applies `batch` atomically.
  virtual caf::error write(const write_batch& batch) = 0;

  /// Reads one key; an empty optional when the key does not exist.
  virtual caf::expected<std::optional<std::string>>
  read(const std::string& key) const = 0;
};

/// `checkpoint_store` in memory, for unit tests. Loses everything when
/// destroyed. Guarded by its own mutex.
class memory_checkpoint_store final : public checkpoint_store {
public:
  caf::error write(const write_batch& batch) override;

  caf::expected<std::optional<std::string>>
  read(const std::string& key) const override;

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::string> data_; // guarded by mtx_
};

} // namespace dref
