// Unit tests of the borrower's bookkeeping (borrow_table) and the owner's
// list of borrowers (borrower_set).

#include <doctest/doctest.h>

#include "dref/refs/borrow_table.hpp"
#include "dref/refs/error.hpp"

using namespace dref;

namespace {

ref_descriptor desc(uint64_t owner, uint64_t seq, uint16_t port = 4000) {
  return ref_descriptor{object_id{owner, seq}, "127.0.0.1", port};
}

} // namespace

TEST_CASE("a new borrow needs one registration and counts every ref") {
  borrow_table t;
  CHECK(t.add(desc(7, 1)));
  CHECK_FALSE(t.add(desc(7, 1)));
  CHECK(t.add_local_ref(object_id{7, 1}));
  REQUIRE(t.find(object_id{7, 1}) != nullptr);
  CHECK_EQ(t.find(object_id{7, 1})->local_refs, 3u);
  auto todo = t.start_registration({object_id{7, 1}, object_id{7, 2}});
  REQUIRE_EQ(todo.size(), 1u);
  CHECK_EQ(todo[0], (object_id{7, 1}));
  // A second start finds it under way.
  CHECK(t.start_registration({object_id{7, 1}}).empty());
  t.registered(object_id{7, 1});
  CHECK(t.find(object_id{7, 1})->registered);
  REQUIRE(t.owner_of(object_id{7, 1}) != nullptr);
  CHECK_EQ(t.owner_of(object_id{7, 1})->port, 4000);
}

TEST_CASE("the last local ref of a registered borrow asks for a release") {
  borrow_table t;
  t.add(desc(7, 1));
  t.add(desc(7, 1));
  t.start_registration({object_id{7, 1}});
  t.registered(object_id{7, 1});
  CHECK_FALSE(t.remove_local_ref(object_id{7, 1}).has_value());
  auto last = t.remove_local_ref(object_id{7, 1});
  REQUIRE(last.has_value());
  CHECK(*last);
  CHECK_EQ(t.size(), 0u);
  // Unknown now: nothing more to do.
  CHECK_FALSE(t.remove_local_ref(object_id{7, 1}).has_value());
}

TEST_CASE("a borrow dropped before it was ever registered needs no release") {
  borrow_table t;
  t.add(desc(7, 1));
  auto last = t.remove_local_ref(object_id{7, 1});
  REQUIRE(last.has_value());
  CHECK_FALSE(*last);
}

TEST_CASE("a borrow dropped while its registration is on the way is released") {
  borrow_table t;
  t.add(desc(7, 1));
  t.start_registration({object_id{7, 1}});
  auto last = t.remove_local_ref(object_id{7, 1});
  REQUIRE(last.has_value());
  CHECK(*last);
}

TEST_CASE("a dead owner fails exactly the objects it owns") {
  borrow_table t;
  t.add(desc(7, 1));
  t.add(desc(7, 2));
  t.add(desc(8, 1, 4001));
  auto ids = t.owner_died(7, make_error(refs_errc::owner_died, "gone"));
  CHECK_EQ(ids.size(), 2u);
  CHECK_EQ(t.owner_error(object_id{7, 2}), refs_errc::owner_died);
  CHECK_FALSE(t.owner_error(object_id{8, 1}));
  // Refs to its objects still count down normally.
  t.remove_local_ref(object_id{7, 1});
  t.remove_local_ref(object_id{7, 2});
  t.remove_local_ref(object_id{8, 1});
  CHECK_EQ(t.size(), 0u);
}

TEST_CASE("the borrower set records each borrower once per object") {
  borrower_set s;
  CHECK(s.add(object_id{1, 1}, 100));
  CHECK_FALSE(s.add(object_id{1, 1}, 100));
  CHECK(s.add(object_id{1, 1}, 200));
  CHECK(s.add(object_id{1, 2}, 100));
  CHECK_EQ(s.count(object_id{1, 1}), 2u);
  CHECK(s.remove(object_id{1, 1}, 200));
  CHECK_FALSE(s.remove(object_id{1, 1}, 200));
  auto gone = s.remove_borrower(100);
  CHECK_EQ(gone.size(), 2u);
  CHECK_EQ(s.size(), 0u);
}
