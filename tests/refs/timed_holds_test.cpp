// Unit tests of timed_holds: refs kept until released or a deadline.

#include <doctest/doctest.h>

#include "dref/refs/timed_holds.hpp"

using namespace dref;
using namespace std::chrono_literals;

TEST_CASE("a timed hold ends by its token or by its deadline, once") {
  timed_holds h;
  auto t0 = timed_holds::clock_type::now();
  auto a = h.hold(object_id{1, 1}, t0 + 10s);
  auto b = h.hold(object_id{1, 2}, t0 + 20s);
  CHECK_NE(a, 0u);
  CHECK_NE(a, b);
  CHECK_EQ(h.size(), 2u);
  REQUIRE(h.next_deadline().has_value());
  CHECK(*h.next_deadline() == t0 + 10s);
  auto released = h.release(a);
  REQUIRE(released.has_value());
  CHECK_EQ(*released, (object_id{1, 1}));
  CHECK_FALSE(h.release(a).has_value());
  CHECK(h.expire(t0 + 19s).empty());
  auto expired = h.expire(t0 + 20s);
  REQUIRE_EQ(expired.size(), 1u);
  CHECK_EQ(expired[0], (object_id{1, 2}));
  CHECK_FALSE(h.release(b).has_value());
  CHECK_EQ(h.size(), 0u);
  CHECK_FALSE(h.next_deadline().has_value());
}

TEST_CASE("two holds on one object are two holds") {
  timed_holds h;
  auto t0 = timed_holds::clock_type::now();
  h.hold(object_id{1, 1}, t0 + 1s);
  h.hold(object_id{1, 1}, t0 + 1s);
  CHECK_EQ(h.expire(t0 + 1s).size(), 2u);
  h.hold(object_id{1, 1}, t0 + 1s);
  CHECK_EQ(h.clear().size(), 1u);
  CHECK_EQ(h.size(), 0u);
}
