// Checkpoint policies: every call (the default, tested everywhere else), or
// the weaker every-N-calls and every-T: calls are acknowledged at once and
// the state is written when due, so a crash of the driver loses the
// acknowledged calls since the last write (at most N-1), while a worker's
// death loses nothing and a clean stop writes what is pending.
//
// Crashes are real: the driver runs as a child program (this binary
// again) that SIGKILLs itself after its calls; its workers exit through
// the lifeline pipe and this test (a subreaper) reaps them.

#include "durable_util.hpp"
#include "../child_process.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <string>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

class meter {
public:
  int64_t tick() {
    return ++ticks_;
  }

  int64_t ticks() const {
    return ticks_;
  }

  int32_t pid() const {
    return static_cast<int32_t>(::getpid());
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, meter& x) {
    return f(caf::meta::type_name("test.meter"), x.ticks_);
  }

private:
  int64_t ticks_ = 0;
};

durable with_policy(const std::string& mode) {
  durable d{"meter"};
  if (mode == "calls10")
    d.checkpoint_every(10);
  else if (mode == "time20ms")
    d.checkpoint_every(std::chrono::milliseconds{20});
  else if (mode == "hour")
    d.checkpoint_every(std::chrono::hours{1});
  return d;
}

// The child: ticks the meter (25 times for calls10, else 5), for time20ms
// waits until the timer wrote a checkpoint after the last tick, then dies
// by SIGKILL.
int policy_driver() {
  std::string dir = std::getenv("DREF_POLICY_DIR");
  std::string mode = std::getenv("DREF_POLICY_MODE");
  auto cfg = test::small_cluster(2);
  cfg.state_dir = dir + "/state";
  runtime rt{cfg};
  if (!rt.running())
    return 2;
  {
    std::ofstream pids{dir + "/pids"};
    for (auto& w : rt.workers())
      pids << w.pid << "\n";
  }
  auto m = rt.spawn<meter>(with_policy(mode));
  // The create's state is written on its own first: when its result and
  // the first call's come back in one batch (the worker ran both before
  // reporting), that first write holds the call too and every later write
  // comes one call later, which the exact counts below do not allow for.
  if (!rt.get(m.created(), 10s))
    return 3;
  int n = mode == "calls10" ? 25 : 5;
  for (int i = 0; i < n; ++i)
    if (!rt.get(m.call(&meter::tick), 10s))
      return 3;
  if (mode == "time20ms") {
    // The timer writes what is pending 20 ms after it became pending. Under
    // load it may already have fired during the ticks (writing some of
    // them), so wait for a write after the last tick: one more than now,
    // or, if it came before this first look, none for 2 s (then the state
    // on disk must hold all five, which the test checks).
    auto writes = [&]() -> uint64_t {
      auto st = rt.stats();
      return st ? st->checkpoint_writes : 0;
    };
    auto before = writes();
    auto deadline = std::chrono::steady_clock::now() + 2s;
    while (writes() <= before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
    if (before < 1)
      return 4; // not even the create's write: something else is wrong
  }
  ::raise(SIGKILL);
  return 5;
}

test::child_program policy_program{"policy_driver", policy_driver};

// Runs the child in `mode` and reaps it and its workers.
void crash_driver(const test::state_dir& dir, const std::string& mode) {
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  auto pid = test::spawn_child("policy_driver",
                               {"DREF_POLICY_DIR=" + dir.path,
                                "DREF_POLICY_MODE=" + mode});
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE_MESSAGE(WIFSIGNALED(status),
                  "the driver exited with " << WEXITSTATUS(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  std::ifstream pids{dir.path + "/pids"};
  int n = 0;
  for (int w; pids >> w; ++n)
    if (!test::wait_reaped(w, 20000)) {
      FAIL_CHECK("worker " << w << " outlived its driver");
      ::kill(w, SIGKILL);
      ::waitpid(w, nullptr, 0);
    }
  CHECK(n == 2);
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

// The meter's ticks as a new runtime on `dir` finds them.
int64_t ticks_on_disk(const test::state_dir& dir) {
  int64_t result = -1;
  auto cfg = test::small_cluster(2);
  cfg.state_dir = dir.path + "/state";
  test::with_cluster(cfg, [&](runtime& rt) {
    auto m = rt.actor<meter>("meter");
    REQUIRE_MESSAGE(m, test::why(m));
    auto t = rt.get(m->call(&meter::ticks), 10s);
    REQUIRE_MESSAGE(t, test::why(t));
    result = *t;
  });
  return result;
}

} // namespace

DREF_ACTOR(meter, &meter::tick, &meter::ticks, &meter::pid);

TEST_CASE("with checkpoint_every(10 calls), a driver crash loses the "
          "acknowledged calls since the last tenth, and no more") {
  test::state_dir dir;
  crash_driver(dir, "calls10");
  CHECK(ticks_on_disk(dir) == 20); // 25 acknowledged, written at 10 and 20
}

TEST_CASE("with checkpoint_every(10 calls), a clean stop writes the pending "
          "state") {
  test::state_dir dir;
  auto cfg = test::small_cluster(2);
  cfg.state_dir = dir.path + "/state";
  test::with_cluster(cfg, [&](runtime& rt) {
    auto m = rt.spawn<meter>(with_policy("calls10"));
    for (int i = 0; i < 25; ++i)
      REQUIRE(rt.get(m.call(&meter::tick), 10s));
  });
  CHECK(ticks_on_disk(dir) == 25);
}

TEST_CASE("with checkpoint_every(10 calls), a worker's death loses nothing: "
          "the driver restores the newest state") {
  test::state_dir dir;
  auto cfg = test::small_cluster(2);
  cfg.state_dir = dir.path + "/state";
  test::with_cluster(cfg, [&](runtime& rt) {
    auto m = rt.spawn<meter>(with_policy("calls10"));
    for (int i = 0; i < 25; ++i)
      REQUIRE(rt.get(m.call(&meter::tick), 10s));
    auto pid = rt.get(m.call(&meter::pid), 10s);
    REQUIRE(pid);
    REQUIRE(::kill(*pid, SIGKILL) == 0);
    auto t = rt.get(m.call(&meter::ticks), 20s);
    REQUIRE_MESSAGE(t, test::why(t));
    CHECK(*t == 25);
    test::check_reaped({*pid});
  });
}

TEST_CASE("with checkpoint_every(20 ms), the timer writes the pending state "
          "without further calls") {
  test::state_dir dir;
  crash_driver(dir, "time20ms");
  CHECK(ticks_on_disk(dir) == 5);
}

TEST_CASE("with checkpoint_every(1 h), a driver crash right after the calls "
          "loses them all") {
  test::state_dir dir;
  crash_driver(dir, "hour");
  CHECK(ticks_on_disk(dir) == 0); // only the create was written
}
