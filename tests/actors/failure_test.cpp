// Worker processes killed for real (SIGKILL by pid): callers get a clear
// error quickly, never a hang, and the runtime carries on.

#include "test_util.hpp"

#include <csignal>
#include <set>

#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

int32_t hang_and_report(int32_t seconds) {
  std::this_thread::sleep_for(std::chrono::seconds{seconds});
  return static_cast<int32_t>(getpid());
}

int32_t whoami() {
  return static_cast<int32_t>(getpid());
}

struct tally {
  int64_t n = 0;
  int64_t bump() {
    return ++n;
  }
  int32_t pid() const {
    return static_cast<int32_t>(getpid());
  }
};

} // namespace

DREF_REMOTE(hang_and_report);
DREF_REMOTE(whoami);
DREF_ACTOR(tally, &tally::bump, &tally::pid);

TEST_CASE("a killed worker gives worker_died to its callers, not a hang") {
  test::with_cluster([](runtime& rt) {
    auto before = rt.workers();
    REQUIRE(before.size() == 2);
    // One hanging task per worker, then kill both workers.
    std::vector<ref<int32_t>> hung{rt.call(hang_and_report, 60),
                                   rt.call(hang_and_report, 60)};
    std::this_thread::sleep_for(100ms);
    for (auto& w : before)
      REQUIRE(::kill(w.pid, SIGKILL) == 0);
    auto t0 = std::chrono::steady_clock::now();
    for (auto& r : hung) {
      auto v = rt.get(r, 20s);
      REQUIRE_FALSE(v);
      CHECK(test::is(v.error(), actors_errc::worker_died));
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    // Replacement workers come up and take new calls.
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (rt.workers().size() < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    auto after = rt.workers();
    REQUIRE(after.size() == 2);
    std::set<int> old_pids{before[0].pid, before[1].pid};
    for (auto& w : after)
      CHECK(old_pids.count(w.pid) == 0);
    auto pid = rt.get(rt.call(whoami), 10s);
    REQUIRE(pid);
    CHECK(old_pids.count(*pid) == 0);
    test::check_reaped({before[0].pid, before[1].pid});
  });
}

TEST_CASE("an actor whose worker was killed fails its calls with worker_died") {
  test::with_cluster([](runtime& rt) {
    auto t = rt.spawn<tally>();
    auto pid = rt.get(t.call(&tally::pid), 10s);
    REQUIRE(pid);
    REQUIRE(::kill(*pid, SIGKILL) == 0);
    // Calls submitted after the kill: the first ones may already be on their
    // way to the dead worker; all of them must end with worker_died.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    caf::error last;
    do {
      auto r = rt.get(t.call(&tally::bump), 10s);
      REQUIRE_FALSE(r);
      last = r.error();
    } while (!test::is(last, actors_errc::worker_died)
             && std::chrono::steady_clock::now() < deadline);
    CHECK(test::is(last, actors_errc::worker_died));
    auto again = rt.get(t.call(&tally::bump), 10s);
    REQUIRE_FALSE(again);
    CHECK(test::is(again.error(), actors_errc::worker_died));
  });
}
