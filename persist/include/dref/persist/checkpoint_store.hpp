#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/persist/fwd.hpp"

namespace dref {

/// The concerns a checkpoint store keeps apart. Each is one column family
/// of the RocksDB store (one key space each: the same key may exist in
/// several). The names returned by `to_string` are the column-family names
/// on disk: frozen, see docs/checkpoint_format.md. Add new concerns at the
/// end and never reuse a value.
enum class column_family : uint8_t {
  /// Key: a durable actor's name. Value: an encoded `checkpoint_record`
  /// (see record_codec.hpp): its state and per-caller sequence numbers.
  actor_state = 0,
  /// Key: a durable actor's name. Value: metadata about the actor that is
  /// not its state (class, placement); its format is defined by the
  /// durable-actor layer.
  actor_meta = 1,
  /// Key: a durable actor's name. Value: an encoded `checkpoint_record`,
  /// like `actor_state`. The durable-actor layer alternates between the two
  /// families by version (odd versions in `actor_state`, even ones here), so
  /// the previous checkpoint survives while the next one is written and is
  /// there to fall back on when the newest is found corrupt.
  actor_state_alt = 2,
  /// Key: formed by the durable-actor layer (the object's id and the
  /// actor's name). Value: an encoded `ref_value_record` (record_codec.hpp):
  /// a value a checkpoint refers to through a ref (`checkpoint::refs`).
  ref_values = 3,
};

/// Number of `column_family` values; they run from 0 to this minus one.
constexpr size_t column_family_count = 4;

/// All column families, in value order.
constexpr column_family all_column_families[column_family_count] = {
  column_family::actor_state,
  column_family::actor_meta,
  column_family::actor_state_alt,
  column_family::ref_values,
};

/// The frozen on-disk name of `cf` ("actor_state", "actor_meta").
std::string to_string(column_family cf);

/// "<column family>/<key>": how errors name a key.
std::string key_name(column_family cf, const std::string& key);

/// One change inside a `write_batch`: a put of `value` under `key` in
/// `cf`, or an erase of `key`. A plain value owned by its batch.
struct write_op {
  enum kind_t : uint8_t { put, erase };
  kind_t kind = put;
  column_family cf = column_family::actor_state;
  std::string key;
  /// The new value of a put; empty for an erase.
  std::string value;
};

/// A set of writes applied all together or not at all, in order: a later
/// op on the same key wins, as if the ops ran one after another.
///
/// A plain value: owned by whoever holds it, not thread-safe.
struct write_batch {
  std::vector<write_op> ops;

  /// Appends a put of `value` under `key` in `cf`.
  void put(column_family cf, std::string key, std::string value);

  /// Appends an erase of `key` in `cf`. Erasing a missing key is no error.
  void erase(column_family cf, std::string key);

  /// Appends every op of `other`, after the ops already here.
  void append(const write_batch& other);

  bool empty() const noexcept {
    return ops.empty();
  }

  /// Bytes of keys and values in the batch (a size estimate).
  size_t byte_size() const noexcept;
};

/// Durable key-value storage for checkpoints, keys grouped by
/// `column_family`. Implementations: `rocksdb_checkpoint_store` (on disk),
/// `memory_checkpoint_store` (its in-memory twin for tests) and
/// `fault_injecting_store` (a wrapper that fails writes on demand). No
/// storage-engine or Protobuf type appears in this interface.
///
/// Errors are `persist_errc` codes (error.hpp): `checkpoint_corrupt` (the
/// context names the key, or the database when it is found at open),
/// `io_error`, `disk_full`.
///
/// Thread safety: implementations are safe to call from any thread.
/// Invariant: a `write` that returns no error is durable and fully visible
/// to later reads; one that returns an error changed nothing. The one
/// exception no storage engine can remove: when the final fsync itself
/// fails, the bytes may still have reached the disk, so such a write can
/// turn up after the store recovers or restarts (docs/checkpoint_format.md,
/// "Failed writes"). Callers that retry with the same per-caller sequence
/// numbers are correct either way.
/// Ownership: whoever creates a store owns it; it must outlive every user
/// (e.g. a `group_committer`).
class checkpoint_store {
public:
  virtual ~checkpoint_store();

  /// Applies `batch` atomically and durably. An empty batch succeeds and
  /// changes nothing.
  virtual caf::error write(const write_batch& batch) = 0;

  /// Reads one key; an empty optional when the key does not exist.
  virtual caf::expected<std::optional<std::string>>
  read(column_family cf, const std::string& key) const = 0;

  /// Every key in `cf` that starts with `prefix`, in ascending byte order.
  virtual caf::expected<std::vector<std::string>>
  keys(column_family cf, const std::string& prefix = {}) const = 0;
};

/// `checkpoint_store` in memory, for unit tests: the twin of
/// `rocksdb_checkpoint_store` with the same semantics and no disk.
///
/// Thread safety: every call locks `mtx_`. Invariant: `data_` holds exactly
/// the effects of the successful writes, in order. Loses everything when
/// destroyed; its owner frees it.
class memory_checkpoint_store final : public checkpoint_store {
public:
  caf::error write(const write_batch& batch) override;

  caf::expected<std::optional<std::string>>
  read(column_family cf, const std::string& key) const override;

  caf::expected<std::vector<std::string>>
  keys(column_family cf, const std::string& prefix = {}) const override;

private:
  mutable std::mutex mtx_;
  std::map<std::pair<column_family, std::string>, std::string>
    data_; // guarded by mtx_
};

} // namespace dref
