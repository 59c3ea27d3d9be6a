#include "dref/persist/rocksdb_checkpoint_store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <shared_mutex>
#include <system_error>
#include <utility>

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_checksum.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/status.h>
#include <rocksdb/write_batch.h>

#include "dref/persist/error.hpp"
#include "dref/refs/crc32c.hpp"

#include "log_tail_check.hpp"

namespace rocksdb {

// Exported by librocksdb 7.8 (declared in its internal db/version_set.h,
// used by its backup engine) but not in the public headers: reads the
// full-file checksums that the MANIFEST at `abs_path` records for the live
// table files. Declared here because no public function gives them without
// opening the database, and opening is what must be made safe. If a later
// RocksDB drops it, linking fails; nothing breaks silently.
Status GetFileChecksumsFromManifest(Env* src_env, const std::string& abs_path,
                                    uint64_t manifest_file_size,
                                    FileChecksumList* checksum_list);

} // namespace rocksdb

namespace dref {

namespace {

// Maps a failed RocksDB status to a persist_errc error; `what` names the
// key or the database. The status itself never leaves this file.
caf::error to_error(const rocksdb::Status& st, const std::string& what) {
  auto context = what + ": " + st.ToString();
  if (st.IsCorruption())
    return make_error(persist_errc::checkpoint_corrupt, std::move(context));
  if (st.IsNoSpace())
    return make_error(persist_errc::disk_full, std::move(context));
  if (st.IsNotSupported())
    return make_error(persist_errc::incompatible_state, std::move(context));
  return make_error(persist_errc::io_error, std::move(context));
}

// The name of the database's current MANIFEST file, from its CURRENT
// file; empty when there is none (a new database) or it is unreadable
// (then DB::Open reports the problem).
std::string current_manifest(const std::string& path) {
  std::ifstream current{path + "/CURRENT"};
  std::string manifest;
  if (!current || !std::getline(current, manifest)
      || manifest.find('/') != std::string::npos)
    return {};
  return manifest;
}

// The CRC-32C of a whole file, or an error naming it.
caf::expected<uint32_t> file_crc32c(const std::string& file) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f{std::fopen(file.c_str(),
                                                               "rb"),
                                                    &std::fclose};
  if (!f)
    return make_error(persist_errc::io_error, file + ": cannot open");
  std::vector<char> buf(1 << 20);
  uint32_t crc = 0;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0)
    crc = crc32c_extend(crc, buf.data(), n);
  if (std::ferror(f.get()))
    return make_error(persist_errc::io_error, file + ": read failed");
  return crc;
}

// Checks every live table file (SST) of the database at `path` against the
// full-file CRC-32C its MANIFEST recorded when RocksDB wrote it. RocksDB
// 7.8 parses an SST's properties block before checking that block's
// checksum, and its Debian build keeps assertions on, so damage there
// aborts the process inside DB::Open; this check runs first and turns such
// damage into checkpoint_corrupt. Files the MANIFEST has no CRC-32C for
// (written without the checksum factory) and missing files are left to
// RocksDB's own checks.
caf::error verify_table_files(const std::string& path) {
  auto what = "checkpoint database " + path;
  auto manifest = current_manifest(path);
  if (manifest.empty())
    return caf::none; // a new database, or RocksDB reports the damage
  std::unique_ptr<rocksdb::FileChecksumList> sums{
    rocksdb::NewFileChecksumList()};
  auto st = rocksdb::GetFileChecksumsFromManifest(
    rocksdb::Env::Default(), path + "/" + manifest,
    std::numeric_limits<uint64_t>::max(), sums.get());
  if (st.IsCorruption())
    return to_error(st, what + ", " + manifest);
  if (!st.ok())
    return caf::none; // e.g. a missing MANIFEST: DB::Open says what is wrong
  std::vector<uint64_t> numbers;
  std::vector<std::string> checksums;
  std::vector<std::string> funcs;
  st = sums->GetAllFileChecksums(&numbers, &checksums, &funcs);
  if (!st.ok())
    return to_error(st, what);
  for (size_t i = 0; i < numbers.size(); ++i) {
    if (funcs[i] != rocksdb::kStandardDbFileChecksumFuncName
        || checksums[i].size() != 4)
      continue;
    char name[32];
    std::snprintf(name, sizeof(name), "%06llu.sst",
                  static_cast<unsigned long long>(numbers[i]));
    auto file = path + "/" + name;
    std::error_code ec;
    if (!std::filesystem::exists(file, ec))
      continue;
    auto crc = file_crc32c(file);
    if (!crc)
      return std::move(crc.error());
    // This checksum function stores the plain CRC-32C big-endian.
    uint32_t stored = 0;
    for (unsigned char c : checksums[i])
      stored = (stored << 8) | c;
    if (*crc != stored)
      return make_error(persist_errc::checkpoint_corrupt,
                        what + ": table file " + name
                          + " fails its full-file CRC-32C (stored "
                          + std::to_string(stored) + ", computed "
                          + std::to_string(*crc) + ")");
  }
  return caf::none;
}

// Runs check_log_tail on every WAL file and on the current MANIFEST of
// the database at `path`: their last records are the ones RocksDB would
// drop silently if their length field were damaged. WAL files are small
// (flushed away), and RocksDB starts a new MANIFEST at every open.
caf::error verify_log_tails(const std::string& path) {
  std::error_code ec;
  std::filesystem::directory_iterator dir{path, ec};
  if (ec)
    return caf::none; // a new database
  for (auto& entry : dir) {
    auto name = entry.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0)
      if (auto err = internal::check_log_tail(entry.path().string()))
        return err;
  }
  auto manifest = current_manifest(path);
  if (!manifest.empty() && std::filesystem::exists(path + "/" + manifest, ec))
    return internal::check_log_tail(path + "/" + manifest);
  return caf::none;
}

// RocksDB's info log, kept off the database's disk. RocksDB 7.8 built with
// assertions (as Debian builds it) aborts the process when it logs to an
// info LOG file whose earlier write failed, and that is exactly what
// happens when the disk fills up: the LOG file fails first, then the WAL
// error is logged. So errors go to stderr and the rest is dropped.
class stderr_logger final : public rocksdb::Logger {
public:
  explicit stderr_logger(std::string path)
    : rocksdb::Logger(rocksdb::InfoLogLevel::ERROR_LEVEL),
      path_(std::move(path)) {
    // nop
  }

  using rocksdb::Logger::Logv;

  void Logv(const char* format, va_list ap) override {
    char buf[1024];
    std::vsnprintf(buf, sizeof(buf), format, ap);
    std::fprintf(stderr, "rocksdb %s: %s\n", path_.c_str(), buf);
  }

private:
  std::string path_;
};

rocksdb::ReadOptions checked_reads() {
  rocksdb::ReadOptions ro;
  ro.verify_checksums = true;
  return ro;
}

} // namespace

struct rocksdb_checkpoint_store::impl {
  std::string path;
  rocksdb_store_options opts;
  // Exclusive while `recover` replaces the database; shared for every
  // other use of `db` and the handles.
  mutable std::shared_mutex mtx;
  std::unique_ptr<rocksdb::DB> db; // guarded by mtx; null after a failed recovery
  // Every handle RocksDB gave us, including "default" and families this
  // build does not know; destroyed before `db` closes. Guarded by mtx.
  std::vector<rocksdb::ColumnFamilyHandle*> all_handles;
  // Indexed by column_family value; points into all_handles. Guarded by mtx.
  std::array<rocksdb::ColumnFamilyHandle*, column_family_count> handles{};
  // Set by a failed write; the next write recovers first.
  std::atomic<bool> needs_recovery{false};

  rocksdb::ColumnFamilyHandle* handle(column_family cf) const {
    return handles.at(static_cast<size_t>(cf));
  }

  // Opens the database at `path`. Requires `db` to be null and, after
  // construction, an exclusive lock.
  caf::error open_db() {
    auto what = "checkpoint database " + path;
    if (opts.create_if_missing) {
      std::error_code ec;
      std::filesystem::create_directories(path, ec);
      if (ec)
        return make_error(ec.value() == ENOSPC ? persist_errc::disk_full
                                               : persist_errc::io_error,
                          what + ": " + ec.message());
    }
    if (auto err = verify_log_tails(path))
      return err;
    if (opts.verify_table_files)
      if (auto err = verify_table_files(path))
        return err;
    rocksdb::Options o;
    o.create_if_missing = opts.create_if_missing;
    o.create_missing_column_families = true;
    o.paranoid_checks = true;
    // A synced write is acknowledged only after its WAL record is complete,
    // so only a torn last record may be dropped; a bad checksum anywhere
    // else fails the open instead of silently losing acknowledged writes.
    o.wal_recovery_mode
      = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
    o.keep_log_file_num = 4;
    o.info_log = std::make_shared<stderr_logger>(path);
    // Record a full-file CRC-32C of every table file in the MANIFEST, for
    // verify_table_files.
    o.file_checksum_gen_factory = rocksdb::GetFileChecksumGenCrc32cFactory();
    // The families: "default" (required by RocksDB, unused), ours, and any
    // a newer build added (opened so the open succeeds, never touched).
    std::vector<std::string> names{rocksdb::kDefaultColumnFamilyName};
    for (auto cf : all_column_families)
      names.push_back(to_string(cf));
    std::vector<std::string> existing;
    if (rocksdb::DB::ListColumnFamilies(o, path, &existing).ok())
      for (auto& name : existing)
        if (std::find(names.begin(), names.end(), name) == names.end())
          names.push_back(name);
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (auto& name : names)
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions{o});
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> hs;
    auto st = rocksdb::DB::Open(rocksdb::DBOptions{o}, path, descriptors, &hs,
                                &raw);
    if (!st.ok())
      return to_error(st, what);
    db.reset(raw);
    all_handles = std::move(hs);
    for (size_t i = 0; i < column_family_count; ++i)
      handles[i] = all_handles.at(i + 1); // after "default"
    return caf::none;
  }

  // Closes the database, if open. Requires an exclusive lock (or the
  // destructor).
  void close_db() {
    if (!db)
      return;
    for (auto h : all_handles)
      db->DestroyColumnFamilyHandle(h);
    all_handles.clear();
    handles.fill(nullptr);
    db->Close();
    db.reset();
  }

  // After a failed write RocksDB may refuse all writes (a background
  // error; with paranoid_checks an I/O error on the WAL is fatal). First
  // ask it to resume; if it cannot, close and reopen the database, which
  // replays the WAL (dropping a torn last record). Requires an exclusive
  // lock.
  caf::error recover() {
    if (db && db->Resume().ok())
      return caf::none;
    close_db();
    return open_db();
  }

  // The error for using a database that a failed recovery left closed.
  caf::error closed_error() const {
    return make_error(persist_errc::io_error,
                      "checkpoint database " + path
                        + ": closed after a failed recovery");
  }

  ~impl() {
    close_db();
  }
};

rocksdb_checkpoint_store::rocksdb_checkpoint_store(std::unique_ptr<impl> ptr)
  : impl_(std::move(ptr)) {
  // nop
}

rocksdb_checkpoint_store::~rocksdb_checkpoint_store() {
  // nop: impl closes the database
}

caf::expected<std::unique_ptr<rocksdb_checkpoint_store>>
rocksdb_checkpoint_store::open(const std::string& path,
                               const rocksdb_store_options& opts) {
  auto state = std::make_unique<impl>();
  state->path = path;
  state->opts = opts;
  if (auto err = state->open_db())
    return err;
  return std::unique_ptr<rocksdb_checkpoint_store>{
    new rocksdb_checkpoint_store(std::move(state))};
}

caf::error rocksdb_checkpoint_store::write(const write_batch& batch) {
  if (batch.empty())
    return caf::none;
  auto what = [&] {
    return "write of " + std::to_string(batch.ops.size()) + " ops to "
           + impl_->path;
  };
  if (impl_->needs_recovery.load()) {
    std::unique_lock<std::shared_mutex> guard{impl_->mtx};
    if (impl_->needs_recovery.load()) {
      if (auto err = impl_->recover())
        return err;
      impl_->needs_recovery = false;
    }
  }
  std::shared_lock<std::shared_mutex> guard{impl_->mtx};
  if (!impl_->db)
    return impl_->closed_error();
  rocksdb::WriteBatch wb;
  for (auto& op : batch.ops) {
    auto h = impl_->handle(op.cf);
    auto st = op.kind == write_op::put ? wb.Put(h, op.key, op.value)
                                       : wb.Delete(h, op.key);
    if (!st.ok())
      return to_error(st, key_name(op.cf, op.key));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  auto st = impl_->db->Write(wo, &wb);
  if (!st.ok()) {
    impl_->needs_recovery = true;
    return to_error(st, what());
  }
  return caf::none;
}

caf::expected<std::optional<std::string>>
rocksdb_checkpoint_store::read(column_family cf, const std::string& key) const {
  std::shared_lock<std::shared_mutex> guard{impl_->mtx};
  if (!impl_->db)
    return impl_->closed_error();
  std::string value;
  auto st = impl_->db->Get(checked_reads(), impl_->handle(cf), key, &value);
  if (st.IsNotFound())
    return std::optional<std::string>{};
  if (!st.ok())
    return to_error(st, key_name(cf, key));
  return std::optional<std::string>{std::move(value)};
}

caf::expected<std::vector<std::string>>
rocksdb_checkpoint_store::keys(column_family cf,
                               const std::string& prefix) const {
  std::shared_lock<std::shared_mutex> guard{impl_->mtx};
  if (!impl_->db)
    return impl_->closed_error();
  std::unique_ptr<rocksdb::Iterator> it{
    impl_->db->NewIterator(checked_reads(), impl_->handle(cf))};
  std::vector<std::string> result;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix);
       it->Next())
    result.push_back(it->key().ToString());
  if (!it->status().ok())
    return to_error(it->status(), key_name(cf, prefix + "*"));
  return result;
}

caf::error rocksdb_checkpoint_store::flush() {
  std::shared_lock<std::shared_mutex> guard{impl_->mtx};
  if (!impl_->db)
    return impl_->closed_error();
  rocksdb::FlushOptions fo;
  fo.wait = true;
  std::vector<rocksdb::ColumnFamilyHandle*> hs{impl_->handles.begin(),
                                               impl_->handles.end()};
  auto st = impl_->db->Flush(fo, hs);
  if (!st.ok())
    return to_error(st, "flush of " + impl_->path);
  return caf::none;
}

const std::string& rocksdb_checkpoint_store::path() const noexcept {
  return impl_->path;
}

} // namespace dref
