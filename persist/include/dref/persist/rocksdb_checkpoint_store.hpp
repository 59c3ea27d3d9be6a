#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/persist/checkpoint_store.hpp"

namespace dref {

/// How `rocksdb_checkpoint_store::open` opens a database.
struct rocksdb_store_options {
  /// Create the directory and the database when missing; otherwise a
  /// missing database is an `io_error`.
  bool create_if_missing = true;
  /// Before opening, check every table file (SST) against the full-file
  /// CRC-32C that RocksDB recorded for it. Costs one read of the whole
  /// database per open; without it, damage in an SST's metadata can abort
  /// the process inside RocksDB 7.8 (see docs/checkpoint_format.md), while
  /// damage in its data blocks is reported per key on reads. With it, any
  /// damaged SST fails the open with `checkpoint_corrupt` naming the file.
  bool verify_table_files = true;
};

/// The on-disk `checkpoint_store`: one RocksDB database (one per node) with
/// one column family per `column_family` value, created when missing.
/// Every `write` is one atomic RocksDB write batch with `sync = true`, so a
/// returned success survives a crash of the process or the machine. The
/// database is opened with `paranoid_checks` and WAL recovery that accepts
/// only a torn last record (the unacknowledged write a crash cut short);
/// reads verify block checksums. No RocksDB type or status leaves this
/// class: statuses become `persist_errc` codes (Corruption ->
/// `checkpoint_corrupt`, NoSpace -> `disk_full`, other IOError and
/// anything else -> `io_error`, NotSupported -> `incompatible_state`), with
/// the key (or the database path) and RocksDB's message as context.
///
/// Failed writes: RocksDB refuses every write after one failed (with
/// `paranoid_checks` an I/O error on the WAL is fatal to the open
/// database). So the next `write` after a failure first recovers: it asks
/// RocksDB to resume and, if that fails, closes and reopens the database
/// (replaying the WAL, where the failed write left at most a torn last
/// record). Hence `disk_full` and `io_error` can be retried once the cause
/// is gone. If the reopen fails too, that write returns its error and the
/// next write tries again; meanwhile reads fail with `io_error`.
///
/// Thread safety: every member may be called from any thread at once.
/// RocksDB serializes writers internally (`group_committer` batches them);
/// a shared mutex in the implementation is held shared by every call and
/// exclusively only while a recovery replaces the database.
/// Invariant: outside a recovery the database is open from `open` until
/// destruction, with one handle per column family.
/// Ownership: `open` hands out the only owner; destroying it closes the
/// database (writes are already durable, nothing is lost). Destroy it only
/// when no call is running.
class rocksdb_checkpoint_store final : public checkpoint_store {
public:
  /// Opens (and, with `opts.create_if_missing`, creates) the database in
  /// directory `path`. Errors: `checkpoint_corrupt` when RocksDB finds
  /// damage while opening (naming the path), `incompatible_state` for a
  /// database it cannot read, `io_error` / `disk_full` otherwise.
  static caf::expected<std::unique_ptr<rocksdb_checkpoint_store>>
  open(const std::string& path, const rocksdb_store_options& opts = {});

  ~rocksdb_checkpoint_store() override;

  rocksdb_checkpoint_store(const rocksdb_checkpoint_store&) = delete;
  rocksdb_checkpoint_store& operator=(const rocksdb_checkpoint_store&)
    = delete;

  caf::error write(const write_batch& batch) override;

  caf::expected<std::optional<std::string>>
  read(column_family cf, const std::string& key) const override;

  caf::expected<std::vector<std::string>>
  keys(column_family cf, const std::string& prefix = {}) const override;

  /// Writes every column family's memtable to SST files (and waits). Not
  /// needed for durability (the WAL already has every write); used before
  /// backups and by tests that inspect the files.
  caf::error flush();

  /// The database directory.
  const std::string& path() const noexcept;

private:
  struct impl;

  explicit rocksdb_checkpoint_store(std::unique_ptr<impl> ptr);

  std::unique_ptr<impl> impl_;
};

} // namespace dref
