// Unit tests of the in-memory checkpoint store, the test twin of the
// RocksDB-backed one.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include "dref/persist/checkpoint_store.hpp"

using namespace dref;

namespace {

// Reads `key`, failing the test on a read error.
std::optional<std::string> read(const checkpoint_store& s,
                                const std::string& key) {
  auto res = s.read(key);
  REQUIRE(res);
  return *res;
}

} // namespace

TEST_CASE("reading a missing key gives an empty optional, not an error") {
  memory_checkpoint_store s;
  auto res = s.read("nope");
  REQUIRE(res);
  CHECK_FALSE(res->has_value());
}

TEST_CASE("a written key reads back its value") {
  memory_checkpoint_store s;
  write_batch b;
  b.puts.emplace_back("actor/1", "state-1");
  REQUIRE_FALSE(s.write(b));
  auto v = read(s, "actor/1");
  REQUIRE(v.has_value());
  CHECK(*v == "state-1");
  CHECK_FALSE(read(s, "actor/2").has_value());
}

TEST_CASE("a batch's puts and erases are all visible after the write") {
  memory_checkpoint_store s;
  write_batch first;
  first.puts.emplace_back("a", "1");
  first.puts.emplace_back("b", "2");
  first.puts.emplace_back("c", "3");
  REQUIRE_FALSE(s.write(first));
  write_batch second;
  second.puts.emplace_back("a", "10");
  second.puts.emplace_back("d", "4");
  second.erases.emplace_back("b");
  second.erases.emplace_back("c");
  REQUIRE_FALSE(s.write(second));
  CHECK(read(s, "a") == std::optional<std::string>{"10"});
  CHECK(read(s, "d") == std::optional<std::string>{"4"});
  CHECK_FALSE(read(s, "b").has_value());
  CHECK_FALSE(read(s, "c").has_value());
}

TEST_CASE("erasing a missing key in a batch is not an error") {
  memory_checkpoint_store s;
  write_batch b;
  b.erases.emplace_back("never-written");
  b.puts.emplace_back("x", "1");
  REQUIRE_FALSE(s.write(b));
  CHECK(read(s, "x") == std::optional<std::string>{"1"});
  CHECK_FALSE(read(s, "never-written").has_value());
}

TEST_CASE("an empty batch changes nothing") {
  memory_checkpoint_store s;
  write_batch b;
  b.puts.emplace_back("k", "v");
  REQUIRE_FALSE(s.write(b));
  REQUIRE_FALSE(s.write(write_batch{}));
  CHECK(read(s, "k") == std::optional<std::string>{"v"});
}

TEST_CASE("values are stored as bytes, including empty and binary ones") {
  memory_checkpoint_store s;
  std::string binary{"a\0b\xff", 4};
  write_batch b;
  b.puts.emplace_back("empty", "");
  b.puts.emplace_back("bin", binary);
  REQUIRE_FALSE(s.write(b));
  auto e = read(s, "empty");
  REQUIRE(e.has_value());
  CHECK(e->empty());
  auto v = read(s, "bin");
  REQUIRE(v.has_value());
  CHECK(v->size() == 4);
  CHECK(*v == binary);
}

TEST_CASE("the store is usable through the checkpoint_store interface") {
  std::unique_ptr<checkpoint_store> s
    = std::make_unique<memory_checkpoint_store>();
  write_batch b;
  b.puts.emplace_back("k", "v");
  REQUIRE_FALSE(s->write(b));
  CHECK(read(*s, "k") == std::optional<std::string>{"v"});
}
