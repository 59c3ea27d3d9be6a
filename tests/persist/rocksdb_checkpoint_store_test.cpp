// The RocksDB checkpoint store on a real disk: each test opens a database
// in a fresh temp directory (mkdtemp), closes it, reopens it, damages its
// files or makes the file system refuse a write, and checks what a reader
// sees. Corruption must always come back as checkpoint_corrupt, never as a
// wrong value or a crash.

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include "dref/persist/checkpoint_store.hpp"
#include "dref/persist/error.hpp"
#include "dref/persist/record_codec.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

#include "persist_test_util.hpp"

using namespace dref;

namespace {

constexpr auto state = column_family::actor_state;
constexpr auto meta = column_family::actor_meta;

using store_ptr = std::unique_ptr<rocksdb_checkpoint_store>;

store_ptr open_store(const std::string& path) {
  auto res = rocksdb_checkpoint_store::open(path);
  REQUIRE_MESSAGE(res, test::describe(res));
  return std::move(*res);
}

// Incompressible bytes, so they appear verbatim in the files on disk even
// when RocksDB compresses blocks.
std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 gen{seed};
  std::string result(n, '\0');
  for (auto& c : result)
    c = static_cast<char>(gen());
  return result;
}

checkpoint make_checkpoint(const std::string& actor, uint64_t version,
                           uint32_t seed) {
  checkpoint x;
  x.actor = actor;
  x.version = version;
  x.state = random_bytes(4096, seed);
  x.sequence_numbers = {{"caller-" + actor, version * 10}};
  return x;
}

std::optional<checkpoint> read_cp(const checkpoint_store& s,
                                  const std::string& actor) {
  auto res = read_checkpoint(s, actor);
  REQUIRE_MESSAGE(res, test::describe(res));
  return *res;
}

std::optional<std::string> read(const checkpoint_store& s, column_family cf,
                                const std::string& key) {
  auto res = s.read(cf, key);
  REQUIRE_MESSAGE(res, test::describe(res));
  return *res;
}

// Flips one byte in the middle of the first occurrence of `needle` in any
// of the database's files ending in `suffix`; returns how many files had
// it.
size_t flip_in_files(const std::string& dir, const std::string& suffix,
                     const std::string& needle) {
  size_t hits = 0;
  for (auto& file : test::files_ending_in(dir, suffix)) {
    auto bytes = test::read_file(file);
    auto pos = bytes.find(needle);
    if (pos == std::string::npos)
      continue;
    bytes[pos + needle.size() / 2] ^= 0x5a;
    test::write_file(file, bytes);
    ++hits;
  }
  return hits;
}

// Sets RLIMIT_FSIZE for this process while alive: writes past `limit`
// bytes of any file fail with EFBIG (SIGXFSZ is ignored meanwhile).
class file_size_limit {
public:
  explicit file_size_limit(rlim_t limit) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_) == 0);
    rlimit lim = old_;
    lim.rlim_cur = limit;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }

  ~file_size_limit() {
    setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

private:
  rlimit old_;
  void (*old_handler_)(int);
};

} // namespace

TEST_CASE("checkpoints survive closing and reopening the database") {
  test::temp_dir dir;
  auto path = dir / "db";
  std::vector<checkpoint> cps;
  for (int i = 0; i < 20; ++i)
    cps.push_back(make_checkpoint("acct-" + std::to_string(i), 1, i));
  {
    auto s = open_store(path);
    write_batch b;
    for (auto& cp : cps)
      put_checkpoint(b, cp);
    b.put(meta, "acct-0", "class=account");
    REQUIRE_FALSE(s->write(b));
    // A second checkpoint of one actor replaces the first.
    cps[3] = make_checkpoint("acct-3", 2, 1003);
    write_batch b2;
    put_checkpoint(b2, cps[3]);
    REQUIRE_FALSE(s->write(b2));
  }
  for (int round = 0; round < 2; ++round) {
    auto s = open_store(path);
    for (auto& cp : cps) {
      auto got = read_cp(*s, cp.actor);
      REQUIRE(got.has_value());
      CHECK(*got == cp);
    }
    CHECK(read_cp(*s, "acct-3")->version == 2);
    CHECK(read(*s, meta, "acct-0") == std::optional<std::string>{"class=account"});
    auto ks = s->keys(state, "acct-");
    REQUIRE(ks);
    CHECK(ks->size() == cps.size());
    // The second round reads what the first one's open flushed to SSTs.
  }
}

TEST_CASE("opening creates missing directories and one column family per "
          "concern") {
  test::temp_dir dir;
  auto path = dir / "a/b/db";
  {
    auto s = open_store(path);
    CHECK(s->path() == path);
  }
  std::vector<std::string> families;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions{}, path, &families)
            .ok());
  std::sort(families.begin(), families.end());
  CHECK(families
        == std::vector<std::string>{"actor_meta", "actor_state",
                                    "actor_state_alt", "default",
                                    "ref_values"});
}

TEST_CASE("a database from a build before actor_state_alt opens and gains "
          "the family, its records intact") {
  test::temp_dir dir;
  auto path = dir / "db";
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.create_missing_column_families = true;
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyDescriptor> ds{
      {rocksdb::kDefaultColumnFamilyName, {}}, {"actor_state", {}},
      {"actor_meta", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> hs;
    REQUIRE(rocksdb::DB::Open(o, path, ds, &hs, &raw).ok());
    rocksdb::WriteOptions wo;
    wo.sync = true;
    REQUIRE(raw->Put(wo, hs[1], "k", "v").ok());
    for (auto h : hs)
      raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  auto s = open_store(path);
  CHECK(read(*s, state, "k") == std::optional<std::string>{"v"});
  std::vector<std::string> families;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions{}, path, &families)
            .ok());
  CHECK(std::count(families.begin(), families.end(), "actor_state_alt") == 1);
  CHECK(std::count(families.begin(), families.end(), "ref_values") == 1);
}

TEST_CASE("a database with a column family from a newer build still opens") {
  test::temp_dir dir;
  auto path = dir / "db";
  {
    auto s = open_store(path);
    write_batch b;
    b.put(state, "k", "v");
    REQUIRE_FALSE(s->write(b));
  }
  {
    // A later dref adds a concern; this build must still open the DB.
    rocksdb::Options o;
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyDescriptor> ds{
      {rocksdb::kDefaultColumnFamilyName, {}}, {"actor_state", {}},
      {"actor_meta", {}}, {"actor_state_alt", {}}, {"ref_values", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> hs;
    REQUIRE(rocksdb::DB::Open(o, path, ds, &hs, &raw).ok());
    rocksdb::ColumnFamilyHandle* extra = nullptr;
    REQUIRE(raw->CreateColumnFamily({}, "future_concern", &extra).ok());
    hs.push_back(extra);
    for (auto h : hs)
      raw->DestroyColumnFamilyHandle(h);
    delete raw;
  }
  auto s = open_store(path);
  CHECK(read(*s, state, "k") == std::optional<std::string>{"v"});
}

TEST_CASE("opening a missing database without create_if_missing gives "
          "io_error") {
  test::temp_dir dir;
  rocksdb_store_options opts;
  opts.create_if_missing = false;
  auto res = rocksdb_checkpoint_store::open(dir / "nothing-here", opts);
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::io_error),
                test::describe(res));
  CHECK(test::context_of(res.error()).find("nothing-here") != std::string::npos);
}

TEST_CASE("a database open in one store cannot be opened by a second one") {
  test::temp_dir dir;
  auto first = open_store(dir / "db");
  auto second = rocksdb_checkpoint_store::open(dir / "db");
  REQUIRE_FALSE(second);
  CHECK_MESSAGE(test::is(second.error(), persist_errc::io_error),
                test::describe(second));
}

TEST_CASE("a write batch is applied atomically: a write the file system "
          "refuses leaves none of it and the store recovers") {
  test::temp_dir dir;
  auto path = dir / "db";
  auto before = make_checkpoint("acct-before", 1, 1);
  {
    auto s = open_store(path);
    write_batch b;
    put_checkpoint(b, before);
    REQUIRE_FALSE(s->write(b));
    // 64 puts of 16 KiB: the WAL record outgrows the file-size limit half
    // way, so the file system takes part of the batch and then refuses.
    write_batch big;
    for (int i = 0; i < 64; ++i)
      big.put(state, "big-" + std::to_string(i), random_bytes(16384, i));
    big.erase(state, "acct-before");
    caf::error err;
    {
      file_size_limit limit{256 * 1024};
      err = s->write(big);
    }
    REQUIRE(err);
    CHECK_MESSAGE(test::is(err, persist_errc::io_error), test::describe(err));
    CHECK(read_cp(*s, "acct-before") == before);
    CHECK_FALSE(read(*s, state, "big-0").has_value());
    CHECK_FALSE(read(*s, state, "big-63").has_value());
    // Once the file system takes writes again, so does the same store.
    write_batch after;
    after.put(state, "after", "ok");
    auto err2 = s->write(after);
    CHECK_MESSAGE(!err2, test::describe(err2));
    CHECK(read_cp(*s, "acct-before") == before);
    CHECK(read(*s, state, "after") == std::optional<std::string>{"ok"});
  }
  auto s = open_store(path);
  CHECK(read_cp(*s, "acct-before") == before);
  CHECK(read(*s, state, "after") == std::optional<std::string>{"ok"});
  auto ks = s->keys(state, "big-");
  REQUIRE(ks);
  CHECK(ks->empty());
}

TEST_CASE("bytes flipped in an SST file give checkpoint_corrupt naming the "
          "file when reopening") {
  test::temp_dir dir;
  auto path = dir / "db";
  auto hit = make_checkpoint("acct-hit", 1, 2);
  {
    auto s = open_store(path);
    write_batch b;
    put_checkpoint(b, make_checkpoint("acct-good", 1, 1));
    put_checkpoint(b, hit);
    REQUIRE_FALSE(s->write(b));
    REQUIRE_FALSE(s->flush());
  }
  REQUIRE(flip_in_files(path, ".sst", hit.state.substr(1000, 64)) == 1);
  auto res = rocksdb_checkpoint_store::open(path);
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::checkpoint_corrupt),
                test::describe(res));
  CHECK_MESSAGE(test::context_of(res.error()).find(".sst") != std::string::npos,
                test::describe(res));
}

TEST_CASE("with table-file checks off, bytes flipped in an SST data block "
          "give checkpoint_corrupt naming the key on read") {
  test::temp_dir dir;
  auto path = dir / "db";
  rocksdb_store_options opts;
  opts.verify_table_files = false;
  auto good = make_checkpoint("acct-good", 1, 1);
  auto hit = make_checkpoint("acct-hit", 1, 2);
  {
    auto s = open_store(path);
    write_batch b;
    put_checkpoint(b, good);
    put_checkpoint(b, hit);
    REQUIRE_FALSE(s->write(b));
    REQUIRE_FALSE(s->flush());
  }
  REQUIRE(flip_in_files(path, ".sst", hit.state.substr(1000, 64)) == 1);
  auto opened = rocksdb_checkpoint_store::open(path, opts);
  REQUIRE_MESSAGE(opened, test::describe(opened));
  auto& s = **opened;
  auto res = read_checkpoint(s, "acct-hit");
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::checkpoint_corrupt),
                test::describe(res));
  CHECK_MESSAGE(test::context_of(res.error()).find("actor_state/acct-hit")
                  != std::string::npos,
                test::describe(res));
  // A scan that crosses the damaged block says so too.
  auto ks = s.keys(state);
  REQUIRE_FALSE(ks);
  CHECK(test::is(ks.error(), persist_errc::checkpoint_corrupt));
}

TEST_CASE("a flipped bit in an SST's properties block gives "
          "checkpoint_corrupt, not an abort inside RocksDB") {
  // RocksDB 7.8 parses the properties block before checking its checksum;
  // with this bit set it asserts (Debian's build keeps assertions on) or,
  // without assertions, reads out of bounds. The full-file CRC-32C check
  // before opening stops it.
  test::temp_dir dir;
  auto path = dir / "db";
  {
    auto s = open_store(path);
    write_batch b;
    b.put(state, "k", "v");
    REQUIRE_FALSE(s->write(b));
    REQUIRE_FALSE(s->flush());
  }
  auto ssts = test::files_ending_in(path, ".sst");
  REQUIRE(ssts.size() == 1);
  auto bytes = test::read_file(ssts[0]);
  // Block-based table footer (format_version 2-5, 53 bytes): checksum type
  // (1), metaindex handle (2 varints), index handle, padding, version (4),
  // magic (8). The properties block ends 5 bytes (its trailer) before the
  // metaindex block; its last 4 bytes count restart points, and the top bit
  // of that count marks a hash index.
  REQUIRE(bytes.size() > 53);
  REQUIRE(bytes.substr(bytes.size() - 8)
          == std::string{"\xf7\xcf\xf4\x85\xb7\x41\xe2\x88", 8});
  size_t pos = bytes.size() - 53 + 1;
  uint64_t meta_offset = 0;
  for (int shift = 0;; shift += 7) {
    auto c = static_cast<unsigned char>(bytes.at(pos++));
    meta_offset |= uint64_t{c & 0x7fu} << shift;
    if ((c & 0x80) == 0)
      break;
  }
  REQUIRE(meta_offset > 9);
  REQUIRE(meta_offset < bytes.size());
  bytes[meta_offset - 6] = static_cast<char>(bytes[meta_offset - 6] ^ 0x80);
  test::write_file(ssts[0], bytes);
  auto res = rocksdb_checkpoint_store::open(path);
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::checkpoint_corrupt),
                test::describe(res));
}

TEST_CASE("random bytes flipped in SST and WAL files never give a wrong "
          "value, a lost key or a crash") {
  // Each round: 8 checkpoints, 4 flushed to an SST and 4 only in the WAL;
  // close; flip 1-3 random bytes of one random .sst or .log file; reopen
  // and read everything. Allowed: the open fails with checkpoint_corrupt,
  // or each read gives the exact checkpoint or checkpoint_corrupt.
  std::mt19937 gen{20240611};
  size_t failed_opens = 0;
  for (int round = 0; round < 40; ++round) {
    CAPTURE(round);
    test::temp_dir dir;
    auto path = dir / "db";
    std::vector<checkpoint> cps;
    {
      auto s = open_store(path);
      for (int i = 0; i < 8; ++i) {
        cps.push_back(make_checkpoint("acct-" + std::to_string(i), 1,
                                      static_cast<uint32_t>(round * 8 + i)));
        cps.back().state.resize(200 + 300 * i);
        write_batch b;
        put_checkpoint(b, cps.back());
        REQUIRE_FALSE(s->write(b));
        if (i == 3)
          REQUIRE_FALSE(s->flush());
      }
    }
    auto files = test::files_ending_in(path, ".sst");
    for (auto& log : test::files_ending_in(path, ".log"))
      files.push_back(log);
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 2);
    auto file = files[gen() % files.size()];
    CAPTURE(file);
    auto bytes = test::read_file(file);
    REQUIRE_FALSE(bytes.empty());
    auto flips = 1 + gen() % 3;
    for (size_t k = 0; k < flips; ++k)
      bytes[gen() % bytes.size()] ^= static_cast<char>(1 + gen() % 255);
    test::write_file(file, bytes);
    auto opened = rocksdb_checkpoint_store::open(path);
    if (!opened) {
      CHECK_MESSAGE(test::is(opened.error(), persist_errc::checkpoint_corrupt),
                    test::describe(opened));
      ++failed_opens;
      continue;
    }
    for (auto& cp : cps) {
      auto res = read_checkpoint(**opened, cp.actor);
      if (!res) {
        CHECK_MESSAGE(test::is(res.error(), persist_errc::checkpoint_corrupt),
                      test::describe(res));
        continue;
      }
      REQUIRE_MESSAGE(res->has_value(), cp.actor << " was lost");
      CHECK(**res == cp);
    }
  }
  // Almost every flip is found; a flip in unused bytes may not matter.
  CHECK(failed_opens > 20);
}

TEST_CASE("bytes flipped in the write-ahead log give checkpoint_corrupt when "
          "reopening") {
  test::temp_dir dir;
  auto path = dir / "db";
  auto first = make_checkpoint("acct-1", 1, 1);
  auto second = make_checkpoint("acct-2", 1, 2);
  {
    auto s = open_store(path);
    for (auto& cp : {first, second}) {
      write_batch b;
      put_checkpoint(b, cp);
      REQUIRE_FALSE(s->write(b));
    }
    // Not flushed: both records live only in the WAL (NNNNNN.log).
  }
  REQUIRE(flip_in_files(path, ".log", first.state.substr(2000, 64)) == 1);
  auto res = rocksdb_checkpoint_store::open(path);
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::checkpoint_corrupt),
                test::describe(res));
  CHECK(test::context_of(res.error()).find(path) != std::string::npos);
}

namespace {

// Writes `n` values of `size` bytes (plus 1000 per index), one write each,
// to a fresh database and closes it, so all of them are records of its one
// WAL file. Returns that file and the offset of its last record fragment's
// 7-byte header (4 CRC, 2 length, 1 type), walking LevelDB's log format:
// 32 KiB blocks, fragments never cross a block, a block's last < 7 bytes
// are padding.
std::pair<std::string, size_t> wal_with_records(const std::string& path,
                                                int n, size_t size) {
  {
    auto s = open_store(path);
    for (int i = 0; i < n; ++i) {
      write_batch b;
      b.put(state, "k" + std::to_string(i),
            random_bytes(size + 1000 * i, static_cast<uint32_t>(i)));
      REQUIRE_FALSE(s->write(b));
    }
  }
  auto logs = test::files_ending_in(path, ".log");
  REQUIRE(logs.size() == 1);
  auto bytes = test::read_file(logs[0]);
  size_t pos = 0;
  size_t last = 0;
  for (;;) {
    size_t block_end = (pos / 32768 + 1) * 32768;
    if (block_end - pos < 7) {
      pos = block_end;
      continue;
    }
    if (pos + 7 > bytes.size())
      break;
    size_t len = static_cast<unsigned char>(bytes[pos + 4])
                 | static_cast<size_t>(static_cast<unsigned char>(bytes[pos + 5]))
                     << 8;
    last = pos;
    pos += 7 + len;
  }
  REQUIRE(pos == bytes.size());
  return {logs[0], last};
}

// The value `wal_with_records` wrote under "k<i>".
std::optional<std::string> wal_value(int i, size_t size) {
  return random_bytes(size + 1000 * i, static_cast<uint32_t>(i));
}

} // namespace

TEST_CASE("a damaged length in the WAL's last record gives checkpoint_corrupt "
          "instead of silently losing that write") {
  // RocksDB reads a last record that reaches past the end of the file as
  // torn by a crash and drops it, although it was synced and acknowledged.
  test::temp_dir dir;
  auto path = dir / "db";
  auto [log, last] = wal_with_records(path, 3, 100);
  auto bytes = test::read_file(log);
  REQUIRE(bytes.size() < 32768);
  bytes[last + 5] ^= 0x40; // the length's high byte: now past the end
  test::write_file(log, bytes);
  auto res = rocksdb_checkpoint_store::open(path);
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::checkpoint_corrupt),
                test::describe(res));
  CHECK(test::context_of(res.error()).find(".log") != std::string::npos);
}

TEST_CASE("a damaged length in the last fragment of a WAL longer than one "
          "block gives checkpoint_corrupt") {
  test::temp_dir dir;
  auto path = dir / "db";
  // 10 records of 10-19 KB: about 145 KB, records split across blocks.
  auto [log, last] = wal_with_records(path, 10, 10000);
  auto bytes = test::read_file(log);
  REQUIRE(last >= 32768);
  size_t len = static_cast<unsigned char>(bytes[last + 4])
               | static_cast<size_t>(static_cast<unsigned char>(bytes[last + 5]))
                   << 8;
  REQUIRE(len < 0x4000);
  bytes[last + 5] ^= 0x40; // adds 16 KiB: past the end of the file
  REQUIRE(last + 7 + (len ^ 0x4000) > bytes.size());
  test::write_file(log, bytes);
  auto res = rocksdb_checkpoint_store::open(path);
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::checkpoint_corrupt),
                test::describe(res));
}

TEST_CASE("a WAL record cut short by a crash is dropped and the database "
          "opens with every earlier write") {
  for (auto [n, size] : {std::pair<int, size_t>{3, 100}, {10, 10000}}) {
    CAPTURE(n);
    test::temp_dir dir;
    auto path = dir / "db";
    auto [log, last] = wal_with_records(path, n, size);
    auto bytes = test::read_file(log);
    test::write_file(log, bytes.substr(0, last + 7 + 50)); // a torn payload
    auto s = open_store(path);
    for (int i = 0; i + 1 < n; ++i)
      CHECK(read(*s, state, "k" + std::to_string(i)) == wal_value(i, size));
    CHECK_FALSE(read(*s, state, "k" + std::to_string(n - 1)).has_value());
  }
}

TEST_CASE("a record with a bad CRC read from RocksDB gives checkpoint_corrupt "
          "naming the actor") {
  // RocksDB stores the value exactly as given, so its own checksums pass:
  // only the record's CRC-32C can tell.
  test::temp_dir dir;
  auto path = dir / "db";
  auto cp = make_checkpoint("acct-7", 3, 7);
  {
    auto s = open_store(path);
    auto bytes = record_codec::encode(cp);
    auto pos = bytes.find(cp.state.substr(100, 16));
    REQUIRE(pos != std::string::npos);
    bytes[pos] ^= 0x01;
    write_batch b;
    b.put(state, cp.actor, bytes);
    REQUIRE_FALSE(s->write(b));
  }
  auto s = open_store(path);
  auto res = read_checkpoint(*s, "acct-7");
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::checkpoint_corrupt),
                test::describe(res));
  CHECK(test::context_of(res.error()).find("acct-7") != std::string::npos);
}

TEST_CASE("a record with an unknown format version read from RocksDB gives "
          "incompatible_state") {
  test::temp_dir dir;
  auto path = dir / "db";
  auto cp = make_checkpoint("acct-9", 1, 9);
  {
    auto s = open_store(path);
    auto bytes = record_codec::encode(cp);
    REQUIRE(bytes.substr(0, 2) == std::string{"\x08\x01"});
    bytes[1] = '\x05'; // written by a future format version 5
    write_batch b;
    b.put(state, cp.actor, bytes);
    REQUIRE_FALSE(s->write(b));
  }
  auto s = open_store(path);
  auto res = read_checkpoint(*s, "acct-9");
  REQUIRE_FALSE(res);
  CHECK_MESSAGE(test::is(res.error(), persist_errc::incompatible_state),
                test::describe(res));
  CHECK(test::context_of(res.error()).find("acct-9") != std::string::npos);
}
