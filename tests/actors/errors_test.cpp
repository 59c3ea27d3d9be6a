// Every error a call can end with, each with its own code.

#include "test_util.hpp"

#include <stdexcept>
#include <string>

using namespace dref;
using namespace std::chrono_literals;

namespace {

int32_t explode(int32_t x) {
  throw std::runtime_error("exploded at " + std::to_string(x));
}

int32_t twice(int32_t x) {
  return 2 * x;
}

int32_t nap(int32_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return ms;
}

int32_t not_registered(int32_t x) {
  return x;
}

} // namespace

DREF_REMOTE(explode);
DREF_REMOTE(twice);
DREF_REMOTE(nap);

TEST_CASE("a task that throws gives task_failed with its name and message") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.get(rt.call(explode, 3), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), actors_errc::task_failed));
    auto text = test::context_of(r.error());
    CHECK(text.find("explode") != std::string::npos);
    CHECK(text.find("exploded at 3") != std::string::npos);
    auto rendered = rt.system().render(r.error());
    CHECK(rendered.find("task_failed") != std::string::npos);
  });
}

TEST_CASE("a failure flows into the tasks that take the failed ref") {
  test::with_cluster([](runtime& rt) {
    auto bad = rt.call(explode, 1);
    auto next = rt.call(twice, bad);
    auto after = rt.call(twice, next);
    auto r = rt.get(after, 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), actors_errc::task_failed));
    CHECK(test::context_of(r.error()).find("exploded at 1")
          != std::string::npos);
  });
}

TEST_CASE("an unknown function name gives unknown_function") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.get(rt.call_by_name<int32_t>("no_such_function", 1), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), actors_errc::unknown_function));
    CHECK(test::context_of(r.error()).find("no_such_function")
          != std::string::npos);
  });
}

TEST_CASE("a function pointer not registered gives unknown_function") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.get(rt.call(not_registered, 1), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), actors_errc::unknown_function));
  });
}

TEST_CASE("calling by name with the right types works") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.get(rt.call_by_name<int32_t>("twice", int32_t{21}), 10s);
    REQUIRE(r);
    CHECK(*r == 42);
  });
}

TEST_CASE("a wrong argument type gives type_mismatch") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.get(rt.call_by_name<int32_t>("twice", std::string{"x"}), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), refs_errc::type_mismatch));
    auto n = rt.get(rt.call_by_name<int32_t>("twice", int32_t{1}, 2), 10s);
    REQUIRE_FALSE(n);
    CHECK(test::is(n.error(), refs_errc::type_mismatch));
  });
}

TEST_CASE("a wrong result type gives type_mismatch") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.get(rt.call_by_name<std::string>("twice", int32_t{1}), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), refs_errc::type_mismatch));
    CHECK(test::context_of(r.error()).find("result") != std::string::npos);
  });
}

TEST_CASE("get gives timeout when the value is late, and the task goes on") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.call(nap, 500);
    auto t0 = std::chrono::steady_clock::now();
    auto early = rt.get(r, 50ms);
    auto waited = std::chrono::steady_clock::now() - t0;
    REQUIRE_FALSE(early);
    CHECK(test::is(early.error(), actors_errc::timeout));
    CHECK(waited >= 50ms);
    CHECK(waited < 400ms);
    auto late = rt.get(r, 10s);
    REQUIRE(late);
    CHECK(*late == 500);
  });
}

TEST_CASE("a ref of another runtime is refused with invalid_argument") {
  {
    runtime other{test::small_cluster(1)};
    REQUIRE(other.running());
    runtime rt{test::small_cluster(1)};
    REQUIRE(rt.running());
    auto foreign = other.put(int32_t{1});
    auto r = rt.get(rt.call(twice, foreign), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), actors_errc::invalid_argument));
    auto g = rt.get(foreign, 1s);
    REQUIRE_FALSE(g);
    CHECK(test::is(g.error(), actors_errc::invalid_argument));
    r = caf::expected<int32_t>{0};
    foreign = ref<int32_t>{};
    test::check_no_leaks(rt);
    test::check_no_leaks(other);
  }
  test::check_no_children();
}

TEST_CASE("a runtime that could not start says why and refuses calls") {
  auto cfg = test::small_cluster(2);
  cfg.start_timeout = std::chrono::milliseconds{1}; // too short to register
  runtime rt{cfg};
  REQUIRE_FALSE(rt.running());
  CHECK(test::is(rt.status(), actors_errc::runtime_down));
  auto r = rt.get(rt.call(twice, 1), 1s);
  REQUIRE_FALSE(r);
  CHECK(test::is(r.error(), actors_errc::runtime_down));
  auto p = rt.get(rt.put(int32_t{1}), 1s);
  REQUIRE_FALSE(p);
  CHECK(test::is(p.error(), actors_errc::runtime_down));
}

TEST_CASE("a runtime that could not start leaves no process behind") {
  {
    auto cfg = test::small_cluster(2);
    cfg.start_timeout = std::chrono::milliseconds{1};
    runtime rt{cfg};
    REQUIRE_FALSE(rt.running());
  }
  test::check_no_children();
}
