// kept_values: which values the durable actors' checkpoints keep on disk,
// and what each checkpoint write adds and erases (the bookkeeping behind
// "Refs in durable state", docs/architecture.md).

#include <doctest/doctest.h>

#include <vector>

#include "dref/persist/kept_values.hpp"

using namespace dref;

namespace {

object_id id(uint64_t seq) {
  return object_id{0xabc, seq};
}

std::vector<object_id> ids(std::initializer_list<uint64_t> seqs) {
  std::vector<object_id> result;
  for (auto s : seqs)
    result.push_back(id(s));
  return result;
}

} // namespace

TEST_CASE("a first checkpoint puts every value it lists and erases nothing") {
  kept_values k;
  auto p = k.stage("a", 1, ids({2, 1, 2}));
  CHECK(p.put == ids({1, 2}));
  CHECK(p.erase.empty());
  CHECK_FALSE(k.kept("a", id(1))); // staged, not committed
  k.commit();
  CHECK(k.kept("a", id(1)));
  CHECK(k.kept("a", id(2)));
  CHECK(k.size() == 2);
}

TEST_CASE("a value stays kept while either of the actor's two checkpoints "
          "lists it") {
  kept_values k;
  k.stage("a", 1, ids({1, 2}));
  k.commit();
  // Version 2 (other slot) drops 1: version 1 still lists it.
  auto p2 = k.stage("a", 2, ids({2, 3}));
  CHECK(p2.put == ids({3}));
  CHECK(p2.erase.empty());
  k.commit();
  CHECK(k.kept("a", id(1)));
  // Version 3 replaces version 1: 1 is listed by neither 2 nor 3.
  auto p3 = k.stage("a", 3, ids({3}));
  CHECK(p3.put.empty());
  CHECK(p3.erase == ids({1}));
  k.commit();
  CHECK_FALSE(k.kept("a", id(1)));
  CHECK(k.kept("a", id(2))); // version 2 lists it
  // Version 4 replaces version 2: 2 goes.
  auto p4 = k.stage("a", 4, ids({3}));
  CHECK(p4.erase == ids({2}));
  k.commit();
  CHECK(k.size() == 1);
}

TEST_CASE("a value dropped and taken back is written again only once it was "
          "erased") {
  kept_values k;
  k.stage("a", 1, ids({1}));
  k.stage("a", 2, ids({}));
  k.commit();
  auto p = k.stage("a", 3, ids({1})); // replaces 1, which listed it
  CHECK(p.put.empty());               // version 1 still kept it
  CHECK(p.erase.empty());
  k.commit();
  k.stage("a", 4, ids({}));
  k.stage("a", 5, ids({}));
  k.commit();
  CHECK(k.size() == 0);
  CHECK(k.stage("a", 6, ids({1})).put == ids({1}));
}

TEST_CASE("several checkpoints of one actor in one batch plan against each "
          "other") {
  kept_values k;
  k.stage("a", 1, ids({1}));
  k.commit();
  auto p2 = k.stage("a", 2, ids({2}));
  auto p3 = k.stage("a", 3, ids({3})); // replaces 1 in the same batch
  CHECK(p2.put == ids({2}));
  CHECK(p3.put == ids({3}));
  CHECK(p3.erase == ids({1}));
  k.commit();
  CHECK_FALSE(k.kept("a", id(1)));
  CHECK(k.kept("a", id(2)));
  CHECK(k.kept("a", id(3)));
}

TEST_CASE("a failed write leaves the kept values as they were") {
  kept_values k;
  k.stage("a", 1, ids({1}));
  k.commit();
  k.stage("a", 2, ids({2}));
  k.stage("a", 3, ids({}));
  k.abort();
  CHECK(k.kept("a", id(1)));
  CHECK_FALSE(k.kept("a", id(2)));
  // The next write (versions only go up) plans against the committed view.
  auto p = k.stage("a", 4, ids({2}));
  CHECK(p.put == ids({2}));
  CHECK(p.erase.empty());
}

TEST_CASE("actors keep their values apart") {
  kept_values k;
  k.stage("a", 1, ids({1}));
  CHECK(k.stage("b", 1, ids({1})).put == ids({1})); // b keeps its own copy
  k.commit();
  k.stage("a", 2, ids({}));
  CHECK(k.stage("a", 3, ids({})).erase == ids({1}));
  k.commit();
  CHECK_FALSE(k.kept("a", id(1)));
  CHECK(k.kept("b", id(1)));
}

TEST_CASE("checkpoints read from disk seed what is kept") {
  kept_values k;
  k.loaded("a", 7, ids({1, 2}));
  k.loaded("a", 8, ids({2, 3}));
  CHECK(k.size() == 3);
  auto p = k.stage("a", 9, ids({3, 4})); // replaces 7
  CHECK(p.put == ids({4}));
  CHECK(p.erase == ids({1}));
}

TEST_CASE("a kept value's key starts with its id's prefix and ends with the "
          "actor") {
  auto key = kept_values::key(id(12), "acct/7");
  CHECK(key == to_string(id(12)) + "/acct/7");
  CHECK(key.rfind(kept_values::prefix(id(12)), 0) == 0);
  CHECK(kept_values::key(id(1), "x").rfind(kept_values::prefix(id(12)), 0)
        != 0);
}

TEST_CASE("a preview plans like a stage and changes nothing") {
  kept_values k;
  k.stage("a", 1, ids({1}));
  auto p = k.preview("a", 2, ids({2})); // against the staged view
  CHECK(p.put == ids({2}));
  CHECK(k.preview("a", 3, ids({})).erase == ids({1}));
  k.commit();
  CHECK(k.preview("a", 2, ids({1})).put.empty());
  CHECK(k.size() == 1);
}

TEST_CASE("the index says whether any actor keeps a value, counting each "
          "actor once") {
  kept_values k;
  CHECK_FALSE(k.kept_anywhere(id(1)));
  k.stage("a", 1, ids({1}));
  CHECK_FALSE(k.kept_anywhere(id(1))); // staged only
  k.stage("b", 1, ids({1, 2}));
  k.commit();
  CHECK(k.kept_anywhere(id(1)));
  k.stage("a", 2, ids({1})); // a lists 1 in both slots: still one actor
  k.stage("a", 3, ids({}));
  k.stage("a", 4, ids({}));
  k.commit();
  CHECK(k.kept_anywhere(id(1))); // b still keeps it
  k.forget("b");
  CHECK_FALSE(k.kept_anywhere(id(1)));
  CHECK_FALSE(k.kept_anywhere(id(2)));
  CHECK(k.size() == 0);
}

TEST_CASE("forgetting an actor and loading its checkpoints again replaces "
          "what was known") {
  kept_values k;
  k.stage("a", 1, ids({1}));
  k.stage("a", 2, ids({2}));
  k.commit();
  k.forget("a");
  k.loaded("a", 3, ids({3})); // e.g. a write that reached the disk
  CHECK_FALSE(k.kept("a", id(1)));
  CHECK_FALSE(k.kept("a", id(2)));
  CHECK(k.kept("a", id(3)));
  CHECK(k.kept_anywhere(id(3)));
  CHECK_FALSE(k.kept_anywhere(id(1)));
}
