// `rt.stats()` and `rt.memory()` just after a worker's SIGKILL: the owner
// still lists the worker for a few milliseconds (until CAF reports its
// connection down), and the calls must answer for the live workers and
// mark the dead one instead of failing with CAF's own errors (they used to
// ask each worker in turn and wait for a dead one's answer).
//
// Scenario, per round: kill one worker for real and, at once, call stats on
// this thread and memory on another. The owner may notice the death before
// the calls list the worker, so rounds go on (bounded, a replacement worker
// starting between them) until both calls listed a dead worker once.

#include "test_util.hpp"

#include "dref/persist/error.hpp"
#include "dref/store/error.hpp"

#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

bool of_dref_category(const caf::error& err) {
  auto c = err.category();
  return c == actors_category || c == refs_category || c == store_category
         || c == persist_category;
}

// The live workers once there are `n` and none of them is in `killed`
// (the runtime dropped the dead ones and started replacements).
std::vector<worker_info> settled_workers(runtime& rt, size_t n,
                                         const std::vector<int>& killed) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    auto ws = rt.workers();
    bool fresh = ws.size() == n;
    for (auto& w : ws)
      for (auto pid : killed)
        fresh = fresh && w.pid != pid;
    if (fresh || std::chrono::steady_clock::now() > deadline)
      return ws;
    std::this_thread::sleep_for(10ms);
  }
}

} // namespace

TEST_CASE("stats and memory called just after a worker's SIGKILL answer for "
          "the live workers and mark the killed one as dead") {
  test::with_cluster([](runtime& rt) {
    bool stats_listed = false;
    bool memory_listed = false;
    std::vector<int> killed;
    for (int round = 0; round < 10 && !(stats_listed && memory_listed);
         ++round) {
      auto ws = settled_workers(rt, 2, killed);
      REQUIRE(ws.size() == 2);
      auto victim = ws[static_cast<size_t>(round) % 2];
      caf::expected<memory_report> mem{caf::error{}};
      REQUIRE(::kill(victim.pid, SIGKILL) == 0);
      killed.push_back(victim.pid);
      std::thread other{[&] { mem = rt.memory(); }};
      auto st = rt.stats();
      other.join();
      INFO("round " << round << ", killed worker " << victim.id << " pid "
                    << victim.pid);
      if (!st)
        CHECK_MESSAGE(of_dref_category(st.error()), test::why(st));
      if (!mem)
        CHECK_MESSAGE(of_dref_category(mem.error()), test::why(mem));
      REQUIRE_MESSAGE(st, test::why(st));
      REQUIRE_MESSAGE(mem, test::why(mem));
      for (auto& w : st->workers) {
        INFO("stats of worker " << w.id << " pid " << w.pid);
        if (w.pid == victim.pid) {
          stats_listed = true;
          CHECK_FALSE(w.alive);
          CHECK(w.objects == 0);
        } else {
          CHECK(w.alive);
        }
      }
      REQUIRE_FALSE(mem->processes.empty());
      CHECK(mem->processes[0].role == "driver");
      for (auto& p : mem->processes) {
        INFO("memory of " << p.role << " pid " << p.pid);
        if (p.pid == victim.pid) {
          memory_listed = true;
          CHECK_FALSE(p.alive);
          CHECK(p.objects.empty());
          CHECK(to_text(*mem).find("pid " + std::to_string(p.pid)
                                   + ": died")
                != std::string::npos);
        } else {
          CHECK(p.alive);
        }
      }
    }
    CHECK(stats_listed);
    CHECK(memory_listed);
    // The runtime drops the dead workers and reaps them; the no-leak check
    // that ends the test also waits until no dead worker is listed.
    settled_workers(rt, 2, killed);
    test::check_reaped(killed);
  });
}
