// Unit tests of ref_core, one process's part of the reference protocol,
// driven by hand (the protocol between several cores is tested in
// ref_protocol_test.cpp).

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "dref/refs/error.hpp"
#include "dref/refs/ref_core.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

ref_core::settings settings_of(uint64_t process) {
  ref_core::settings s;
  s.self = process_address{process, "127.0.0.1",
                           static_cast<uint16_t>(4000 + process)};
  s.death_grace = 2s;
  s.transit_timeout = 60s;
  return s;
}

// A ref to object `seq` of process `owner`, as it arrives in bytes.
ref_descriptor arriving(uint64_t owner, uint64_t seq) {
  ref_descriptor d;
  d.id = object_id{owner, seq};
  d.owner = process_address{owner, "127.0.0.1",
                            static_cast<uint16_t>(4000 + owner)};
  return d;
}

const auto t0 = ref_core::time_point{} + std::chrono::hours{1};

} // namespace

TEST_CASE("an owned object with no ref left is freed and its copies are "
          "queued for freeing") {
  ref_core c{settings_of(1)};
  object_id x{1, 1};
  c.owned().add_pending(x, nullptr);
  c.owned().set_ready(x, nullptr, 10, 3, node_location);
  c.add_local_ref(x);
  c.remove_local_ref(x);
  CHECK(c.owned().find(x) != nullptr);
  c.remove_local_ref(x);
  CHECK(c.owned().find(x) == nullptr);
  ref_outbox out;
  c.take(out);
  REQUIRE_EQ(out.frees.count(3), 1u);
  CHECK_EQ(out.frees[3], std::vector<object_id>{x});
  CHECK_EQ(out.node_frees, std::vector<object_id>{x});
  CHECK(c.empty());
}

TEST_CASE("refs of one owner read from bytes are registered in one request") {
  ref_core c{settings_of(1)};
  auto a = c.adopt(arriving(2, 1));
  auto b = c.adopt(arriving(2, 2));
  auto other = c.adopt(arriving(3, 1));
  CHECK_NE(a, 0u);
  CHECK_EQ(a, b);
  CHECK_NE(a, other);
  CHECK(c.registration_pending(a));
  ref_outbox out;
  c.take(out);
  REQUIRE_EQ(out.registrations.size(), 2u);
  auto& r = out.registrations[0].owner.process == 2 ? out.registrations[0]
                                                    : out.registrations[1];
  CHECK_EQ(r.ids.size(), 2u);
  CHECK_EQ(r.gens.size(), 2u);
  CHECK_EQ(r.owner.port, 4002);
  // Another arrival of a ref under way waits for the same registration.
  CHECK_EQ(c.adopt(arriving(2, 1)), a);
  c.on_borrow_answer(a, {});
  CHECK_FALSE(c.registration_pending(a));
  CHECK(c.borrowed().find(object_id{2, 1})->registered);
  // Registered: a new arrival needs nothing.
  CHECK_EQ(c.adopt(arriving(2, 1)), 0u);
}

TEST_CASE("the release barrier holds a release back until the registrations "
          "started before it are answered") {
  ref_core c{settings_of(1)};
  // X is registered; Y's registration is under way.
  c.adopt(arriving(2, 1));
  ref_outbox first;
  c.take(first);
  c.on_borrow_answer(first.registrations.at(0).token, {});
  auto y = c.adopt(arriving(3, 1));
  ref_outbox second;
  c.take(second);
  // Dropping X queues its release behind Y's registration.
  c.remove_local_ref(object_id{2, 1});
  CHECK_FALSE(c.has_sendable());
  ref_outbox held;
  c.take(held);
  CHECK(held.releases.empty());
  CHECK_EQ(c.releases_pending(), 1u);
  c.on_borrow_answer(y, {});
  ref_outbox out;
  c.take(out);
  REQUIRE_EQ(out.releases.size(), 1u);
  CHECK_EQ(out.releases[0].owner.process, 2u);
  CHECK_EQ(out.releases[0].ids, std::vector<object_id>{object_id{2, 1}});
  c.remove_local_ref(object_id{3, 1});
  c.take(out);
  CHECK(c.empty());
}

TEST_CASE("a registration started after a release was queued does not hold "
          "it back") {
  ref_core c{settings_of(1)};
  c.adopt(arriving(2, 1));
  ref_outbox first;
  c.take(first);
  c.on_borrow_answer(first.registrations.at(0).token, {});
  c.remove_local_ref(object_id{2, 1}); // release queued
  c.adopt(arriving(3, 1));             // a later registration
  ref_outbox out;
  c.take(out);
  CHECK_EQ(out.registrations.size(), 1u);
  CHECK_EQ(out.releases.size(), 1u);
}

TEST_CASE("a borrow dropped while its registration is under way is released "
          "after the answer, with its generation") {
  ref_core c{settings_of(1)};
  auto token = c.adopt(arriving(2, 1));
  auto gen = c.borrowed().find(object_id{2, 1})->gen;
  ref_outbox out;
  c.take(out);
  c.remove_local_ref(object_id{2, 1});
  CHECK(c.borrowed().find(object_id{2, 1}) == nullptr);
  ref_outbox held;
  c.take(held);
  CHECK(held.releases.empty());
  c.on_borrow_answer(token, {});
  ref_outbox now;
  c.take(now);
  REQUIRE_EQ(now.releases.size(), 1u);
  CHECK_EQ(now.releases[0].gens, std::vector<uint64_t>{gen});
  CHECK(c.empty());
}

TEST_CASE("the owner counts a borrower once and ends its borrow only by the "
          "release of that borrow") {
  ref_core o{settings_of(1)};
  object_id x{1, 1};
  o.owned().add_ready(x, nullptr);
  process_address b{2, "127.0.0.1", 4002};
  CHECK(o.on_borrow({x}, {5}, b).empty());
  CHECK(o.on_borrow({x}, {5}, b).empty()); // a duplicate
  CHECK_EQ(o.owned().find(x)->borrowers, 1);
  o.remove_local_ref(x);
  CHECK(o.owned().find(x) != nullptr);
  o.on_release({x}, {4}, 2); // of an earlier borrow: no effect
  CHECK(o.owned().find(x) != nullptr);
  o.on_release({x}, {5}, 2);
  CHECK(o.owned().find(x) == nullptr);
  // Now unknown.
  CHECK_EQ(o.on_borrow({x}, {6}, b), std::vector<object_id>{x});
  CHECK(o.empty());
}

TEST_CASE("a dead borrower's borrows linger for the grace, then the object "
          "is freed") {
  ref_core o{settings_of(1)};
  object_id x{1, 1};
  o.owned().add_ready(x, nullptr);
  o.on_borrow({x}, {1}, process_address{2, "127.0.0.1", 4002});
  o.remove_local_ref(x);
  o.on_process_down(2, make_error(refs_errc::owner_died), t0);
  CHECK(o.owned().find(x) != nullptr);
  CHECK_EQ(o.lingering_holds(), 1u);
  // Another borrower registers within the grace: it keeps the object.
  o.on_borrow({x}, {1}, process_address{3, "127.0.0.1", 4003});
  REQUIRE(o.next_deadline().has_value());
  o.expire(t0 + 1s);
  CHECK(o.owned().find(x) != nullptr);
  o.expire(*o.next_deadline());
  CHECK_EQ(o.lingering_holds(), 0u);
  CHECK(o.owned().find(x) != nullptr);
  o.on_release({x}, {1}, 3);
  CHECK(o.owned().find(x) == nullptr);
  // The dead incarnation is fenced: its late registration is refused.
  o.owned().add_ready(object_id{1, 2}, nullptr);
  CHECK_EQ(o.on_borrow({object_id{1, 2}}, {9},
                       process_address{2, "127.0.0.1", 4002}),
           std::vector<object_id>{object_id{1, 2}});
  o.remove_local_ref(object_id{1, 2});
  CHECK(o.empty());
}

TEST_CASE("a dead owner fails its objects here and its registrations end") {
  ref_core c{settings_of(1)};
  auto token = c.adopt(arriving(2, 1));
  ref_outbox out;
  c.take(out);
  c.on_process_down(2, make_error(refs_errc::owner_died, "gone"), t0);
  CHECK_FALSE(c.registration_pending(token));
  CHECK_EQ(c.borrowed().owner_error(object_id{2, 1}), refs_errc::owner_died);
  // A ref of the dead owner arriving later starts no registration.
  CHECK_EQ(c.adopt(arriving(2, 2)), 0u);
  c.remove_local_ref(object_id{2, 1});
  c.remove_local_ref(object_id{2, 2});
  ref_outbox after;
  c.take(after);
  CHECK(after.releases.empty());
  CHECK(c.empty());
}

TEST_CASE("a registration to an owner of unknown address fails at once") {
  ref_core c{settings_of(1)};
  ref_descriptor d;
  d.id = object_id{2, 1}; // ids only, as in a kept copy
  auto token = c.adopt(d);
  ref_outbox out;
  c.take(out);
  CHECK(out.registrations.empty());
  CHECK_FALSE(c.registration_pending(token));
  c.remove_local_ref(d.id);
  CHECK(c.empty());
}

TEST_CASE("a transit hold keeps the object until its receiver releases it "
          "or it expires") {
  ref_core c{settings_of(1)};
  object_id x{1, 1};
  c.owned().add_ready(x, nullptr);
  ref_descriptor d;
  c.describe(x, d);
  c.hold_for_transit(x, d, t0);
  CHECK_NE(d.hold, 0u);
  CHECK_EQ(d.holder.process, 1u);
  CHECK_EQ(d.owner.process, 1u);
  ref_descriptor e;
  c.describe(x, e);
  c.hold_for_transit(x, e, t0);
  c.remove_local_ref(x);
  c.release_holds({d.hold});
  CHECK(c.owned().find(x) != nullptr);
  c.expire(t0 + 59s);
  CHECK(c.owned().find(x) != nullptr);
  c.expire(t0 + 60s);
  CHECK(c.owned().find(x) == nullptr);
  CHECK(c.empty());
}

TEST_CASE("a ref that comes back to its sender lets go of its own hold") {
  ref_core c{settings_of(1)};
  object_id x{1, 1};
  c.owned().add_ready(x, nullptr);
  ref_descriptor d;
  c.describe(x, d);
  c.hold_for_transit(x, d, t0);
  CHECK_EQ(c.adopt(d), 0u);
  CHECK_EQ(c.transit_holds(), 0u);
  c.remove_local_ref(x);
  c.remove_local_ref(x);
  CHECK(c.empty());
}

TEST_CASE("a copy kept for another owner holds the refs inside until it is "
          "dropped, and its frees wait for the barrier") {
  ref_core c{settings_of(1)};
  auto tokens = c.hold_in_copy(object_id{5, 1}, {arriving(2, 1)});
  REQUIRE_EQ(tokens.size(), 1u);
  CHECK_EQ(c.copy_contained(object_id{5, 1}).size(), 1u);
  CHECK_EQ(c.copy_contained(object_id{5, 1})[0].owner.port, 4002);
  c.drop_copy(object_id{5, 1});
  ref_outbox out;
  c.take(out);
  CHECK(out.releases.empty()); // behind its own registration
  c.on_borrow_answer(tokens[0], {});
  c.take(out);
  CHECK_EQ(out.releases.size(), 1u);
  CHECK(c.empty());
}

TEST_CASE("freeing the outermost of deeply nested owned values frees every "
          "level without deep recursion") {
  ref_core c{settings_of(1)};
  constexpr uint64_t depth = 200000;
  for (uint64_t i = 1; i <= depth; ++i) {
    c.owned().add_ready(object_id{1, i}, nullptr);
    if (i > 1) // value i holds the ref to value i - 1 (taken over)
      c.adopt_in_owned(object_id{1, i}, {object_id{1, i - 1}});
  }
  CHECK_EQ(c.owned().size(), depth);
  c.remove_local_ref(object_id{1, depth});
  CHECK_EQ(c.owned().size(), 0u);
  CHECK(c.empty());
}

TEST_CASE("protections a dead process held linger, then end") {
  ref_core c{settings_of(1)};
  object_id x{1, 1};
  c.owned().add_ready(x, nullptr);
  c.owned().add_submitted_ref(x);
  c.remove_local_ref(x);
  // The task's worker died: its protection outlives it briefly.
  c.linger(x, t0);
  c.owned().remove_submitted_ref(x);
  CHECK(c.owned().find(x) != nullptr);
  c.expire(t0 + 2s);
  CHECK(c.owned().find(x) == nullptr);
  CHECK(c.empty());
}

TEST_CASE("a borrow whose registration got no answer is still released when "
          "it goes, since the owner may count it") {
  ref_core c{settings_of(1)};
  auto token = c.adopt(arriving(2, 1));
  ref_outbox out;
  c.take(out);
  c.on_borrow_failed(token); // timed out: the owner may have counted us
  c.remove_local_ref(object_id{2, 1});
  ref_outbox after;
  c.take(after);
  REQUIRE_EQ(after.releases.size(), 1u);
  CHECK_EQ(after.releases[0].ids, std::vector<object_id>{object_id{2, 1}});
  CHECK(c.empty());
}

TEST_CASE("a borrow the owner refused is not released") {
  ref_core c{settings_of(1)};
  auto token = c.adopt(arriving(2, 1));
  ref_outbox out;
  c.take(out);
  c.on_borrow_answer(token, {object_id{2, 1}});
  CHECK(c.borrowed().find(object_id{2, 1})->refused);
  c.remove_local_ref(object_id{2, 1});
  ref_outbox after;
  c.take(after);
  CHECK(after.releases.empty());
  CHECK(c.empty());
}
