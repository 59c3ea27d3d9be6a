// Chaos tests (ctest label `chaos`): a bank of 100 durable accounts takes
// random transfers from several client threads while processes are
// SIGKILLed for real, then the bank is checked (tests/chaos/bank.hpp):
// the total is conserved, every transfer is all or nothing, and every
// acknowledged operation was applied exactly once.
//
// 1. Worker kills: one runtime; a killer thread SIGKILLs a random worker
//    (pid from rt.workers()) 20 times, each time once the replacement of
//    the previous victim registered. The driver is the only caller, so
//    durable calls in flight on a killed worker are re-sent once and none
//    may fail.
// 2. Whole-cluster kills: the driver runs as a child process (this binary
//    again, child program "chaos_bank_driver") that logs each transfer's
//    intent and acknowledgements to a journal; the test SIGKILLs the driver
//    mid-load (its workers must exit by themselves through the lifeline
//    pipe), three times, each new driver finishing the transfers the last
//    one left half done; finally the test itself starts a runtime on the
//    same state directory, finishes them once more and checks the bank.
//
// Randomness: DREF_SEED fixes the seed (printed on failure); timings of
// kills still vary with the machine.

#include "../actors/durable_util.hpp"
#include "../child_process.hpp"
#include "bank.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;
using dref::test::chaos::account;
using dref::test::chaos::transfer;

DREF_ACTOR(account, &account::apply, &account::balance, &account::ops,
           &account::pid);

namespace {

namespace chaos = dref::test::chaos;
using clock_type = std::chrono::steady_clock;

uint64_t seed_from_env() {
  if (auto s = std::getenv("DREF_SEED"))
    return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

std::vector<actor_handle<account>> spawn_bank(runtime& rt) {
  std::vector<actor_handle<account>> accts;
  for (int i = 0; i < chaos::accounts; ++i)
    accts.push_back(rt.spawn<account>(durable(chaos::account_name(i))));
  return accts;
}

// Reads every account's ops and balance; false (with `why`) on an error.
bool read_bank(runtime& rt, std::vector<actor_handle<account>>& accts,
               std::vector<std::vector<int64_t>>& ops,
               std::vector<int64_t>& balances, std::string& why) {
  std::vector<ref<std::vector<int64_t>>> o;
  std::vector<ref<int64_t>> b;
  for (auto& a : accts) {
    o.push_back(a.call(&account::ops));
    b.push_back(a.call(&account::balance));
  }
  ops.clear();
  balances.clear();
  for (size_t i = 0; i < accts.size(); ++i) {
    auto x = rt.get(o[i], 60s);
    auto y = rt.get(b[i], 60s);
    if (!x || !y) {
      why = chaos::account_name(static_cast<int>(i)) + ": "
            + caf::to_string(!x ? x.error() : y.error());
      return false;
    }
    ops.push_back(std::move(*x));
    balances.push_back(*y);
  }
  return true;
}

// Gives each account its initial balance unless its ops list it already
// (the driver is the only caller, so check-then-apply runs once).
bool init_bank(runtime& rt, std::vector<actor_handle<account>>& accts,
               std::string& why) {
  std::vector<std::vector<int64_t>> ops;
  std::vector<int64_t> balances;
  if (!read_bank(rt, accts, ops, balances, why))
    return false;
  for (int i = 0; i < chaos::accounts; ++i) {
    auto& o = ops[static_cast<size_t>(i)];
    if (std::find(o.begin(), o.end(), chaos::init_op(i)) != o.end())
      continue;
    auto r = rt.get(accts[static_cast<size_t>(i)].call(
                      &account::apply, chaos::init_op(i),
                      chaos::initial_balance),
                    60s);
    if (!r) {
      why = "init of " + chaos::account_name(i) + ": "
            + caf::to_string(r.error());
      return false;
    }
  }
  return true;
}

// -- the journal of the child drivers ------------------------------------------

// One append-only file per client thread and run. Lines: "I t from to
// amount" before the withdraw is submitted, "W t" once it is acknowledged,
// "D t" once the deposit is. Each line is one write(2): a killed process
// leaves whole lines (the page cache keeps them; the machine stays up).
class journal {
public:
  explicit journal(const std::string& path)
    : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                 0600)) {
    // nop
  }
  ~journal() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  bool ok() const {
    return fd_ >= 0;
  }
  void line(const std::string& text) {
    auto s = text + "\n";
    auto n = ::write(fd_, s.data(), s.size());
    static_cast<void>(n);
  }

private:
  int fd_;
};

// Every transfer in the journals under `dir`.
std::map<int64_t, transfer> read_journals(const std::string& dir) {
  std::map<int64_t, transfer> result;
  for (auto& entry : std::filesystem::directory_iterator(dir)) {
    auto name = entry.path().filename().string();
    if (name.rfind("journal-", 0) != 0)
      continue;
    std::ifstream in{entry.path()};
    std::string text{std::istreambuf_iterator<char>{in}, {}};
    std::istringstream lines{text};
    std::string line;
    while (std::getline(lines, line)) {
      if (lines.eof())
        break; // no newline: cut short (not expected, but harmless)
      std::istringstream f{line};
      char kind = 0;
      int64_t t = 0;
      f >> kind >> t;
      if (kind == 'I')
        f >> result[t].from >> result[t].to >> result[t].amount;
      else if (kind == 'W')
        result[t].withdraw_acked = true;
      else if (kind == 'D')
        result[t].deposit_acked = true;
    }
  }
  return result;
}

// The bank's own recovery after a driver died, on top of durable actors:
// for each transfer without an acknowledged deposit, if its withdraw is
// applied and its deposit is not, deposit now; if its withdraw is not
// applied, it never happened (the withdraw was in flight and died with the
// driver and its workers, which are gone before this runs).
bool finish_transfers(runtime& rt, std::vector<actor_handle<account>>& accts,
                      std::map<int64_t, transfer>& transfers, journal* log,
                      std::string& why) {
  std::vector<std::vector<int64_t>> ops;
  std::vector<int64_t> balances;
  if (!read_bank(rt, accts, ops, balances, why))
    return false;
  auto has = [&](int acct, int64_t op) {
    auto& o = ops[static_cast<size_t>(acct)];
    return std::find(o.begin(), o.end(), op) != o.end();
  };
  for (auto& [t, x] : transfers) {
    if (x.deposit_acked || !has(x.from, chaos::withdraw_op(t))
        || has(x.to, chaos::deposit_op(t)))
      continue;
    auto r = rt.get(accts[static_cast<size_t>(x.to)].call(
                      &account::apply, chaos::deposit_op(t), x.amount),
                    60s);
    if (!r) {
      why = "finishing transfer " + std::to_string(t) + ": "
            + caf::to_string(r.error());
      return false;
    }
    x.deposit_acked = true;
    if (log != nullptr)
      log->line("D " + std::to_string(t));
  }
  return true;
}

// Runs random transfers from `threads` client threads until `stop`. The
// numbers come from `next`; `on_*` record intents and acknowledgements.
// Returns the failures seen (a durable call should never fail here).
template <class OnIntent, class OnAck>
std::vector<std::string>
run_clients(runtime& rt, std::vector<actor_handle<account>>& accts,
            size_t threads, uint64_t seed, std::atomic<int64_t>& next,
            std::atomic<bool>& stop, OnIntent on_intent, OnAck on_ack) {
  std::mutex mtx;
  std::vector<std::string> failures;
  std::vector<std::thread> ts;
  for (size_t k = 0; k < threads; ++k)
    ts.emplace_back([&, k] {
      std::mt19937_64 rng{seed + k};
      std::uniform_int_distribution<int> pick{0, chaos::accounts - 1};
      std::uniform_int_distribution<int64_t> amount{1, 100};
      while (!stop) {
        transfer x;
        x.from = pick(rng);
        do
          x.to = pick(rng);
        while (x.to == x.from);
        x.amount = amount(rng);
        auto t = next++;
        on_intent(k, t, x);
        auto w = rt.get(accts[static_cast<size_t>(x.from)].call(
                          &account::apply, chaos::withdraw_op(t), -x.amount),
                        60s);
        if (!w) {
          std::lock_guard<std::mutex> guard{mtx};
          failures.push_back("withdraw " + std::to_string(t) + ": "
                             + caf::to_string(w.error()));
          continue;
        }
        on_ack(k, t, 'W');
        auto d = rt.get(accts[static_cast<size_t>(x.to)].call(
                          &account::apply, chaos::deposit_op(t), x.amount),
                        60s);
        if (!d) {
          std::lock_guard<std::mutex> guard{mtx};
          failures.push_back("deposit " + std::to_string(t) + ": "
                             + caf::to_string(d.error()));
          continue;
        }
        on_ack(k, t, 'D');
      }
    });
  for (auto& t : ts)
    t.join();
  return failures;
}

// True once `pid` (a child of this process) exited; reaps it.
bool reaped(int pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

// The child program: a driver that finishes earlier runs' transfers, then
// runs transfers until it is killed (exit 3 if nobody kills it in 60 s).
int chaos_bank_driver() {
  std::string dir = std::getenv("DREF_CHAOS_DIR");
  std::string run = std::getenv("DREF_CHAOS_RUN");
  auto seed = std::strtoull(std::getenv("DREF_CHAOS_SEED"), nullptr, 10);
  auto cfg = test::small_cluster(2);
  cfg.state_dir = dir + "/state";
  runtime rt{cfg};
  if (!rt.running())
    return 2;
  auto accts = spawn_bank(rt);
  std::string why;
  auto transfers = read_journals(dir);
  journal recovery{dir + "/journal-" + run + "-recovery"};
  if (!init_bank(rt, accts, why)
      || !finish_transfers(rt, accts, transfers, &recovery, why)) {
    std::cerr << "chaos driver: " << why << std::endl;
    return 4;
  }
  {
    std::ofstream pids{dir + "/pids-" + run};
    for (auto& w : rt.workers())
      pids << w.pid << "\n";
  }
  std::ofstream{dir + "/ready-" + run} << "ready\n";
  std::vector<std::unique_ptr<journal>> logs;
  constexpr size_t threads = 4;
  for (size_t k = 0; k < threads; ++k)
    logs.push_back(std::make_unique<journal>(dir + "/journal-" + run + "-"
                                             + std::to_string(k)));
  std::atomic<int64_t> next{(std::stoll(run) + 1) * 1000000000LL};
  std::atomic<bool> stop{false};
  std::thread timer{[&] {
    std::this_thread::sleep_for(60s);
    std::_Exit(3);
  }};
  timer.detach();
  run_clients(
    rt, accts, threads, seed, next, stop,
    [&](size_t k, int64_t t, const transfer& x) {
      logs[k]->line("I " + std::to_string(t) + " " + std::to_string(x.from)
                    + " " + std::to_string(x.to) + " "
                    + std::to_string(x.amount));
    },
    [&](size_t k, int64_t t, char what) {
      logs[k]->line(std::string{what} + " " + std::to_string(t));
    });
  return 3;
}

test::child_program chaos_driver_program{"chaos_bank_driver",
                                         chaos_bank_driver};

} // namespace

TEST_CASE("transfers between 100 durable accounts conserve the total and "
          "apply every acknowledged operation exactly once while workers "
          "are SIGKILLed 20 times") {
  auto seed = seed_from_env();
  INFO("DREF_SEED=" << seed);
  test::state_dir dir;
  std::vector<int> killed;
  test::with_cluster(test::durable_cluster(dir, 2), [&](runtime& rt) {
    auto accts = spawn_bank(rt);
    std::string why;
    REQUIRE_MESSAGE(init_bank(rt, accts, why), why);
    std::mutex mtx;
    std::map<int64_t, transfer> transfers;
    std::atomic<int64_t> next{1};
    std::atomic<bool> stop{false};
    std::atomic<bool> killer_failed{false};
    std::thread killer{[&] {
      std::mt19937_64 rng{seed ^ 0x9e3779b97f4a7c15ULL};
      std::uniform_int_distribution<int> pause_ms{0, 150};
      for (int k = 0; k < 20; ++k) {
        std::this_thread::sleep_for(std::chrono::milliseconds{pause_ms(rng)});
        auto ws = rt.workers();
        if (ws.empty()) {
          killer_failed = true;
          break;
        }
        auto victim = ws[std::uniform_int_distribution<size_t>{
          0, ws.size() - 1}(rng)];
        ::kill(victim.pid, SIGKILL);
        killed.push_back(victim.pid);
        // Wait (bounded) until the replacement registered.
        auto deadline = clock_type::now() + 30s;
        for (;;) {
          auto now = rt.workers();
          bool back = now.size() == 2
                      && std::none_of(now.begin(), now.end(), [&](auto& w) {
                           return w.pid == victim.pid;
                         });
          if (back)
            break;
          if (clock_type::now() > deadline) {
            killer_failed = true;
            break;
          }
          std::this_thread::sleep_for(5ms);
        }
        if (killer_failed)
          break;
      }
      std::this_thread::sleep_for(100ms); // some load after the last kill
      stop = true;
    }};
    auto failures = run_clients(
      rt, accts, 4, seed, next, stop,
      [&](size_t, int64_t t, const transfer& x) {
        std::lock_guard<std::mutex> guard{mtx};
        transfers[t] = x;
      },
      [&](size_t, int64_t t, char what) {
        std::lock_guard<std::mutex> guard{mtx};
        (what == 'W' ? transfers[t].withdraw_acked
                     : transfers[t].deposit_acked) = true;
      });
    killer.join();
    CHECK_FALSE(killer_failed);
    CHECK(killed.size() == 20);
    for (auto& f : failures)
      FAIL_CHECK("a durable call failed: " << f);
    std::vector<std::vector<int64_t>> ops;
    std::vector<int64_t> balances;
    REQUIRE_MESSAGE(read_bank(rt, accts, ops, balances, why), why);
    MESSAGE(transfers.size() << " transfers during " << killed.size()
                             << " worker kills");
    CHECK(transfers.size() >= 20);
    for (auto& v : chaos::check_bank(ops, balances, transfers))
      FAIL_CHECK(v);
  });
  test::check_reaped(killed);
}

TEST_CASE("after the whole local cluster is SIGKILLed mid-load three times, "
          "the bank restarted on the same state conserves the total and "
          "applied every acknowledged operation exactly once") {
  auto seed = seed_from_env();
  INFO("DREF_SEED=" << seed);
  // Orphaned workers of the killed drivers become our children, so this
  // test reaps them and can assert that each exited by itself.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  test::state_dir dir;
  std::mt19937_64 rng{seed};
  for (int run = 0; run < 3; ++run) {
    INFO("run " << run);
    auto pid = test::spawn_child(
      "chaos_bank_driver",
      {"DREF_CHAOS_DIR=" + dir.path, "DREF_CHAOS_RUN=" + std::to_string(run),
       "DREF_CHAOS_SEED=" + std::to_string(seed + 100 * run)});
    REQUIRE(pid > 0);
    auto ready = dir.path + "/ready-" + std::to_string(run);
    auto deadline = clock_type::now() + 60s;
    bool exited = false;
    while (!std::filesystem::exists(ready) && clock_type::now() < deadline
           && !(exited = reaped(pid)))
      std::this_thread::sleep_for(10ms);
    REQUIRE_MESSAGE(!exited, "the driver exited before it was ready");
    REQUIRE_MESSAGE(std::filesystem::exists(ready), "the driver never got ready");
    std::this_thread::sleep_for(std::chrono::milliseconds{
      std::uniform_int_distribution<int>{200, 800}(rng)});
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    // Its workers see the lifeline close and exit; we reap them.
    std::vector<int> workers;
    std::ifstream pids{dir.path + "/pids-" + std::to_string(run)};
    for (int w; pids >> w;)
      workers.push_back(w);
    CHECK(workers.size() == 2);
    for (auto w : workers) {
      auto until = clock_type::now() + 20s;
      bool gone = false;
      while (!(gone = reaped(w)) && clock_type::now() < until)
        std::this_thread::sleep_for(10ms);
      if (!gone) {
        FAIL_CHECK("worker " << w << " outlived its driver");
        ::kill(w, SIGKILL);
        ::waitpid(w, nullptr, 0);
      }
    }
  }
  // Every process of the killed drivers is reaped: stop adopting orphans
  // (under ASan, LeakSanitizer's helper of a worker that the final
  // runtime's stop kills after its grace period would be adopted too).
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  // Under ASan a worker that saw its driver die may have started its exit
  // (LeakSanitizer forks a helper) just before its lifeline ended it at
  // once: the helper, orphaned, was adopted here. No child of this test is
  // left now (drivers and workers reaped above), so whatever is still a
  // child is such an orphan: wait for it (bounded) so it cannot look like
  // a process the final runtime leaked.
  for (auto until = clock_type::now() + 10s; clock_type::now() < until;) {
    auto res = ::waitpid(-1, nullptr, WNOHANG);
    if (res < 0)
      break; // no child at all
    if (res == 0)
      std::this_thread::sleep_for(10ms);
  }
  // Restart over the same state directory, in this process.
  auto cfg = test::durable_cluster(dir, 2);
  cfg.state_dir = dir.path + "/state";
  test::with_cluster(cfg, [&](runtime& rt) {
    auto accts = spawn_bank(rt);
    auto transfers = read_journals(dir.path);
    std::string why;
    REQUIRE_MESSAGE(finish_transfers(rt, accts, transfers, nullptr, why), why);
    std::vector<std::vector<int64_t>> ops;
    std::vector<int64_t> balances;
    REQUIRE_MESSAGE(read_bank(rt, accts, ops, balances, why), why);
    size_t acked = 0;
    for (auto& [t, x] : transfers)
      acked += x.deposit_acked ? 1 : 0;
    MESSAGE(transfers.size() << " transfers over 3 killed drivers, "
                             << acked << " completed");
    CHECK(acked >= 3);
    for (auto& v : chaos::check_bank(ops, balances, transfers))
      FAIL_CHECK(v);
  });
}
