// The checkpoint_store contract, checked on both implementations: the
// in-memory twin and the RocksDB store (on disk in a fresh temp directory).
// Whatever passes here for one must pass for the other, so tests of higher
// layers may use the twin.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dref/persist/checkpoint_store.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

#include "persist_test_util.hpp"

using namespace dref;

namespace {

struct memory_store {
  memory_checkpoint_store impl;
  checkpoint_store& store() {
    return impl;
  }
};

struct rocksdb_store {
  test::temp_dir dir; // destroyed after impl
  std::unique_ptr<rocksdb_checkpoint_store> impl;
  rocksdb_store() {
    auto res = rocksdb_checkpoint_store::open(dir / "db");
    REQUIRE_MESSAGE(res, test::describe(res));
    impl = std::move(*res);
  }
  checkpoint_store& store() {
    return *impl;
  }
};

constexpr auto state = column_family::actor_state;
constexpr auto meta = column_family::actor_meta;

// Reads `key` from `cf`, failing the test on a read error.
std::optional<std::string> read(const checkpoint_store& s, column_family cf,
                                const std::string& key) {
  auto res = s.read(cf, key);
  REQUIRE_MESSAGE(res, test::describe(res));
  return *res;
}

std::vector<std::string> keys(const checkpoint_store& s, column_family cf,
                              const std::string& prefix = {}) {
  auto res = s.keys(cf, prefix);
  REQUIRE_MESSAGE(res, test::describe(res));
  return *res;
}

using some = std::optional<std::string>;

} // namespace

#define STORES memory_store, rocksdb_store

TEST_CASE_TEMPLATE("reading a missing key gives an empty optional, not an "
                   "error",
                   T, STORES) {
  T f;
  auto res = f.store().read(state, "nope");
  REQUIRE(res);
  CHECK_FALSE(res->has_value());
}

TEST_CASE_TEMPLATE("a written key reads back its value", T, STORES) {
  T f;
  write_batch b;
  b.put(state, "actor/1", "state-1");
  REQUIRE_FALSE(f.store().write(b));
  CHECK(read(f.store(), state, "actor/1") == some{"state-1"});
  CHECK_FALSE(read(f.store(), state, "actor/2").has_value());
}

TEST_CASE_TEMPLATE("a batch's puts and erases are all visible after the write",
                   T, STORES) {
  T f;
  write_batch first;
  first.put(state, "a", "1");
  first.put(state, "b", "2");
  first.put(meta, "c", "3");
  REQUIRE_FALSE(f.store().write(first));
  write_batch second;
  second.put(state, "a", "10");
  second.put(state, "d", "4");
  second.erase(state, "b");
  second.erase(meta, "c");
  REQUIRE_FALSE(f.store().write(second));
  CHECK(read(f.store(), state, "a") == some{"10"});
  CHECK(read(f.store(), state, "d") == some{"4"});
  CHECK_FALSE(read(f.store(), state, "b").has_value());
  CHECK_FALSE(read(f.store(), meta, "c").has_value());
}

TEST_CASE_TEMPLATE("a later op in a batch wins over an earlier op on the same "
                   "key",
                   T, STORES) {
  T f;
  write_batch b;
  b.put(state, "k", "first");
  b.erase(state, "k");
  b.put(state, "k", "second");
  b.put(state, "gone", "x");
  b.erase(state, "gone");
  REQUIRE_FALSE(f.store().write(b));
  CHECK(read(f.store(), state, "k") == some{"second"});
  CHECK_FALSE(read(f.store(), state, "gone").has_value());
}

TEST_CASE_TEMPLATE("erasing a missing key in a batch is not an error", T,
                   STORES) {
  T f;
  write_batch b;
  b.erase(state, "never-written");
  b.put(state, "x", "1");
  REQUIRE_FALSE(f.store().write(b));
  CHECK(read(f.store(), state, "x") == some{"1"});
  CHECK_FALSE(read(f.store(), state, "never-written").has_value());
}

TEST_CASE_TEMPLATE("an empty batch changes nothing", T, STORES) {
  T f;
  write_batch b;
  b.put(state, "k", "v");
  REQUIRE_FALSE(f.store().write(b));
  REQUIRE_FALSE(f.store().write(write_batch{}));
  CHECK(read(f.store(), state, "k") == some{"v"});
  CHECK(keys(f.store(), state) == std::vector<std::string>{"k"});
}

TEST_CASE_TEMPLATE("values are stored as bytes, including empty and binary "
                   "ones",
                   T, STORES) {
  T f;
  std::string binary{"a\0b\xff", 4};
  write_batch b;
  b.put(state, "empty", "");
  b.put(state, "bin", binary);
  b.put(state, std::string{"k\0ey", 4}, "nul in the key");
  REQUIRE_FALSE(f.store().write(b));
  auto e = read(f.store(), state, "empty");
  REQUIRE(e.has_value());
  CHECK(e->empty());
  auto v = read(f.store(), state, "bin");
  REQUIRE(v.has_value());
  CHECK(v->size() == 4);
  CHECK(*v == binary);
  CHECK(read(f.store(), state, std::string{"k\0ey", 4}) == some{"nul in the key"});
  CHECK_FALSE(read(f.store(), state, "k").has_value());
}

TEST_CASE_TEMPLATE("the same key in two column families holds two values", T,
                   STORES) {
  T f;
  write_batch b;
  b.put(state, "acct-1", "the state");
  b.put(meta, "acct-1", "the metadata");
  REQUIRE_FALSE(f.store().write(b));
  CHECK(read(f.store(), state, "acct-1") == some{"the state"});
  CHECK(read(f.store(), meta, "acct-1") == some{"the metadata"});
  write_batch erase;
  erase.erase(meta, "acct-1");
  REQUIRE_FALSE(f.store().write(erase));
  CHECK(read(f.store(), state, "acct-1") == some{"the state"});
  CHECK_FALSE(read(f.store(), meta, "acct-1").has_value());
}

TEST_CASE_TEMPLATE("keys lists one column family's keys with a prefix in byte "
                   "order",
                   T, STORES) {
  T f;
  write_batch b;
  b.put(state, "acct-2", "x");
  b.put(state, "acct-1", "x");
  b.put(state, "acct-\xff", "x");
  b.put(state, "acc", "x");
  b.put(state, "bank-1", "x");
  b.put(meta, "acct-3", "x");
  REQUIRE_FALSE(f.store().write(b));
  CHECK(keys(f.store(), state, "acct-")
        == std::vector<std::string>{"acct-1", "acct-2", "acct-\xff"});
  CHECK(keys(f.store(), state)
        == std::vector<std::string>{"acc", "acct-1", "acct-2", "acct-\xff",
                                    "bank-1"});
  CHECK(keys(f.store(), meta) == std::vector<std::string>{"acct-3"});
  CHECK(keys(f.store(), meta, "zzz").empty());
}

TEST_CASE("a write batch appends another batch's ops after its own") {
  write_batch a;
  a.put(state, "k", "1");
  write_batch b;
  b.erase(meta, "m");
  b.put(state, "k", "2");
  a.append(b);
  REQUIRE(a.ops.size() == 3);
  CHECK(a.ops[0].value == "1");
  CHECK(a.ops[1].kind == write_op::erase);
  CHECK(a.ops[1].cf == meta);
  CHECK(a.ops[2].value == "2");
  CHECK(a.byte_size() == 1 + 1 + 1 + 1 + 1);
}

TEST_CASE("column families have fixed on-disk names") {
  CHECK(to_string(column_family::actor_state) == "actor_state");
  CHECK(to_string(column_family::actor_meta) == "actor_meta");
  CHECK(key_name(column_family::actor_meta, "acct-1") == "actor_meta/acct-1");
}

TEST_CASE("the in-memory store is usable through the checkpoint_store "
          "interface") {
  std::unique_ptr<checkpoint_store> s
    = std::make_unique<memory_checkpoint_store>();
  write_batch b;
  b.put(state, "k", "v");
  REQUIRE_FALSE(s->write(b));
  CHECK(read(*s, state, "k") == some{"v"});
}
