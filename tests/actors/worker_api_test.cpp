// The calls of the API inside workers (issue 11): `dref::then` in a CAF
// event-based actor in a worker, a blocking read on a scheduler thread
// refused at once (in a worker and in the driver), and a task failing
// through `caf::expected`. Every test ends with the no-leak check.

#include "test_util.hpp"

#include <future>

#include "caf/all.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

int64_t api_twice(int64_t x) {
  return 2 * x;
}

// Resolves `x` with `then` in an event-based actor spawned in this worker;
// -1: the error continuation ran, -2: neither within 10 s.
int64_t api_then_here(ref<int64_t> x) {
  auto sys = dref::worker_system();
  if (sys == nullptr)
    return -3;
  auto done = std::make_shared<std::promise<int64_t>>();
  auto got = done->get_future();
  sys->spawn([x, done](caf::event_based_actor* self) -> caf::behavior {
    then(
      self, x,
      [self, done](int64_t v) {
        done->set_value(v);
        self->quit();
      },
      [self, done](const caf::error&) {
        done->set_value(-1);
        self->quit();
      });
    return {[](int32_t) {}};
  });
  if (got.wait_for(10s) != std::future_status::ready)
    return -2;
  return got.get();
}

// The same for a ref this worker owns: the result of its own call.
int64_t api_then_own_call(int64_t x) {
  return api_then_here(dref::call(api_twice, x));
}

// Calls `dref::get` inside an actor's handler in this worker: returns the
// error code it gave (0: none, -2: no answer).
int32_t api_get_in_handler(ref<int64_t> x) {
  auto sys = dref::worker_system();
  auto done = std::make_shared<std::promise<int32_t>>();
  auto got = done->get_future();
  sys->spawn([x, done](caf::event_based_actor* self) {
    auto v = dref::get(x, 5s);
    done->set_value(v ? 0 : static_cast<int32_t>(v.error().code()));
    self->quit();
  });
  if (got.wait_for(10s) != std::future_status::ready)
    return -2;
  return got.get();
}

caf::expected<int64_t> api_checked_half(int64_t x) {
  if (x % 2 != 0)
    return make_error(actors_errc::invalid_argument,
                      std::to_string(x) + " is odd");
  return x / 2;
}

} // namespace

DREF_REMOTE(api_twice);
DREF_REMOTE(api_then_here);
DREF_REMOTE(api_then_own_call);
DREF_REMOTE(api_get_in_handler);
DREF_REMOTE(api_checked_half);

TEST_CASE("dref::then resolves a driver's ref and a worker's own ref in an "
          "event-based actor in a worker") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  {
    auto x = rt.put(int64_t{21});
    auto a = rt.get(rt.call(api_then_here, x), 30s);
    REQUIRE_MESSAGE(a, test::why(a));
    CHECK(*a == 21);
    auto b = rt.get(rt.call(api_then_here, rt.call(api_twice, int64_t{4})), 30s);
    REQUIRE_MESSAGE(b, test::why(b));
    CHECK(*b == 8);
    auto c = rt.get(rt.call(api_then_own_call, int64_t{5}), 30s);
    REQUIRE_MESSAGE(c, test::why(c));
    CHECK(*c == 10);
  }
  test::check_no_leaks(rt);
}

TEST_CASE("a blocking get inside an actor's handler fails at once with "
          "would_block, in a worker and in the driver") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  {
    auto x = rt.put(int64_t{3});
    auto code = rt.get(rt.call(api_get_in_handler, x), 30s);
    REQUIRE_MESSAGE(code, test::why(code));
    CHECK(*code == static_cast<int32_t>(actors_errc::would_block));
    // The driver: rt.get in a handler of an actor of the runtime's system.
    auto done = std::make_shared<std::promise<caf::error>>();
    auto got = done->get_future();
    rt.system().spawn([&rt, x, done](caf::event_based_actor* self) {
      auto v = rt.get(x, 5s);
      done->set_value(v ? caf::error{} : v.error());
      self->quit();
    });
    REQUIRE(got.wait_for(10s) == std::future_status::ready);
    auto err = got.get();
    CHECK_MESSAGE(test::is(err, actors_errc::would_block),
                  caf::to_string(err));
    CHECK(test::context_of(err).find("dref::then") != std::string::npos);
    // On the user's own thread the same read works.
    auto v = rt.get(x, 5s);
    REQUIRE_MESSAGE(v, test::why(v));
    CHECK(*v == 3);
  }
  test::check_no_leaks(rt);
}

TEST_CASE("a task returning caf::expected fails with its own error, or "
          "gives the value") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  {
    auto ok = rt.get(rt.call(api_checked_half, int64_t{8}), 30s);
    REQUIRE_MESSAGE(ok, test::why(ok));
    CHECK(*ok == 4);
    auto bad = rt.get(rt.call(api_checked_half, int64_t{7}), 30s);
    REQUIRE_FALSE(bad);
    CHECK(test::is(bad.error(), actors_errc::invalid_argument));
    CHECK(test::context_of(bad.error()).find("7 is odd") != std::string::npos);
  }
  test::check_no_leaks(rt);
}

namespace {

// The same free functions inside a task: put, call, wait, get.
int64_t api_free_functions_here(int64_t x) {
  auto p = dref::put(x).value();
  auto c = dref::call(api_twice, p);
  auto w = dref::wait(std::vector<ref<int64_t>>{c}, 1);
  if (w.ready.size() != 1)
    return -1;
  return dref::get(c).value() + dref::get(p).value();
}

} // namespace

DREF_REMOTE(api_free_functions_here);

TEST_CASE("dref::call, get, wait and put mean the same in the driver as in "
          "a task") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  {
    // In the driver: the free functions act on the running runtime.
    auto p = dref::put(int64_t{7});
    REQUIRE_MESSAGE(p, test::why(p));
    auto c = dref::call(api_twice, *p);
    REQUIRE(c.valid());
    auto w = dref::wait(std::vector<ref<int64_t>>{c}, 1, 30s);
    CHECK(w.ready.size() == 1);
    auto v = dref::get(c);
    REQUIRE_MESSAGE(v, test::why(v));
    CHECK(*v == 14);
    CHECK(rt.get(c).value() == 14); // one object, read both ways
    // The same code in a task.
    auto t = dref::get(dref::call(api_free_functions_here, int64_t{7}));
    REQUIRE_MESSAGE(t, test::why(t));
    CHECK(*t == 21);
  }
  test::check_no_leaks(rt);
}
