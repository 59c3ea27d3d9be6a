// Unit tests of the ownership table's counting and freeing rules.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <vector>

#include "dref/refs/error.hpp"
#include "dref/refs/ownership_table.hpp"

using namespace dref;

namespace {

object_id oid(uint64_t seq) {
  return object_id{42, seq};
}

std::shared_ptr<const blob> bytes(size_t n) {
  return std::make_shared<const blob>(n, 'x');
}

// Records what the table frees.
struct fixture {
  std::map<object_id, object_entry> freed;
  ownership_table table{[this](const object_id& id, object_entry&& e) {
    CHECK(freed.count(id) == 0); // freed at most once
    freed.emplace(id, std::move(e));
  }};
};

} // namespace

TEST_CASE("a new task result is pending with one local ref and its lineage") {
  fixture f;
  auto made_by = std::make_shared<lineage>();
  made_by->function = "add";
  f.table.add_pending(oid(1), made_by);
  auto e = f.table.find(oid(1));
  REQUIRE(e != nullptr);
  CHECK(e->state == object_state::pending);
  CHECK(e->local_refs == 1);
  CHECK(e->submitted_refs == 0);
  CHECK(e->made_by->function == "add");
  CHECK(f.table.size() == 1);
}

TEST_CASE("a ready object is freed when its last local ref goes") {
  fixture f;
  f.table.add_pending(oid(1), nullptr);
  CHECK(f.table.add_local_ref(oid(1)));
  CHECK(f.table.set_ready(oid(1), bytes(8), 8, 3));
  CHECK(f.table.remove_local_ref(oid(1)));
  CHECK(f.freed.empty());
  CHECK(f.table.find(oid(1))->local_refs == 1);
  CHECK(f.table.remove_local_ref(oid(1)));
  REQUIRE(f.freed.count(oid(1)) == 1);
  CHECK(f.freed[oid(1)].locations == std::vector<worker_id>{3});
  CHECK(f.table.find(oid(1)) == nullptr);
  CHECK(f.table.size() == 0);
}

TEST_CASE("a pending object whose refs are gone is freed when its task ends") {
  fixture f;
  f.table.add_pending(oid(1), nullptr);
  f.table.remove_local_ref(oid(1));
  // Still there: the worker will store a result that must be freed too.
  REQUIRE(f.table.find(oid(1)) != nullptr);
  CHECK(f.freed.empty());
  CHECK(f.table.set_ready(oid(1), nullptr, 1 << 20, 7));
  REQUIRE(f.freed.count(oid(1)) == 1);
  CHECK(f.freed[oid(1)].locations == std::vector<worker_id>{7});
  CHECK(f.table.size() == 0);
}

TEST_CASE("a submitted task keeps its argument alive after the refs go") {
  fixture f;
  f.table.add_ready(oid(1), bytes(4));
  CHECK(f.table.add_submitted_ref(oid(1)));
  f.table.remove_local_ref(oid(1));
  CHECK(f.freed.empty());
  CHECK(f.table.find(oid(1))->submitted_refs == 1);
  CHECK(f.table.remove_submitted_ref(oid(1)));
  CHECK(f.freed.count(oid(1)) == 1);
}

TEST_CASE("two submitted tasks need both to finish before the free") {
  fixture f;
  f.table.add_ready(oid(1), bytes(4));
  f.table.add_submitted_ref(oid(1));
  f.table.add_submitted_ref(oid(1));
  f.table.remove_local_ref(oid(1));
  f.table.remove_submitted_ref(oid(1));
  CHECK(f.freed.empty());
  f.table.remove_submitted_ref(oid(1));
  CHECK(f.freed.count(oid(1)) == 1);
}

TEST_CASE("a put value is ready at the owner with no worker location") {
  fixture f;
  f.table.add_ready(oid(5), bytes(16));
  auto e = f.table.find(oid(5));
  REQUIRE(e != nullptr);
  CHECK(e->state == object_state::ready);
  CHECK(e->size == 16);
  CHECK(e->locations.empty());
  CHECK(e->made_by == nullptr);
  f.table.remove_local_ref(oid(5));
  REQUIRE(f.freed.count(oid(5)) == 1);
  CHECK(f.freed[oid(5)].value->size() == 16);
}

TEST_CASE("a failed object keeps its error and drops the owner's copy") {
  fixture f;
  f.table.add_ready(oid(1), bytes(4));
  CHECK(f.table.set_failed(oid(1), make_error(refs_errc::object_lost)));
  auto e = f.table.find(oid(1));
  REQUIRE(e != nullptr);
  CHECK(e->state == object_state::failed);
  CHECK(e->value == nullptr);
  CHECK(e->error.code() == static_cast<uint8_t>(refs_errc::object_lost));
}

TEST_CASE("a failed result with no refs left is freed at once") {
  fixture f;
  f.table.add_pending(oid(1), nullptr);
  f.table.remove_local_ref(oid(1));
  CHECK(f.table.add_location(oid(1), 2));
  CHECK(f.table.set_failed(oid(1), make_error(refs_errc::object_lost)));
  REQUIRE(f.freed.count(oid(1)) == 1);
  CHECK(f.freed[oid(1)].locations == std::vector<worker_id>{2});
}

TEST_CASE("set_ready refuses unknown and already finished objects") {
  fixture f;
  CHECK_FALSE(f.table.set_ready(oid(9), nullptr, 0, 1));
  f.table.add_pending(oid(1), nullptr);
  CHECK(f.table.set_ready(oid(1), bytes(1), 1, 1));
  CHECK_FALSE(f.table.set_ready(oid(1), bytes(1), 1, 1));
  CHECK(f.table.find(oid(1))->locations.size() == 1);
}

TEST_CASE("counting on an unknown id reports false and changes nothing") {
  fixture f;
  CHECK_FALSE(f.table.add_local_ref(oid(1)));
  CHECK_FALSE(f.table.remove_local_ref(oid(1)));
  CHECK_FALSE(f.table.add_submitted_ref(oid(1)));
  CHECK_FALSE(f.table.remove_submitted_ref(oid(1)));
  CHECK_FALSE(f.table.add_location(oid(1), 1));
  CHECK(f.table.size() == 0);
  CHECK(f.freed.empty());
}

TEST_CASE("a location is recorded once") {
  fixture f;
  f.table.add_pending(oid(1), nullptr);
  f.table.set_ready(oid(1), nullptr, 10, 4);
  f.table.add_location(oid(1), 4);
  f.table.add_location(oid(1), 5);
  CHECK(f.table.find(oid(1))->locations == std::vector<worker_id>{4, 5});
}

TEST_CASE("losing a worker fails objects whose only copy it held") {
  fixture f;
  // 1: stored only at worker 1 -> lost. 2: also at worker 2 -> survives.
  // 3: inline copy at the owner -> survives. 4: pending -> untouched.
  for (uint64_t i = 1; i <= 4; ++i)
    f.table.add_pending(oid(i), nullptr);
  f.table.set_ready(oid(1), nullptr, 1 << 20, 1);
  f.table.set_ready(oid(2), nullptr, 1 << 20, 1);
  f.table.add_location(oid(2), 2);
  f.table.set_ready(oid(3), bytes(8), 8, 1);
  auto lost = f.table.drop_location(1);
  CHECK(lost == std::vector<object_id>{oid(1)});
  CHECK(f.table.find(oid(1))->state == object_state::failed);
  CHECK(f.table.find(oid(1))->error.code()
        == static_cast<uint8_t>(refs_errc::object_lost));
  CHECK(f.table.find(oid(2))->state == object_state::ready);
  CHECK(f.table.find(oid(2))->locations == std::vector<worker_id>{2});
  CHECK(f.table.find(oid(3))->state == object_state::ready);
  CHECK(f.table.find(oid(3))->locations.empty());
  CHECK(f.table.find(oid(4))->state == object_state::pending);
}

TEST_CASE("a copy in the node store keeps an object ready after its "
          "producing worker is lost") {
  fixture f;
  f.table.add_pending(oid(1), nullptr);
  CHECK(f.table.set_ready(oid(1), nullptr, 1 << 20, 1, node_location));
  CHECK(f.table.find(oid(1))->locations
        == std::vector<worker_id>{1, node_location});
  auto lost = f.table.drop_location(1);
  CHECK(lost.empty());
  CHECK(f.table.find(oid(1))->state == object_state::ready);
  CHECK(f.table.find(oid(1))->locations
        == std::vector<worker_id>{node_location});
  CHECK(f.table.remove_local_ref(oid(1)));
  REQUIRE(f.freed.count(oid(1)) == 1);
  CHECK(f.freed[oid(1)].locations == std::vector<worker_id>{node_location});
}

TEST_CASE("a result freed at once when it becomes ready lists both copies") {
  fixture f;
  f.table.add_pending(oid(1), nullptr);
  CHECK(f.table.remove_local_ref(oid(1))); // pending: stays
  CHECK(f.freed.empty());
  CHECK(f.table.set_ready(oid(1), nullptr, 1 << 20, 2, node_location));
  REQUIRE(f.freed.count(oid(1)) == 1);
  CHECK(f.freed[oid(1)].locations == std::vector<worker_id>{2, node_location});
}

TEST_CASE("every object of a large batch is freed exactly once") {
  fixture f;
  constexpr uint64_t n = 10000;
  for (uint64_t i = 1; i <= n; ++i)
    f.table.add_pending(oid(i), nullptr);
  for (uint64_t i = 1; i <= n; ++i) {
    if (i % 2 == 0)
      f.table.remove_local_ref(oid(i)); // dropped while pending
    f.table.set_ready(oid(i), bytes(1), 1, static_cast<worker_id>(i % 3 + 1));
  }
  CHECK(f.freed.size() == n / 2);
  for (uint64_t i = 1; i <= n; i += 2)
    f.table.remove_local_ref(oid(i));
  CHECK(f.freed.size() == n);
  CHECK(f.table.size() == 0);
}
