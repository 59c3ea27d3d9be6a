// Unit tests of object_id: validity, order, rendering, hashing and its wire
// form.

#include <doctest/doctest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <set>
#include <unordered_set>
#include <vector>

#include "dref/refs/error.hpp"
#include "dref/refs/object_id.hpp"

using namespace dref;

TEST_CASE("a default-constructed object id names nothing") {
  object_id id;
  CHECK(id.owner == 0);
  CHECK(id.seq == 0);
  CHECK_FALSE(id.valid());
}

TEST_CASE("an object id is valid exactly when its seq is not zero") {
  CHECK(object_id{0, 1}.valid());
  CHECK(object_id{7, 1}.valid());
  CHECK_FALSE(object_id{7, 0}.valid());
}

TEST_CASE("object ids are equal only when owner and seq both match") {
  object_id a{1, 2};
  CHECK(a == object_id{1, 2});
  CHECK_FALSE(a != object_id{1, 2});
  CHECK(a != object_id{1, 3});
  CHECK(a != object_id{2, 2});
  CHECK_FALSE(a == object_id{2, 1});
}

TEST_CASE("object ids order by owner first, then by seq") {
  CHECK(object_id{1, 9} < object_id{2, 1});
  CHECK_FALSE(object_id{2, 1} < object_id{1, 9});
  CHECK(object_id{1, 1} < object_id{1, 2});
  CHECK_FALSE(object_id{1, 2} < object_id{1, 1});
  CHECK_FALSE(object_id{1, 1} < object_id{1, 1});
  std::set<object_id> ids{{2, 1}, {1, 3}, {1, 1}, {2, 0}};
  std::vector<object_id> sorted{ids.begin(), ids.end()};
  REQUIRE(sorted.size() == 4);
  CHECK(sorted[0] == object_id{1, 1});
  CHECK(sorted[1] == object_id{1, 3});
  CHECK(sorted[2] == object_id{2, 0});
  CHECK(sorted[3] == object_id{2, 1});
}

TEST_CASE("an object id renders as its owner in 16 hex digits, a colon and "
          "its seq in decimal") {
  CHECK(to_string(object_id{}) == "0000000000000000:0");
  CHECK(to_string(object_id{0xabc, 42}) == "0000000000000abc:42");
  CHECK(to_string(object_id{0xffffffffffffffffull, 18446744073709551615ull})
        == "ffffffffffffffff:18446744073709551615");
}

TEST_CASE("an object id parses back from its rendering and nothing else "
          "parses") {
  for (auto id : {object_id{1, 1}, object_id{0xfedcba9876543210ull, 42},
                  object_id{UINT64_MAX, UINT64_MAX}, object_id{}}) {
    auto back = object_id_from_string(to_string(id));
    REQUIRE(back);
    CHECK(*back == id);
  }
  for (auto bad : {"", "00000000000000aa", "00000000000000aa:",
                   "00000000000000AA:1", "0000000000000aa:1",
                   "00000000000000aa:01", "00000000000000aa:-1",
                   "00000000000000aa:1x", "00000000000000aa;1",
                   "00000000000000aa:18446744073709551616"})
    CHECK_MESSAGE(!object_id_from_string(bad), bad);
}

TEST_CASE("equal object ids hash equally") {
  std::hash<object_id> h;
  CHECK(h(object_id{5, 6}) == h(object_id{5, 6}));
}

TEST_CASE("the hash spreads ids of different owners with the same seq") {
  std::hash<object_id> h;
  // Sequential owners (e.g. test setups).
  std::unordered_set<size_t> seen;
  for (uint64_t owner = 1; owner <= 1000; ++owner)
    seen.insert(h(object_id{owner, 1}));
  CHECK(seen.size() == 1000);
  // Random owners, as drawn by real processes: full hashes all differ and
  // the low 16 bits (what a table's bucket index depends on) nearly so.
  std::mt19937_64 rng{12345};
  std::unordered_set<size_t> full;
  std::unordered_set<size_t> low;
  for (int i = 0; i < 1000; ++i) {
    auto id = object_id{rng(), 1};
    full.insert(h(id));
    low.insert(h(id) & 0xffff);
  }
  CHECK(full.size() == 1000);
  // 1000 random draws from 65536 values collide ~8 times on average.
  CHECK(low.size() >= 970);
}

TEST_CASE("the hash spreads ids of many owners with many seqs") {
  std::hash<object_id> h;
  std::mt19937_64 rng{777};
  std::unordered_set<size_t> seen;
  for (int o = 0; o < 100; ++o) {
    auto owner = rng();
    for (uint64_t seq = 1; seq <= 100; ++seq)
      seen.insert(h(object_id{owner, seq}));
  }
  CHECK(seen.size() == 10000);
}

