// Retries and the sequence table: calls on a durable actor carry (caller,
// sequence number); the actor keeps, per caller, the number of the last
// call applied and its reply, saved in the same checkpoint record as its
// state. A retry is answered from the table instead of applied again.
// The retries are made by the test hook `config::test_resend_durable_calls`,
// which sends every durable call twice and lets the owner take the
// retry's answer.

#include "durable_util.hpp"

#include <string>
#include <vector>

#include "dref/persist/record_codec.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

class ledger_tally {
public:
  int64_t add(int64_t x) {
    sum_ += x;
    ++adds_;
    return sum_;
  }

  int64_t adds() const {
    return adds_;
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, ledger_tally& x) {
    return f(caf::meta::type_name("test.ledger_tally"), x.sum_, x.adds_);
  }

private:
  int64_t sum_ = 0;
  int64_t adds_ = 0;
};

} // namespace

DREF_ACTOR(ledger_tally, &ledger_tally::add, &ledger_tally::adds);

TEST_CASE("a durable call that arrives twice is applied once and the retry "
          "is answered from the sequence table") {
  test::state_dir dir;
  auto cfg = test::durable_cluster(dir);
  cfg.test_resend_durable_calls = true;
  test::with_cluster(cfg, [&](runtime& rt) {
    auto t = rt.spawn<ledger_tally>(durable("tally-1"));
    std::vector<ref<int64_t>> sums;
    for (int64_t i = 1; i <= 50; ++i)
      sums.push_back(t.call(&ledger_tally::add, i));
    // Every answer the owner took is a retry's: the original reply.
    for (int64_t i = 1; i <= 50; ++i) {
      auto r = rt.get(sums[static_cast<size_t>(i - 1)], 10s);
      REQUIRE_MESSAGE(r, test::why(r));
      CHECK(*r == i * (i + 1) / 2);
    }
    auto n = rt.get(t.call(&ledger_tally::adds), 10s);
    REQUIRE(n);
    CHECK(*n == 50);
  });
  // The table is in the same record as the state: one caller, its last
  // call that changed the state (add #50; adds() is const and writes
  // nothing) and that call's reply, the sum 1..50.
  auto store = rocksdb_checkpoint_store::open(dir.path);
  REQUIRE(store);
  auto cp = test::newest_checkpoint(**store, "tally-1");
  REQUIRE(cp);
  REQUIRE(cp->sequence_numbers.size() == 1);
  auto& [caller, seq] = *cp->sequence_numbers.begin();
  CHECK(caller.rfind("driver-", 0) == 0);
  CHECK(seq == 50);
  blob sum;
  REQUIRE_FALSE(to_blob(int64_t{50 * 51 / 2}, sum));
  REQUIRE(cp->replies.count(caller) == 1);
  CHECK(cp->replies.at(caller) == std::string(sum.begin(), sum.end()));
}

TEST_CASE("durable actors wait for a replacement when every worker dies at "
          "once, and retries are still answered from the sequence table") {
  test::state_dir dir;
  auto cfg = test::durable_cluster(dir);
  cfg.test_resend_durable_calls = true;
  test::with_cluster(cfg, [&](runtime& rt) {
    auto t = rt.spawn<ledger_tally>(durable("tally-2"));
    std::vector<ref<int64_t>> sums;
    for (int64_t i = 1; i <= 300; ++i) {
      sums.push_back(t.call(&ledger_tally::add, int64_t{1}));
      if (i == 100) {
        auto ws = rt.workers();
        REQUIRE_FALSE(ws.empty());
        for (auto& w : ws) // the actor's worker is one of them: kill both
          ::kill(w.pid, SIGKILL);
      }
    }
    for (int64_t i = 1; i <= 300; ++i) {
      auto r = rt.get(sums[static_cast<size_t>(i - 1)], 30s);
      REQUIRE_MESSAGE(r, test::why(r));
      CHECK(*r == i);
    }
    auto n = rt.get(t.call(&ledger_tally::adds), 10s);
    REQUIRE(n);
    CHECK(*n == 300);
  });
}

TEST_CASE("after a full restart, retries of the first run's calls are "
          "answered from the sequence table on disk, not applied again") {
  // Both runs use the caller id "retrying-driver"; the second numbers its
  // calls from 1 again, so its first three calls are retries of the first
  // run's calls 1 to 3.
  test::state_dir dir;
  auto cfg = test::durable_cluster(dir);
  cfg.test_caller_id = "retrying-driver";
  test::with_cluster(cfg, [&](runtime& rt) {
    auto t = rt.spawn<ledger_tally>(durable("tally-3"));
    for (int64_t i = 1; i <= 3; ++i)
      REQUIRE(rt.get(t.call(&ledger_tally::add, i * 100), 10s));
  });
  test::with_cluster(cfg, [&](runtime& rt) {
    auto t = rt.spawn<ledger_tally>(durable("tally-3"));
    auto r1 = rt.get(t.call(&ledger_tally::add, int64_t{1}), 10s);
    auto r2 = rt.get(t.call(&ledger_tally::add, int64_t{1}), 10s);
    auto r3 = rt.get(t.call(&ledger_tally::add, int64_t{1}), 10s);
    auto r4 = rt.get(t.call(&ledger_tally::add, int64_t{1}), 10s);
    // Calls 1 and 2: applied before, their replies are gone.
    REQUIRE_FALSE(r1);
    CHECK(test::is(r1.error(), actors_errc::already_applied));
    REQUIRE_FALSE(r2);
    CHECK(test::is(r2.error(), actors_errc::already_applied));
    // Call 3: the last one, answered with the first run's reply.
    REQUIRE(r3);
    CHECK(*r3 == 600);
    // Call 4 is new.
    REQUIRE(r4);
    CHECK(*r4 == 601);
    auto n = rt.get(t.call(&ledger_tally::adds), 10s);
    REQUIRE(n);
    CHECK(*n == 4);
  });
}

TEST_CASE("a driver restoring a durable actor drops the sequence entries of "
          "earlier drivers, so the table does not grow with every run") {
  test::state_dir dir;
  for (int run = 0; run < 3; ++run)
    test::with_cluster(test::durable_cluster(dir), [&](runtime& rt) {
      auto t = rt.spawn<ledger_tally>(durable("tally-runs"));
      REQUIRE(rt.get(t.call(&ledger_tally::add, int64_t{1}), 10s));
      REQUIRE(rt.get(t.call(&ledger_tally::add, int64_t{1}), 10s));
    });
  std::optional<checkpoint> cp;
  {
    auto store = rocksdb_checkpoint_store::open(dir.path);
    REQUIRE(store);
    cp = test::newest_checkpoint(**store, "tally-runs");
  } // closed: the next run opens it
  REQUIRE(cp);
  // Only the last run's driver: its two calls, and its last reply.
  REQUIRE(cp->sequence_numbers.size() == 1);
  CHECK(cp->sequence_numbers.begin()->first.rfind("driver-", 0) == 0);
  CHECK(cp->sequence_numbers.begin()->second == 2);
  CHECK(cp->replies.size() == 1);
  // Nothing was lost on the way: 3 runs x 2 adds.
  test::with_cluster(test::durable_cluster(dir), [&](runtime& rt) {
    auto t = rt.actor<ledger_tally>("tally-runs");
    REQUIRE_MESSAGE(t, test::why(t));
    CHECK(rt.get(t->call(&ledger_tally::adds), 10s).value() == 6);
  });
}
