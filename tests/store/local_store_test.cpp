// Unit tests of a worker's in-memory store: lookups, byte accounting and
// consistency under two threads.

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "dref/refs/error.hpp"
#include "dref/refs/object_id.hpp"
#include "dref/store/local_store.hpp"

using namespace dref;

namespace {

object_id oid(uint64_t seq, uint64_t owner = 3) {
  return object_id{owner, seq};
}

stored_object value_of(size_t n, char fill = 'x') {
  return stored_object{std::make_shared<const blob>(n, fill), caf::error{}};
}

} // namespace

TEST_CASE("an empty store holds nothing") {
  local_store s;
  CHECK(s.count() == 0);
  CHECK(s.bytes() == 0);
  CHECK_FALSE(s.get(oid(1)).has_value());
  CHECK_FALSE(s.erase(oid(1)));
}

TEST_CASE("a stored value is returned by get with its bytes") {
  local_store s;
  s.put(oid(1), value_of(5, 'a'));
  CHECK(s.count() == 1);
  CHECK(s.bytes() == 5);
  auto got = s.get(oid(1));
  REQUIRE(got.has_value());
  REQUIRE(got->value != nullptr);
  CHECK(*got->value == blob(5, 'a'));
  CHECK_FALSE(got->error);
  // Ids of another owner with the same seq are different objects.
  CHECK_FALSE(s.get(oid(1, 4)).has_value());
}

TEST_CASE("erase drops the object and its bytes and reports whether it was "
          "there") {
  local_store s;
  s.put(oid(1), value_of(5));
  s.put(oid(2), value_of(7));
  CHECK(s.count() == 2);
  CHECK(s.bytes() == 12);
  CHECK(s.erase(oid(1)));
  CHECK(s.count() == 1);
  CHECK(s.bytes() == 7);
  CHECK_FALSE(s.get(oid(1)).has_value());
  CHECK(s.get(oid(2)).has_value());
  CHECK_FALSE(s.erase(oid(1)));
  CHECK(s.bytes() == 7);
  CHECK(s.erase(oid(2)));
  CHECK(s.count() == 0);
  CHECK(s.bytes() == 0);
}

TEST_CASE("replacing an object counts only the new value's bytes") {
  local_store s;
  s.put(oid(1), value_of(10, 'a'));
  s.put(oid(1), value_of(3, 'b'));
  CHECK(s.count() == 1);
  CHECK(s.bytes() == 3);
  auto got = s.get(oid(1));
  REQUIRE(got.has_value());
  REQUIRE(got->value != nullptr);
  CHECK(*got->value == blob(3, 'b'));
  s.put(oid(1), value_of(20));
  CHECK(s.bytes() == 20);
  CHECK(s.erase(oid(1)));
  CHECK(s.bytes() == 0);
}

TEST_CASE("an error entry is stored with no bytes and returned with its "
          "error") {
  local_store s;
  s.put(oid(1), value_of(4));
  s.put(oid(2), stored_object{nullptr, make_error(refs_errc::object_lost,
                                                  "gone")});
  CHECK(s.count() == 2);
  CHECK(s.bytes() == 4);
  auto got = s.get(oid(2));
  REQUIRE(got.has_value());
  CHECK(got->value == nullptr);
  REQUIRE(got->error);
  CHECK(got->error.category() == refs_category);
  CHECK(got->error.code() == static_cast<uint8_t>(refs_errc::object_lost));
  CHECK(s.erase(oid(2)));
  CHECK(s.bytes() == 4);
}

TEST_CASE("replacing a value by an error entry releases the value's bytes") {
  local_store s;
  s.put(oid(1), value_of(8));
  s.put(oid(1), stored_object{nullptr, make_error(refs_errc::owner_died)});
  CHECK(s.count() == 1);
  CHECK(s.bytes() == 0);
  s.put(oid(1), value_of(6));
  CHECK(s.bytes() == 6);
  auto got = s.get(oid(1));
  REQUIRE(got.has_value());
  CHECK_FALSE(got->error);
}

TEST_CASE("a value read before it is erased stays usable by its reader") {
  local_store s;
  s.put(oid(1), value_of(3, 'z'));
  auto got = s.get(oid(1));
  REQUIRE(got.has_value());
  CHECK(s.erase(oid(1)));
  REQUIRE(got->value != nullptr);
  CHECK(*got->value == blob(3, 'z'));
  CHECK(got->value.use_count() == 1);
}

TEST_CASE("puts and erases from two threads keep count and bytes consistent") {
  constexpr uint64_t n = 20000;
  local_store s;
  SUBCASE("on disjoint ids, each thread erasing half of its own") {
    auto work = [&s](uint64_t owner, size_t size, uint64_t& missed) {
      for (uint64_t i = 1; i <= n; ++i)
        s.put(oid(i, owner), value_of(size));
      for (uint64_t i = 1; i <= n; i += 2)
        if (!s.erase(oid(i, owner)))
          ++missed;
    };
    uint64_t missed1 = 0;
    uint64_t missed2 = 0;
    std::thread t1{work, 1, 3, std::ref(missed1)};
    std::thread t2{work, 2, 5, std::ref(missed2)};
    t1.join();
    t2.join();
    CHECK(missed1 == 0);
    CHECK(missed2 == 0);
    CHECK(s.count() == n);
    CHECK(s.bytes() == (n / 2) * 3 + (n / 2) * 5);
  }
  SUBCASE("on the same ids, one thread putting while the other erases") {
    constexpr uint64_t ids = 64;
    std::thread putter{[&s] {
      for (uint64_t i = 0; i < n; ++i)
        s.put(oid(i % ids + 1), value_of(i % 7 + 1));
    }};
    std::thread eraser{[&s] {
      for (uint64_t i = 0; i < n; ++i)
        s.erase(oid((i * 5) % ids + 1));
    }};
    putter.join();
    eraser.join();
    // bytes() must equal the sum of what is actually left.
    uint64_t sum = 0;
    size_t present = 0;
    for (uint64_t i = 1; i <= ids; ++i) {
      if (auto got = s.get(oid(i))) {
        ++present;
        REQUIRE(got->value != nullptr);
        sum += got->value->size();
      }
    }
    CHECK(s.count() == present);
    CHECK(s.bytes() == sum);
    // Clearing the rest brings both back to zero.
    for (uint64_t i = 1; i <= ids; ++i)
      s.erase(oid(i));
    CHECK(s.count() == 0);
    CHECK(s.bytes() == 0);
  }
}
