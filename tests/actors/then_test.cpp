// Refs resolved inside CAF event-based actors without blocking.

#include "test_util.hpp"

#include "caf/all.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

int32_t square(int32_t x) {
  return x * x;
}

int32_t refuse(int32_t) {
  throw std::logic_error("refused");
}

// Resolves `r` with `then` inside a fresh event-based actor, which forwards
// the value or the error to `waiter`.
void resolve_in_actor(runtime& rt, const ref<int32_t>& r,
                      caf::scoped_actor& waiter) {
  auto self_addr = caf::actor_cast<caf::actor>(waiter);
  rt.system().spawn([r, self_addr](caf::event_based_actor* self) {
    then(
      self, r,
      [self, self_addr](int32_t v) {
        self->send(self_addr, v);
        self->quit();
      },
      [self, self_addr](const caf::error& err) {
        self->send(self_addr, err);
        self->quit();
      });
  });
}

} // namespace

DREF_REMOTE(square);
DREF_REMOTE(refuse);

TEST_CASE("then runs the continuation in the actor once the value is ready") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.call(square, 12);
    caf::scoped_actor waiter{rt.system()};
    resolve_in_actor(rt, r, waiter);
    int32_t got = 0;
    waiter->receive([&](int32_t v) { got = v; },
                    [&](caf::error& err) { FAIL(caf::to_string(err)); },
                    caf::after(10s) >> [] { FAIL("no answer"); });
    CHECK(got == 144);
  });
}

TEST_CASE("then passes the task's error to the error continuation") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.call(refuse, 1);
    caf::scoped_actor waiter{rt.system()};
    resolve_in_actor(rt, r, waiter);
    caf::error got;
    waiter->receive([&](int32_t) { FAIL("expected an error"); },
                    [&](caf::error& err) { got = err; },
                    caf::after(10s) >> [] { FAIL("no answer"); });
    CHECK(test::is(got, actors_errc::task_failed));
  });
}
