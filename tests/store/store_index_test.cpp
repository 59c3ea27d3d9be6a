// Unit tests of the node store's bookkeeping (no files, no processes): byte
// accounting, pins, and which copies make room, in which order.

#include <doctest/doctest.h>

#include "dref/store/error.hpp"
#include "dref/store/store_index.hpp"

#include "store_test_util.hpp"

using namespace dref;
using dref::test::code;
using dref::test::store_code;

namespace {

object_id oid(uint64_t seq) {
  return object_id{7, seq};
}

// Inserts and seals an object.
void add(store_index& ix, uint64_t seq, uint64_t size,
         copy_kind kind = copy_kind::primary) {
  REQUIRE(ix.make_room(size, true).value().empty());
  ix.insert(oid(seq), size, kind);
  ix.seal(oid(seq));
}

} // namespace

TEST_CASE("the index counts the bytes of objects in memory") {
  store_index ix{100};
  add(ix, 1, 30);
  add(ix, 2, 50);
  CHECK(ix.memory_used() == 80);
  CHECK(ix.count() == 2);
  ix.erase(oid(1));
  CHECK(ix.memory_used() == 50);
  CHECK(ix.count() == 1);
  ix.erase(oid(1)); // twice is harmless
  CHECK(ix.memory_used() == 50);
}

TEST_CASE("an object being written is pinned and not sealed until seal") {
  store_index ix{100};
  ix.insert(oid(1), 10, copy_kind::primary);
  auto e = ix.find(oid(1));
  REQUIRE(e != nullptr);
  CHECK_FALSE(e->sealed);
  CHECK(e->pins == 1);
  CHECK(ix.memory_used() == 10);
  ix.seal(oid(1));
  CHECK(ix.find(oid(1))->sealed);
  CHECK(ix.find(oid(1))->pins == 0);
}

TEST_CASE("make_room plans nothing when the value fits") {
  store_index ix{100};
  add(ix, 1, 60);
  auto p = ix.make_room(40, true);
  REQUIRE(p);
  CHECK(p->empty());
}

TEST_CASE("a value larger than the capacity is refused with store_full") {
  store_index ix{100};
  auto p = ix.make_room(101, true);
  REQUIRE_FALSE(p);
  CHECK(store_code(p.error()) == code(store_errc::store_full));
}

TEST_CASE("unpinned secondary copies are evicted first, least recently used "
          "first") {
  store_index ix{100};
  add(ix, 1, 20, copy_kind::secondary);
  add(ix, 2, 20, copy_kind::primary);
  add(ix, 3, 20, copy_kind::secondary);
  add(ix, 4, 20, copy_kind::secondary);
  add(ix, 5, 20, copy_kind::primary);
  ix.touch(oid(1)); // now 3 is the least recently used secondary
  auto p = ix.make_room(30, true);
  REQUIRE(p);
  CHECK(p->evict == std::vector<object_id>{oid(3), oid(4)});
  CHECK(p->drop.empty());
  CHECK(p->spill.empty());
  CHECK(p->bytes == 40);
}

TEST_CASE("primary copies are spilled only after every evictable secondary "
          "copy") {
  store_index ix{100};
  add(ix, 1, 20, copy_kind::primary);
  add(ix, 2, 20, copy_kind::secondary);
  add(ix, 3, 20, copy_kind::primary);
  add(ix, 4, 40, copy_kind::primary);
  auto p = ix.make_room(50, true);
  REQUIRE(p);
  CHECK(p->evict == std::vector<object_id>{oid(2)});
  CHECK(p->spill == std::vector<object_id>{oid(1), oid(3)});
  CHECK(p->bytes == 60);
}

TEST_CASE("primary copies that already have a spill file are dropped before "
          "any other is spilled") {
  store_index ix{100};
  add(ix, 1, 30);
  add(ix, 2, 30);
  add(ix, 3, 30);
  // 3 was spilled once and restored: its spill file is still valid.
  ix.set_on_disk(oid(3));
  ix.spilled(oid(3));
  ix.restored(oid(3));
  auto p = ix.make_room(20, true);
  REQUIRE(p);
  CHECK(p->drop == std::vector<object_id>{oid(3)});
  CHECK(p->spill.empty());
}

TEST_CASE("pinned and unsealed objects are never chosen") {
  store_index ix{100};
  add(ix, 1, 40, copy_kind::secondary);
  ix.pin(oid(1));
  ix.insert(oid(2), 40, copy_kind::primary); // being written
  auto p = ix.make_room(30, true);
  REQUIRE_FALSE(p);
  CHECK(store_code(p.error()) == code(store_errc::store_full));
  // Unpinning makes it a candidate again.
  CHECK(ix.unpin(oid(1), ix.find(oid(1))->generation));
  p = ix.make_room(30, true);
  REQUIRE(p);
  CHECK(p->evict == std::vector<object_id>{oid(1)});
}

TEST_CASE("without spilling, primary copies without a spill file stay and "
          "the put is refused") {
  store_index ix{100};
  add(ix, 1, 60);
  auto p = ix.make_room(50, false);
  REQUIRE_FALSE(p);
  CHECK(store_code(p.error()) == code(store_errc::store_full));
  p = ix.make_room(50, true);
  REQUIRE(p);
  CHECK(p->spill == std::vector<object_id>{oid(1)});
}

TEST_CASE("a spilled object leaves memory and comes back on restore") {
  store_index ix{100};
  add(ix, 1, 60);
  ix.set_on_disk(oid(1));
  ix.spilled(oid(1));
  CHECK(ix.memory_used() == 0);
  CHECK_FALSE(ix.find(oid(1))->in_memory);
  CHECK(ix.find(oid(1))->on_disk);
  ix.restored(oid(1));
  CHECK(ix.memory_used() == 60);
  CHECK(ix.find(oid(1))->in_memory);
  // Erasing a spilled object frees no memory bytes twice.
  ix.set_on_disk(oid(1));
  ix.spilled(oid(1));
  ix.erase(oid(1));
  CHECK(ix.memory_used() == 0);
  CHECK(ix.count() == 0);
}

TEST_CASE("an unpin of a freed incarnation does not touch a new one") {
  store_index ix{100};
  add(ix, 1, 10);
  ix.pin(oid(1));
  auto old_gen = ix.find(oid(1))->generation;
  ix.erase(oid(1));
  add(ix, 1, 10);
  ix.pin(oid(1));
  CHECK_FALSE(ix.unpin(oid(1), old_gen));
  CHECK(ix.find(oid(1))->pins == 1);
  auto gen = ix.find(oid(1))->generation;
  CHECK(ix.unpin(oid(1), gen));
  CHECK_FALSE(ix.unpin(oid(1), gen)); // no pin left: no underflow
  CHECK(ix.find(oid(1))->pins == 0);
}

TEST_CASE("touch moves an object to the most recently used end") {
  store_index ix{100};
  add(ix, 1, 10);
  add(ix, 2, 10);
  add(ix, 3, 10);
  ix.touch(oid(1));
  CHECK(ix.lru_order() == std::vector<object_id>{oid(2), oid(3), oid(1)});
}

TEST_CASE("an object being written can take another id and keeps its size, "
          "pin, generation and place in the LRU order") {
  store_index ix{100};
  add(ix, 1, 10);
  auto gen = ix.insert(oid(2), 20, copy_kind::primary);
  add(ix, 3, 30);
  ix.rekey(oid(2), oid(9));
  CHECK(ix.find(oid(2)) == nullptr);
  auto e = ix.find(oid(9));
  REQUIRE(e != nullptr);
  CHECK(e->size == 20);
  CHECK(e->pins == 1);
  CHECK_FALSE(e->sealed);
  CHECK(e->generation == gen);
  CHECK(ix.memory_used() == 60);
  CHECK(ix.count() == 3);
  CHECK(ix.lru_order() == std::vector<object_id>{oid(1), oid(9), oid(3)});
  ix.seal(oid(9));
  CHECK(ix.find(oid(9))->pins == 0);
  ix.erase(oid(9));
  CHECK(ix.memory_used() == 40);
  CHECK(ix.lru_order() == std::vector<object_id>{oid(1), oid(3)});
}
