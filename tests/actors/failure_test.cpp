// Worker processes killed for real (SIGKILL by pid): callers get a clear
// error quickly, never a hang, and the runtime carries on.

#include "test_util.hpp"

#include <algorithm>
#include <csignal>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>

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

// Writes its pid to `path`, then works for `seconds`; returns the pid.
int32_t announce_and_work(std::string path, int32_t seconds) {
  {
    std::ofstream out{path};
    out << getpid() << std::endl;
  }
  std::this_thread::sleep_for(std::chrono::seconds{seconds});
  return static_cast<int32_t>(getpid());
}

} // namespace

DREF_REMOTE(announce_and_work);
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

namespace {

// True if `pid` is gone or a zombie (dead, waiting for its parent to reap).
bool dead_or_zombie(int pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  if (!in)
    return true;
  std::string line;
  std::getline(in, line);
  auto close_paren = line.rfind(')');
  return close_paren != std::string::npos && close_paren + 2 < line.size()
         && line[close_paren + 2] == 'Z';
}

struct unregistered_class {
  int32_t f() {
    return 1;
  }
};

} // namespace

TEST_CASE("when the last worker dies and none restarts, calls fail at once") {
  std::vector<int> pids;
  {
    auto cfg = test::small_cluster(1);
    cfg.restart_workers = false;
    runtime rt{cfg};
    REQUIRE(rt.running());
    auto w = rt.workers();
    REQUIRE(w.size() == 1);
    pids.push_back(w[0].pid);
    auto hung = rt.call(hang_and_report, 60);
    std::this_thread::sleep_for(100ms);
    REQUIRE(::kill(w[0].pid, SIGKILL) == 0);
    auto r = rt.get(hung, 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), actors_errc::worker_died));
    // No worker is coming: a new call must not wait for one.
    auto t0 = std::chrono::steady_clock::now();
    auto next = rt.get(rt.call(whoami), 10s);
    REQUIRE_FALSE(next);
    CHECK(test::is(next.error(), actors_errc::worker_died));
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    hung = ref<int32_t>{};
    test::check_no_leaks(rt);
  }
  test::check_reaped(pids);
  test::check_no_children();
}

TEST_CASE("workers outlive the thread that started the runtime") {
  std::unique_ptr<runtime> rt;
  std::thread{[&] { rt = std::make_unique<runtime>(test::small_cluster(2)); }}
    .join();
  REQUIRE(rt->running());
  auto before = rt->workers();
  std::this_thread::sleep_for(200ms);
  auto pid = rt->get(rt->call(whoami), 10s);
  REQUIRE(pid);
  auto after = rt->workers();
  REQUIRE(after.size() == 2);
  for (size_t i = 0; i < 2; ++i)
    CHECK(after[i].pid == before[i].pid); // nobody died and was replaced
  test::check_no_leaks(*rt);
  rt.reset();
  test::check_no_children();
}

TEST_CASE("workers end when their driver process is killed") {
  // A child process becomes a driver, reports its workers' pids through a
  // pipe, and is SIGKILLed; its workers must notice and exit on their own.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto driver = ::fork();
  REQUIRE(driver >= 0);
  if (driver == 0) {
    ::close(fds[0]);
    runtime rt{test::small_cluster(2)};
    std::string line;
    for (auto& w : rt.workers())
      line += std::to_string(w.pid) + " ";
    line += "\n";
    if (::write(fds[1], line.data(), line.size()) < 0)
      ::_exit(1);
    for (;;)
      ::pause();
  }
  ::close(fds[1]);
  std::string text;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) {
    text.append(buf, static_cast<size_t>(n));
    if (text.find('\n') != std::string::npos)
      break;
  }
  ::close(fds[0]);
  std::istringstream in{text};
  std::vector<int> workers;
  int pid;
  while (in >> pid)
    workers.push_back(pid);
  REQUIRE(workers.size() == 2);
  ::kill(driver, SIGKILL);
  int status = 0;
  ::waitpid(driver, &status, 0);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  bool all_dead = false;
  while (!all_dead && std::chrono::steady_clock::now() < deadline) {
    all_dead = std::all_of(workers.begin(), workers.end(), dead_or_zombie);
    std::this_thread::sleep_for(20ms);
  }
  CHECK(all_dead);
  test::check_no_children();
}

TEST_CASE("calling a method of a class never registered fails cleanly") {
  test::with_cluster([](runtime& rt) {
    auto h = rt.spawn<unregistered_class>();
    auto created = rt.get(h.created(), 10s);
    REQUIRE_FALSE(created);
    CHECK(test::is(created.error(), actors_errc::unknown_function));
    auto r = rt.get(h.call(&unregistered_class::f), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), actors_errc::unknown_function));
  });
}

TEST_CASE("a call made just after a worker died runs on its replacement, not "
          "queued behind a long task on the survivor") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  auto path = "/tmp/dref-announce-" + std::to_string(getpid());
  ::unlink(path.c_str());
  auto busy = rt.call(announce_and_work, path, int32_t{5});
  int survivor = 0;
  for (int i = 0; i < 1000 && survivor == 0; ++i) {
    std::ifstream in{path};
    if (!(in >> survivor))
      std::this_thread::sleep_for(10ms);
  }
  ::unlink(path.c_str());
  REQUIRE(survivor > 0);
  int victim = 0;
  for (auto& w : rt.workers())
    if (w.pid != survivor)
      victim = w.pid;
  REQUIRE(victim > 0);
  REQUIRE(::kill(victim, SIGKILL) == 0);
  // Until the driver notices, a call may still go to the dead worker and
  // fail with worker_died; once it did, the next call must not wait for
  // the survivor's long task.
  caf::expected<int32_t> pid{caf::error{}};
  for (int attempt = 0; attempt < 50; ++attempt) {
    pid = rt.get(rt.call(whoami), 20s);
    if (pid || !test::is(pid.error(), actors_errc::worker_died))
      break;
  }
  REQUIRE_MESSAGE(pid, test::why(pid));
  CHECK(*pid != survivor);
  CHECK(*pid != victim);
  // The long task was still running when the call came back.
  CHECK(rt.wait(std::vector<ref<int32_t>>{busy}, 1, caf::timespan{0})
          .not_ready.size()
        == 1);
  auto done = rt.get(busy, 30s);
  REQUIRE_MESSAGE(done, test::why(done));
  CHECK(*done == survivor);
  busy = {};
  test::check_reaped({victim});
  test::check_no_leaks(rt);
}
