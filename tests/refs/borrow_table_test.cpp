// Unit tests of the borrower's bookkeeping (borrow_table) and the owner's
// list of borrowers (borrower_set).

#include <doctest/doctest.h>

#include "dref/refs/borrow_table.hpp"
#include "dref/refs/error.hpp"

using namespace dref;

namespace {

ref_descriptor desc(uint64_t owner, uint64_t seq, uint16_t port = 4000) {
  ref_descriptor d;
  d.id = object_id{owner, seq};
  d.owner = process_address{owner, "127.0.0.1", port};
  return d;
}

} // namespace

TEST_CASE("a new borrow counts every ref and learns its owner's address") {
  borrow_table t;
  CHECK(t.add(desc(7, 1)));
  CHECK_FALSE(t.add(desc(7, 1)));
  CHECK(t.add_local_ref(object_id{7, 1}));
  REQUIRE(t.find(object_id{7, 1}) != nullptr);
  CHECK_EQ(t.find(object_id{7, 1})->local_refs, 3u);
  REQUIRE(t.owner_of(object_id{7, 1}) != nullptr);
  CHECK_EQ(t.owner_of(object_id{7, 1})->address.port, 4000);
  CHECK_EQ(t.owner_of(object_id{7, 1})->address.process, 7u);
}

TEST_CASE("a borrow is registered once, by the registration that started it") {
  borrow_table t;
  t.add(desc(7, 1));
  CHECK(t.start_registration(object_id{7, 1}, 5));
  // A second start finds it under way.
  CHECK_FALSE(t.start_registration(object_id{7, 1}, 6));
  // The answer of another registration changes nothing.
  t.registered(object_id{7, 1}, 6);
  CHECK_FALSE(t.find(object_id{7, 1})->registered);
  t.registered(object_id{7, 1}, 5);
  CHECK(t.find(object_id{7, 1})->registered);
  CHECK_EQ(t.find(object_id{7, 1})->registering, 0u);
  CHECK_FALSE(t.start_registration(object_id{7, 1}, 7));
}

TEST_CASE("the last local ref returns the entry with its generation") {
  borrow_table t;
  t.add(desc(7, 1));
  t.add(desc(7, 1));
  t.start_registration(object_id{7, 1}, 1);
  t.registered(object_id{7, 1}, 1);
  auto gen = t.find(object_id{7, 1})->gen;
  CHECK_FALSE(t.remove_local_ref(object_id{7, 1}).has_value());
  auto last = t.remove_local_ref(object_id{7, 1});
  REQUIRE(last.has_value());
  CHECK(last->registered);
  CHECK_EQ(last->gen, gen);
  CHECK_EQ(t.size(), 0u);
  // Unknown now: nothing more to do.
  CHECK_FALSE(t.remove_local_ref(object_id{7, 1}).has_value());
}

TEST_CASE("a borrow made again after its release gets a newer generation") {
  borrow_table t;
  t.add(desc(7, 1));
  auto first = t.find(object_id{7, 1})->gen;
  t.remove_local_ref(object_id{7, 1});
  t.add(desc(7, 1));
  CHECK_GT(t.find(object_id{7, 1})->gen, first);
}

TEST_CASE("a failed registration leaves the borrow unregistered") {
  borrow_table t;
  t.add(desc(7, 1));
  t.start_registration(object_id{7, 1}, 3);
  t.registration_failed(object_id{7, 1}, 3);
  auto e = t.find(object_id{7, 1});
  CHECK_FALSE(e->registered);
  CHECK_EQ(e->registering, 0u);
}

TEST_CASE("a dead owner fails exactly the objects it owns") {
  borrow_table t;
  t.add(desc(7, 1));
  t.add(desc(7, 2));
  t.add(desc(8, 1, 4001));
  t.start_registration(object_id{7, 2}, 4);
  auto ids = t.owner_died(7, make_error(refs_errc::owner_died, "gone"));
  CHECK_EQ(ids.size(), 2u);
  CHECK_EQ(t.owner_error(object_id{7, 2}), refs_errc::owner_died);
  CHECK_EQ(t.find(object_id{7, 2})->registering, 0u);
  CHECK_FALSE(t.owner_error(object_id{8, 1}));
  // Refs to its objects still count down normally.
  t.remove_local_ref(object_id{7, 1});
  t.remove_local_ref(object_id{7, 2});
  t.remove_local_ref(object_id{8, 1});
  CHECK_EQ(t.size(), 0u);
}

TEST_CASE("the borrower set counts each borrower once per object") {
  borrower_set s;
  CHECK(s.add(object_id{1, 1}, 100, 1));
  CHECK_FALSE(s.add(object_id{1, 1}, 100, 1)); // a duplicate
  CHECK(s.add(object_id{1, 1}, 200, 1));
  CHECK(s.add(object_id{1, 2}, 100, 2));
  CHECK_EQ(s.count(object_id{1, 1}), 2u);
  CHECK(s.remove(object_id{1, 1}, 200, 1));
  CHECK_FALSE(s.remove(object_id{1, 1}, 200, 1));
  auto gone = s.remove_borrower(100);
  CHECK_EQ(gone.size(), 2u);
  s.erase(object_id{1, 1});
  CHECK_EQ(s.size(), 0u);
}

TEST_CASE("a late release of an earlier borrow does not undo a newer one") {
  borrower_set s;
  s.add(object_id{1, 1}, 100, 1);
  // The borrower dropped and borrowed again; the new registration arrives
  // before the old release.
  CHECK_FALSE(s.add(object_id{1, 1}, 100, 2)); // already counted
  CHECK_FALSE(s.remove(object_id{1, 1}, 100, 1));
  CHECK_EQ(s.count(object_id{1, 1}), 1u);
  CHECK(s.remove(object_id{1, 1}, 100, 2));
  CHECK_EQ(s.count(object_id{1, 1}), 0u);
}

TEST_CASE("a duplicated or overtaken registration cannot count a borrower again") {
  borrower_set s;
  s.add(object_id{1, 1}, 100, 3);
  CHECK(s.remove(object_id{1, 1}, 100, 3));
  CHECK_FALSE(s.add(object_id{1, 1}, 100, 3)); // the same one, twice
  CHECK_FALSE(s.add(object_id{1, 1}, 100, 2)); // an older one, late
  CHECK_EQ(s.count(object_id{1, 1}), 0u);
  CHECK(s.add(object_id{1, 1}, 100, 4)); // a newer borrow counts
  CHECK_EQ(s.count(object_id{1, 1}), 1u);
}
