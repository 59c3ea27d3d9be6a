// Unit tests of eviction in a node store on the real /dev/shm: which copies
// go first when room is needed, and that their files go with them.

#include <doctest/doctest.h>

#include <sys/stat.h>

#include "dref/store/error.hpp"
#include "dref/store/node_store.hpp"

#include "store_test_util.hpp"

using namespace dref;
using namespace dref::test;

namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

object_id oid(uint64_t seq) {
  return object_id{0xE, seq};
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

} // namespace

TEST_CASE("secondary copies are evicted least recently used first, before "
          "any primary copy is spilled") {
  store_fixture f{10 * mib};
  auto& s = *f.store;
  auto v = pattern(1, 2 * mib);
  // s1 s2 s3 secondary, p1 p2 primary: 10 MiB, full.
  REQUIRE(s.put(oid(1), v.data(), v.size(), copy_kind::secondary));
  REQUIRE(s.put(oid(2), v.data(), v.size(), copy_kind::secondary));
  REQUIRE(s.put(oid(3), v.data(), v.size(), copy_kind::secondary));
  REQUIRE(s.put(oid(11), v.data(), v.size()));
  REQUIRE(s.put(oid(12), v.data(), v.size()));
  REQUIRE(s.get(oid(1))); // s1 is now more recent than s2 and s3
  auto p3 = pattern(3, 3 * mib);
  REQUIRE(s.put(oid(13), p3.data(), p3.size()));
  // 3 MiB needed: s2 then s3 went (LRU), s1 stayed, nothing spilled.
  CHECK_FALSE(s.contains(oid(2)));
  CHECK_FALSE(s.contains(oid(3)));
  CHECK_FALSE(exists(s.segment_path(oid(2))));
  CHECK_FALSE(exists(s.segment_path(oid(3))));
  CHECK(s.contains(oid(1)));
  CHECK(s.stats().evictions == 2);
  CHECK(s.stats().spill_writes == 0);
  // 9 MiB used; 4 more needed: the last secondary s1 (2), then the least
  // recently used primary p1 (2) is spilled.
  auto p4 = pattern(4, 4 * mib);
  REQUIRE(s.put(oid(14), p4.data(), p4.size()));
  CHECK_FALSE(s.contains(oid(1)));
  CHECK(s.contains(oid(11)));
  CHECK_FALSE(exists(s.segment_path(oid(11))));
  CHECK(exists(s.spill_path(oid(11))));
  CHECK(exists(s.segment_path(oid(12))));
  auto st = s.stats();
  CHECK(st.evictions == 3);
  CHECK(st.spill_writes == 1);
  CHECK(st.memory_bytes == 2 * mib + 3 * mib + 4 * mib);
  CHECK(st.memory_bytes <= st.capacity);
  for (auto seq : {11, 12, 13, 14})
    CHECK_FALSE(s.free(oid(seq)));
}

TEST_CASE("an evicted secondary copy is gone for good: get reports "
          "not_found") {
  store_fixture f{4 * mib};
  auto& s = *f.store;
  auto v = pattern(1, 3 * mib);
  REQUIRE(s.put(oid(1), v.data(), v.size(), copy_kind::secondary));
  REQUIRE(s.put(oid(2), v.data(), v.size()));
  auto got = s.get(oid(1));
  REQUIRE_FALSE(got);
  CHECK(store_code(got.error()) == code(store_errc::not_found));
  CHECK(f.spill.entries().empty()); // secondaries are never spilled
}
