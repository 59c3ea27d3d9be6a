// Unit tests of the dispatcher's durable-actor bookkeeping, without
// processes: rollback after a failed checkpoint write (restore first, calls
// in flight re-sent, their first reports stale), per-name call numbering,
// and recovery when a worker dies (waiting for a replacement, re-running a
// spawn that never reached the disk).

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "submit/dispatcher.hpp"

#include "dref/actors/error.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/persist/error.hpp"
#include "dref/refs/ownership_table.hpp"

using namespace dref;
using dref::internal::dispatch_result;
using dref::internal::dispatcher;

namespace {

using report = dispatcher::report;

constexpr worker_id w1 = 1;
constexpr worker_id w2 = 2;

struct durable_fixture {
  ownership_table table;
  dispatcher d;
  uint64_t next_seq = 1;
  std::map<object_id, caf::error> failures;

  durable_fixture() {
    d.set_caller("me");
  }

  std::shared_ptr<task_spec> task(task_kind kind, uint64_t actor = 1) {
    auto t = std::make_shared<task_spec>();
    if (kind != task_kind::actor_destroy)
      t->result = object_id{77, next_seq++};
    t->kind = static_cast<uint8_t>(kind);
    t->name = "vault";
    t->actor = actor;
    if (kind == task_kind::actor_create)
      t->durable = "vault-" + std::to_string(actor);
    return t;
  }

  std::shared_ptr<task_spec> restore(uint64_t actor = 1) {
    auto t = std::make_shared<task_spec>();
    t->kind = static_cast<uint8_t>(task_kind::actor_restore);
    t->name = "vault";
    t->actor = actor;
    t->durable = "vault-" + std::to_string(actor);
    return t;
  }

  dispatch_result submit(const std::shared_ptr<task_spec>& t) {
    if (t->result.valid())
      table.add_pending(t->result, nullptr);
    dispatch_result out;
    d.submit(t, table, out);
    for (auto& [id, err] : out.failures)
      failures.emplace(id, err);
    return out;
  }

  void complete(const object_id& id, worker_id w) {
    REQUIRE(d.classify(id, w) == report::current);
    dispatch_result out;
    REQUIRE(d.completed(id, out));
  }

  void note(const dispatch_result& out) {
    for (auto& [id, err] : out.failures)
      failures.emplace(id, err);
  }
};

caf::error write_failed() {
  return make_error(persist_errc::disk_full, "test");
}

} // namespace

TEST_CASE("a rollback sends the restore first, then the calls that were in "
          "flight in send order, and the first report of each is stale") {
  durable_fixture f;
  f.d.add_worker(w1, process_address{7001, "127.0.0.1", 7001});
  auto create = f.task(task_kind::actor_create);
  f.submit(create);
  f.complete(create->result, w1);
  auto c1 = f.task(task_kind::actor_call);
  auto c2 = f.task(task_kind::actor_call);
  auto c3 = f.task(task_kind::actor_call);
  for (auto& c : {c1, c2, c3})
    REQUIRE(f.submit(c).sends.size() == 1);
  // c1's checkpoint write failed: it completes (as a failure) and the
  // actor rolls back while c2 and c3 are in flight.
  f.complete(c1->result, w1);
  dispatch_result out;
  f.d.rollback(1, f.restore(), write_failed(), out);
  f.d.retry_held(f.table, out);
  REQUIRE(out.sends.size() == 3);
  CHECK(out.sends[0].second.kind
        == static_cast<uint8_t>(task_kind::actor_restore));
  CHECK(out.sends[1].second.result == c2->result);
  CHECK(out.sends[2].second.result == c3->result);
  CHECK(out.sends[1].second.seq == 2); // numbers kept
  CHECK(out.sends[2].second.seq == 3);
  CHECK(out.failures.empty());
  // The worker reports c2 and c3 from their first run, then the re-runs.
  CHECK(f.d.classify(c2->result, w1) == report::stale);
  CHECK(f.d.classify(c3->result, w1) == report::stale);
  CHECK(f.d.classify(c2->result, w1) == report::current);
  CHECK(f.d.classify(c3->result, w1) == report::current);
  // From another worker, a result is never current.
  CHECK(f.d.classify(c3->result, w2) == report::unknown);
}

TEST_CASE("a rollback without a good checkpoint makes the actor die: its "
          "calls fail and its worker drops the instance") {
  durable_fixture f;
  f.d.add_worker(w1, process_address{7001, "127.0.0.1", 7001});
  auto create = f.task(task_kind::actor_create);
  f.submit(create);
  auto c1 = f.task(task_kind::actor_call);
  auto c2 = f.task(task_kind::actor_call);
  f.submit(c1);
  f.submit(c2);
  f.complete(create->result, w1); // its write failed
  dispatch_result out;
  f.d.rollback(1, nullptr, write_failed(), out);
  f.note(out);
  CHECK(f.failures.count(c1->result) == 1);
  CHECK(f.failures.count(c2->result) == 1);
  REQUIRE(out.sends.size() == 1);
  CHECK(out.sends[0].second.kind
        == static_cast<uint8_t>(task_kind::actor_destroy));
  // The reports the worker still sends are unknown (their copies freed).
  CHECK(f.d.classify(c1->result, w1) == report::unknown);
  auto later = f.task(task_kind::actor_call);
  f.submit(later);
  REQUIRE(f.failures.count(later->result) == 1);
  CHECK(f.failures[later->result].category() == persist_category);
  CHECK(f.d.actors() == 0);
}

TEST_CASE("durable calls are numbered per name from 1 in queue order, and a "
          "later instance of the name continues the numbers") {
  durable_fixture f;
  f.d.add_worker(w1, process_address{7001, "127.0.0.1", 7001});
  auto create = f.task(task_kind::actor_create);
  f.submit(create);
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 3; ++i) {
    auto out = f.submit(f.task(task_kind::actor_call));
    REQUIRE(out.sends.size() == 1);
    seqs.push_back(out.sends[0].second.seq);
    CHECK(out.sends[0].second.caller == "me");
  }
  CHECK(seqs == std::vector<uint64_t>{1, 2, 3});
  f.submit(f.task(task_kind::actor_destroy));
  auto again = f.task(task_kind::actor_create, 2);
  again->durable = "vault-1"; // the same name, a new instance
  f.submit(again);
  auto out = f.submit(f.task(task_kind::actor_call, 2));
  REQUIRE(out.sends.size() == 1);
  CHECK(out.sends[0].second.seq == 4);
}

TEST_CASE("a durable actor whose only worker died waits for the next worker "
          "and starts there with its restore") {
  durable_fixture f;
  f.d.add_worker(w1, process_address{7001, "127.0.0.1", 7001});
  auto create = f.task(task_kind::actor_create);
  f.submit(create);
  f.complete(create->result, w1);
  auto c1 = f.task(task_kind::actor_call);
  f.submit(c1);
  dispatch_result out;
  f.d.remove_worker(w1, out, {{1, f.restore()}});
  f.note(out);
  CHECK(f.failures.empty());
  CHECK(out.sends.empty());
  auto c2 = f.task(task_kind::actor_call);
  CHECK(f.submit(c2).sends.empty()); // held
  f.d.add_worker(w2, process_address{7002, "127.0.0.1", 7002});
  dispatch_result later;
  f.d.retry_held(f.table, later);
  REQUIRE(later.sends.size() == 3);
  CHECK(later.sends[0].first == w2);
  CHECK(later.sends[0].second.kind
        == static_cast<uint8_t>(task_kind::actor_restore));
  CHECK(later.sends[1].second.result == c1->result);
  CHECK(later.sends[2].second.result == c2->result);
}

TEST_CASE("when no worker is coming, a durable actor waiting for one fails "
          "its calls") {
  durable_fixture f;
  f.d.add_worker(w1, process_address{7001, "127.0.0.1", 7001});
  auto create = f.task(task_kind::actor_create);
  f.submit(create);
  f.complete(create->result, w1);
  auto c1 = f.task(task_kind::actor_call);
  f.submit(c1);
  dispatch_result out;
  f.d.remove_worker(w1, out, {{1, f.restore()}});
  auto err = make_error(actors_errc::worker_died, "no worker left");
  f.d.fail_held(err, out);
  f.note(out);
  REQUIRE(f.failures.count(c1->result) == 1);
  CHECK(f.d.actors() == 0);
}

TEST_CASE("a durable actor without a checkpoint whose spawn was in flight "
          "spawns again on another worker") {
  durable_fixture f;
  f.d.add_worker(w1, process_address{7001, "127.0.0.1", 7001});
  f.d.add_worker(w2, process_address{7002, "127.0.0.1", 7002});
  auto create = f.task(task_kind::actor_create);
  auto sent = f.submit(create);
  REQUIRE(sent.sends.size() == 1);
  auto first = sent.sends[0].first;
  auto c1 = f.task(task_kind::actor_call);
  f.submit(c1);
  dispatch_result out;
  f.d.remove_worker(first, out, {}); // no checkpoint yet
  f.note(out);
  f.d.retry_held(f.table, out);
  CHECK(f.failures.empty());
  REQUIRE(out.sends.size() == 2);
  CHECK(out.sends[0].first != first);
  CHECK(out.sends[0].second.result == create->result);
  CHECK(out.sends[1].second.result == c1->result);
}
