// Unit tests of the dispatcher: placement, holding and failing of tasks,
// without processes. The fixture plays the runtime: it keeps an ownership
// table of the objects the tasks read, feeds each task to the dispatcher and
// records every dispatch_result, so each test can also check the invariant
// "every task is held, in flight, or finished (exactly once)".

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "submit/dispatcher.hpp"

#include "dref/actors/error.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/refs/error.hpp"
#include "dref/refs/ownership_table.hpp"

using namespace dref;
using dref::internal::dispatch_result;
using dref::internal::dispatcher;

namespace {

constexpr worker_id w1 = 1;
constexpr worker_id w2 = 2;
const process_address port1{101, "127.0.0.1", 7001};
const process_address port2{102, "127.0.0.1", 7002};

process_address port_of(worker_id w) {
  return w == w1 ? port1 : port2;
}

worker_id other(worker_id w) {
  return w == w1 ? w2 : w1;
}

object_id oid(uint64_t seq) {
  return object_id{77, seq};
}

task_arg ref_arg(const object_id& id) {
  task_arg a;
  a.kind = arg_kind::owned_ref;
  a.type = "i";
  a.ref = id;
  return a;
}

task_arg value_arg(blob bytes) {
  task_arg a;
  a.kind = arg_kind::value;
  a.type = "i";
  a.value = std::move(bytes);
  return a;
}

bool has_code(const caf::error& err, actors_errc code) {
  return err.category() == actors_category
         && err.code() == static_cast<uint8_t>(code);
}

bool has_code(const caf::error& err, refs_errc code) {
  return err.category() == refs_category
         && err.code() == static_cast<uint8_t>(code);
}

struct fixture {
  ownership_table table;
  dispatcher d;
  uint64_t next_seq = 1;
  std::vector<std::shared_ptr<const task_spec>> submitted;
  std::map<const task_spec*, int> finished; // times reported finished
  std::map<object_id, caf::error> failures;

  void add_workers() {
    d.add_worker(w1, port1);
    d.add_worker(w2, port2);
  }

  // Records a step's outcome.
  void record(const dispatch_result& out) {
    for (auto& t : out.finished)
      ++finished[t.get()];
    for (auto& [id, err] : out.failures) {
      CHECK(failures.count(id) == 0); // fails at most once
      failures.emplace(id, err);
    }
  }

  dispatch_result submit(std::shared_ptr<task_spec> t) {
    // As the runtime does: the result is pending in the table.
    if (t->result.valid())
      table.add_pending(t->result, nullptr);
    submitted.push_back(t);
    dispatch_result out;
    d.submit(std::move(t), table, out);
    record(out);
    return out;
  }

  std::shared_ptr<task_spec> function(std::vector<task_arg> args = {}) {
    auto t = std::make_shared<task_spec>();
    t->result = oid(next_seq++);
    t->kind = static_cast<uint8_t>(task_kind::function);
    t->name = "f";
    t->args = std::move(args);
    return t;
  }

  std::shared_ptr<task_spec> actor_task(task_kind kind, uint64_t actor,
                                        std::vector<task_arg> args = {}) {
    auto t = std::make_shared<task_spec>();
    if (kind != task_kind::actor_destroy)
      t->result = oid(next_seq++);
    t->kind = static_cast<uint8_t>(kind);
    t->name = "counter";
    t->actor = actor;
    t->args = std::move(args);
    return t;
  }

  // Submits a function task with no arguments; returns its result id and
  // the worker it went to.
  std::pair<object_id, worker_id> producer_task() {
    auto t = function();
    auto id = t->result;
    auto out = submit(t);
    REQUIRE(out.sends.size() == 1);
    return {id, out.sends[0].first};
  }

  dispatch_result completed(const object_id& id, bool expect = true) {
    dispatch_result out;
    CHECK(d.completed(id, out) == expect);
    record(out);
    return out;
  }

  dispatch_result retry() {
    dispatch_result out;
    d.retry_held(table, out);
    record(out);
    return out;
  }

  dispatch_result remove_worker(worker_id w) {
    dispatch_result out;
    d.remove_worker(w, out);
    record(out);
    return out;
  }

  bool is_finished(const std::shared_ptr<task_spec>& t) const {
    auto i = finished.find(t.get());
    return i != finished.end() && i->second > 0;
  }

  // Every task is held, in flight, or finished exactly once.
  void check_invariant() const {
    for (auto& [t, n] : finished)
      CHECK(n == 1);
    CHECK(d.held() + d.in_flight() + finished.size() == submitted.size());
  }
};

} // namespace

TEST_CASE("least-loaded placement alternates between two idle workers") {
  fixture f;
  f.add_workers();
  std::vector<worker_id> placed;
  for (int i = 0; i < 4; ++i) {
    auto [id, w] = f.producer_task();
    placed.push_back(w);
    CHECK(f.d.load(w) == 1);
    f.completed(id);
    CHECK(f.d.load(w) == 0);
  }
  CHECK(placed[0] != placed[1]);
  CHECK(placed[2] == placed[0]);
  CHECK(placed[3] == placed[1]);
  f.check_invariant();
}

TEST_CASE("least-loaded placement sends a task to the worker with fewer "
          "tasks in flight") {
  fixture f;
  f.add_workers();
  auto [a, wa] = f.producer_task();
  auto [b, wb] = f.producer_task();
  CHECK(wa != wb);
  auto [c, wc] = f.producer_task();
  static_cast<void>(c);
  CHECK(f.d.load(wc) == 2);
  // Whoever got the third task is busier; the next goes to the other one,
  // whatever the round-robin start.
  auto [e, we] = f.producer_task();
  static_cast<void>(e);
  CHECK(we == other(wc));
  CHECK(f.d.load(w1) == 2);
  CHECK(f.d.load(w2) == 2);
  // Completing frees capacity where it completed.
  f.completed(wa == wc ? a : b);
  auto [g, wg] = f.producer_task();
  static_cast<void>(g);
  CHECK(wg == wc);
  CHECK(f.d.in_flight() == 4);
  f.check_invariant();
}

TEST_CASE("a task whose ref argument is pending on a worker goes to that "
          "worker and reads it there") {
  fixture f;
  f.add_workers();
  auto [x, wa] = f.producer_task();
  // The other worker is idle, so least-loaded would pick it.
  CHECK(f.d.load(wa) == 1);
  CHECK(f.d.load(other(wa)) == 0);
  auto out = f.submit(f.function({value_arg({'v'}), ref_arg(x)}));
  REQUIRE(out.sends.size() == 1);
  auto& [target, sent] = out.sends[0];
  CHECK(target == wa);
  REQUIRE(sent.args.size() == 2);
  CHECK(sent.args[0].kind == arg_kind::value);
  CHECK(sent.args[0].value == blob{'v'});
  CHECK(sent.args[1].kind == arg_kind::owned_ref);
  CHECK(sent.args[1].ref == x);
  CHECK(sent.args[1].location == wa);
  CHECK(sent.args[1].from == port_of(wa));
  CHECK(f.d.load(wa) == 2);
  CHECK(f.d.held() == 0);
  REQUIRE(f.d.producer(sent.result) != nullptr);
  CHECK(*f.d.producer(sent.result) == wa);
  f.check_invariant();
}

TEST_CASE("a task reading a value stored only at a worker goes to that "
          "worker") {
  fixture f;
  f.add_workers();
  auto [x, wa] = f.producer_task();
  f.completed(x);
  REQUIRE(f.table.set_ready(x, nullptr, 1000, wa));
  // Make the holder the busier worker so least-loaded would not pick it:
  // keep only tasks that landed on it in flight.
  while (f.d.load(wa) == 0) {
    auto [y, wy] = f.producer_task();
    if (wy != wa)
      f.completed(y);
  }
  REQUIRE(f.d.load(other(wa)) == 0);
  auto out = f.submit(f.function({ref_arg(x)}));
  REQUIRE(out.sends.size() == 1);
  CHECK(out.sends[0].first == wa);
  auto& arg = out.sends[0].second.args.at(0);
  CHECK(arg.kind == arg_kind::owned_ref);
  CHECK(arg.location == wa);
  CHECK(arg.from == port_of(wa));
  f.check_invariant();
}

TEST_CASE("a task with arguments pending on two different workers is held "
          "until one is ready, then gets that value inline") {
  fixture f;
  f.add_workers();
  auto [x1, wa] = f.producer_task();
  auto [x2, wb] = f.producer_task();
  REQUIRE(wa != wb);
  auto t = f.function({ref_arg(x1), ref_arg(x2)});
  auto out = f.submit(t);
  CHECK(out.sends.empty());
  CHECK(out.failures.empty());
  CHECK(out.finished.empty());
  CHECK(f.d.held() == 1);
  CHECK(f.d.producer(t->result) == nullptr);
  f.check_invariant();
  // Nothing changed: retrying keeps it held.
  CHECK(f.retry().sends.empty());
  CHECK(f.d.held() == 1);
  // The producer on wb finishes with a small value the owner keeps.
  auto done = f.completed(x2);
  REQUIRE(done.finished.size() == 1);
  CHECK(done.finished[0]->result == x2);
  REQUIRE(f.table.set_ready(x2, std::make_shared<const blob>(blob{1, 2, 3}), 3,
                            wb));
  auto released = f.retry();
  REQUIRE(released.sends.size() == 1);
  auto& [target, sent] = released.sends[0];
  CHECK(target == wa); // still next to the pending x1
  CHECK(sent.result == t->result);
  REQUIRE(sent.args.size() == 2);
  CHECK(sent.args[0].kind == arg_kind::owned_ref);
  CHECK(sent.args[0].location == wa);
  CHECK(sent.args[0].from == port_of(wa));
  CHECK(sent.args[1].kind == arg_kind::value);
  CHECK(sent.args[1].value == blob{1, 2, 3});
  CHECK(f.d.held() == 0);
  CHECK(f.d.in_flight() == 2);
  // The dispatcher's copy of the spec is untouched (it is the lineage).
  CHECK(t->args[1].kind == arg_kind::owned_ref);
  CHECK(t->args[1].value.empty());
  f.check_invariant();
}

TEST_CASE("a task whose argument failed fails at once with the argument's "
          "error") {
  fixture f;
  f.add_workers();
  auto x = oid(1000);
  f.table.add_pending(x, nullptr);
  f.table.set_failed(x, make_error(refs_errc::object_lost, "test"));
  auto t = f.function({value_arg({'a'}), ref_arg(x)});
  auto out = f.submit(t);
  CHECK(out.sends.empty());
  REQUIRE(out.failures.size() == 1);
  CHECK(out.failures[0].first == t->result);
  CHECK(has_code(out.failures[0].second, refs_errc::object_lost));
  REQUIRE(out.finished.size() == 1);
  CHECK(out.finished[0] == t);
  CHECK(f.d.held() == 0);
  CHECK(f.d.in_flight() == 0);
  CHECK(f.d.load(w1) == 0);
  CHECK(f.d.load(w2) == 0);
  f.check_invariant();
}

TEST_CASE("a held task fails when one of its pending arguments fails") {
  fixture f;
  f.add_workers();
  auto [x1, wa] = f.producer_task();
  auto [x2, wb] = f.producer_task();
  REQUIRE(wa != wb);
  auto t = f.function({ref_arg(x1), ref_arg(x2)});
  f.submit(t);
  REQUIRE(f.d.held() == 1);
  f.completed(x1);
  f.table.set_failed(x1, make_error(actors_errc::task_failed, "boom"));
  auto out = f.retry();
  CHECK(out.sends.empty());
  REQUIRE(out.failures.size() == 1);
  CHECK(out.failures[0].first == t->result);
  CHECK(has_code(out.failures[0].second, actors_errc::task_failed));
  CHECK(f.is_finished(t));
  CHECK(f.d.held() == 0);
  f.check_invariant();
}

TEST_CASE("a task reading an object the table does not know fails with "
          "unknown_object") {
  fixture f;
  f.add_workers();
  auto t = f.function({ref_arg(oid(999))});
  auto out = f.submit(t);
  CHECK(out.sends.empty());
  REQUIRE(out.failures.size() == 1);
  CHECK(has_code(out.failures[0].second, refs_errc::unknown_object));
  CHECK(f.is_finished(t));
  f.check_invariant();
}

TEST_CASE("completing a task lowers its worker's load and reports its spec "
          "as finished") {
  fixture f;
  f.add_workers();
  auto t = f.function();
  auto out = f.submit(t);
  REQUIRE(out.sends.size() == 1);
  auto w = out.sends[0].first;
  CHECK(f.d.load(w) == 1);
  CHECK(f.d.in_flight() == 1);
  REQUIRE(f.d.producer(t->result) != nullptr);
  CHECK(*f.d.producer(t->result) == w);
  auto done = f.completed(t->result);
  REQUIRE(done.finished.size() == 1);
  CHECK(done.finished[0] == t);
  CHECK(done.sends.empty());
  CHECK(done.failures.empty());
  CHECK(f.d.load(w) == 0);
  CHECK(f.d.in_flight() == 0);
  CHECK(f.d.producer(t->result) == nullptr);
  // A second report, or one for an unknown task, is not in flight.
  auto again = f.completed(t->result, false);
  CHECK(again.finished.empty());
  f.completed(oid(12345), false);
  CHECK(f.d.load(w) == 0);
  f.check_invariant();
}

TEST_CASE("with no worker a function task is held, then sent after a worker "
          "joins and held tasks are retried") {
  fixture f;
  auto t = f.function({value_arg({'z'})});
  auto out = f.submit(t);
  CHECK(out.sends.empty());
  CHECK(out.failures.empty());
  CHECK(f.d.held() == 1);
  f.check_invariant();
  f.d.add_worker(w2, port2);
  CHECK(f.d.workers() == 1);
  auto sent = f.retry();
  REQUIRE(sent.sends.size() == 1);
  CHECK(sent.sends[0].first == w2);
  CHECK(sent.sends[0].second.result == t->result);
  CHECK(f.d.held() == 0);
  CHECK(f.d.in_flight() == 1);
  CHECK(f.d.load(w2) == 1);
  f.check_invariant();
}

TEST_CASE("creating an actor with no worker fails with runtime_down") {
  fixture f;
  auto create = f.actor_task(task_kind::actor_create, 5);
  auto out = f.submit(create);
  CHECK(out.sends.empty());
  REQUIRE(out.failures.size() == 1);
  CHECK(has_code(out.failures[0].second, actors_errc::runtime_down));
  CHECK(f.d.actors() == 0);
  f.check_invariant();
}

TEST_CASE("an actor's calls go to its worker in submission order") {
  fixture f;
  f.add_workers();
  auto create = f.actor_task(task_kind::actor_create, 5);
  auto out = f.submit(create);
  REQUIRE(out.sends.size() == 1);
  auto wa = out.sends[0].first;
  CHECK(f.d.actors() == 1);
  std::vector<object_id> results;
  for (int i = 0; i < 3; ++i) {
    auto call = f.actor_task(task_kind::actor_call, 5, {value_arg({'c'})});
    results.push_back(call->result);
    auto o = f.submit(call);
    REQUIRE(o.sends.size() == 1);
    CHECK(o.sends[0].first == wa);
    CHECK(o.sends[0].second.result == call->result);
  }
  CHECK(f.d.load(wa) == 4);
  CHECK(f.d.load(other(wa)) == 0);
  f.check_invariant();
}

TEST_CASE("an actor call held on a remote pending argument holds the later "
          "calls of the same actor") {
  fixture f;
  f.add_workers();
  auto create = f.actor_task(task_kind::actor_create, 5);
  auto out = f.submit(create);
  REQUIRE(out.sends.size() == 1);
  auto wa = out.sends[0].first;
  f.completed(create->result);
  // A producer on the other worker.
  auto [x, wx] = f.producer_task();
  if (wx == wa) { // make sure the argument is remote to the actor
    f.completed(x);
    f.table.set_ready(x, nullptr, 0, wx);
    auto p = f.producer_task();
    x = p.first;
    wx = p.second;
  }
  REQUIRE(wx != wa);
  auto call1 = f.actor_task(task_kind::actor_call, 5, {ref_arg(x)});
  auto call2 = f.actor_task(task_kind::actor_call, 5);
  CHECK(f.submit(call1).sends.empty());
  CHECK(f.submit(call2).sends.empty()); // no argument, but must wait
  CHECK(f.d.held() == 2);
  // Calls of another actor are not held behind them.
  auto create6 = f.actor_task(task_kind::actor_create, 6);
  CHECK(f.submit(create6).sends.size() == 1);
  f.check_invariant();
  // Retrying before the argument is ready changes nothing.
  CHECK(f.retry().sends.empty());
  CHECK(f.d.held() == 2);
  // The argument arrives at the owner.
  f.completed(x);
  REQUIRE(f.table.set_ready(x, std::make_shared<const blob>(blob{9}), 1, wx));
  auto released = f.retry();
  REQUIRE(released.sends.size() == 2);
  CHECK(released.sends[0].first == wa);
  CHECK(released.sends[0].second.result == call1->result);
  REQUIRE(released.sends[0].second.args.size() == 1);
  CHECK(released.sends[0].second.args[0].kind == arg_kind::value);
  CHECK(released.sends[0].second.args[0].value == blob{9});
  CHECK(released.sends[1].first == wa);
  CHECK(released.sends[1].second.result == call2->result);
  CHECK(f.d.held() == 0);
  f.check_invariant();
}

TEST_CASE("an actor call whose argument is pending on the actor's own worker "
          "is sent at once") {
  fixture f;
  f.d.add_worker(w1, port1); // one worker: everything lands there
  auto create = f.actor_task(task_kind::actor_create, 5);
  REQUIRE(f.submit(create).sends.size() == 1);
  auto [x, wx] = f.producer_task();
  CHECK(wx == w1);
  auto call = f.actor_task(task_kind::actor_call, 5, {ref_arg(x)});
  auto out = f.submit(call);
  REQUIRE(out.sends.size() == 1);
  CHECK(out.sends[0].first == w1);
  CHECK(out.sends[0].second.args.at(0).kind == arg_kind::owned_ref);
  CHECK(out.sends[0].second.args.at(0).location == w1);
  CHECK(out.sends[0].second.args.at(0).from == port1);
  f.check_invariant();
}

TEST_CASE("actor_destroy is sent after the actor's earlier calls") {
  fixture f;
  f.add_workers();
  SUBCASE("when nothing is held") {
    auto create = f.actor_task(task_kind::actor_create, 5);
    auto call = f.actor_task(task_kind::actor_call, 5);
    auto destroy = f.actor_task(task_kind::actor_destroy, 5);
    std::vector<std::pair<worker_id, task_spec>> sends;
    for (auto& t : {create, call, destroy}) {
      auto o = f.submit(t);
      sends.insert(sends.end(), o.sends.begin(), o.sends.end());
    }
    REQUIRE(sends.size() == 3);
    CHECK(sends[0].second.kind == static_cast<uint8_t>(task_kind::actor_create));
    CHECK(sends[1].second.kind == static_cast<uint8_t>(task_kind::actor_call));
    CHECK(sends[2].second.kind
          == static_cast<uint8_t>(task_kind::actor_destroy));
    CHECK(sends[2].first == sends[0].first);
    CHECK(f.is_finished(destroy));
    CHECK(f.d.actors() == 0);
    f.check_invariant();
  }
  SUBCASE("when an earlier call is held") {
    auto create = f.actor_task(task_kind::actor_create, 5);
    auto out = f.submit(create);
    REQUIRE(out.sends.size() == 1);
    auto wa = out.sends[0].first;
    auto [x, wx] = f.producer_task();
    REQUIRE(wx != wa); // least-loaded: the actor's worker is busy
    auto call = f.actor_task(task_kind::actor_call, 5, {ref_arg(x)});
    auto destroy = f.actor_task(task_kind::actor_destroy, 5);
    CHECK(f.submit(call).sends.empty());
    CHECK(f.submit(destroy).sends.empty());
    CHECK(f.d.held() == 2);
    CHECK_FALSE(f.is_finished(destroy));
    CHECK(f.d.actors() == 1);
    f.check_invariant();
    f.completed(x);
    REQUIRE(f.table.set_ready(x, std::make_shared<const blob>(blob{1}), 1,
                              wx));
    auto released = f.retry();
    REQUIRE(released.sends.size() == 2);
    CHECK(released.sends[0].second.result == call->result);
    CHECK(released.sends[1].second.kind
          == static_cast<uint8_t>(task_kind::actor_destroy));
    CHECK(released.sends[1].second.actor == 5);
    CHECK(released.sends[1].first == wa);
    CHECK(f.is_finished(destroy));
    CHECK(f.d.actors() == 0);
    CHECK(f.d.held() == 0);
    f.check_invariant();
  }
}

TEST_CASE("calls to a destroyed actor fail with invalid_argument") {
  fixture f;
  f.add_workers();
  f.submit(f.actor_task(task_kind::actor_create, 5));
  f.submit(f.actor_task(task_kind::actor_destroy, 5));
  auto call = f.actor_task(task_kind::actor_call, 5);
  auto out = f.submit(call);
  CHECK(out.sends.empty());
  REQUIRE(out.failures.size() == 1);
  CHECK(has_code(out.failures[0].second, actors_errc::invalid_argument));
  f.check_invariant();
}

TEST_CASE("removing a worker fails its in-flight tasks and its actors' queued "
          "calls with worker_died") {
  fixture f;
  f.add_workers();
  auto create = f.actor_task(task_kind::actor_create, 5);
  auto out = f.submit(create);
  REQUIRE(out.sends.size() == 1);
  auto wa = out.sends[0].first;
  auto wb = other(wa);
  f.completed(create->result);
  // An argument pending on the other worker holds the actor's later calls.
  auto [x, wx] = f.producer_task();
  if (wx == wa) {
    // Move the producer off the actor's worker.
    f.completed(x);
    f.table.set_ready(x, nullptr, 0, wx);
    auto p = f.producer_task();
    x = p.first;
    wx = p.second;
  }
  REQUIRE(wx == wb);
  auto in_flight_call = f.actor_task(task_kind::actor_call, 5);
  REQUIRE(f.submit(in_flight_call).sends.size() == 1);
  auto held_call = f.actor_task(task_kind::actor_call, 5, {ref_arg(x)});
  auto queued_call = f.actor_task(task_kind::actor_call, 5);
  CHECK(f.submit(held_call).sends.empty());
  CHECK(f.submit(queued_call).sends.empty());
  // A function task in flight on the actor's worker.
  auto fn = f.function();
  auto fo = f.submit(fn);
  REQUIRE(fo.sends.size() == 1);
  std::shared_ptr<task_spec> fn_on_wa;
  if (fo.sends[0].first == wa) {
    fn_on_wa = fn;
  } else {
    fn_on_wa = f.function();
    auto o = f.submit(fn_on_wa);
    REQUIRE(o.sends.size() == 1);
    REQUIRE(o.sends[0].first == wa);
  }
  CHECK(f.d.held() == 2);
  auto in_flight_before = f.d.in_flight();
  f.check_invariant();

  auto removed = f.remove_worker(wa);
  CHECK(removed.sends.empty());
  CHECK(f.d.workers() == 1);
  CHECK(f.d.actors() == 0);
  CHECK(f.d.held() == 0);
  CHECK(f.d.load(wa) == 0);
  for (auto& t : {in_flight_call, held_call, queued_call, fn_on_wa}) {
    CAPTURE(to_string(t->result));
    REQUIRE(f.failures.count(t->result) == 1);
    CHECK(has_code(f.failures[t->result], actors_errc::worker_died));
    CHECK(f.is_finished(t));
    CHECK(f.d.producer(t->result) == nullptr);
  }
  // Tasks on the surviving worker are untouched.
  CHECK(f.failures.count(x) == 0);
  REQUIRE(f.d.producer(x) != nullptr);
  CHECK(*f.d.producer(x) == wb);
  CHECK(f.d.in_flight() < in_flight_before);
  f.check_invariant();
  // A late result from the dead worker is not in flight any more.
  f.completed(in_flight_call->result, false);

  // Later calls to the dead actor fail at once, with the same code.
  auto later = f.actor_task(task_kind::actor_call, 5);
  auto lo = f.submit(later);
  CHECK(lo.sends.empty());
  REQUIRE(lo.failures.size() == 1);
  CHECK(has_code(lo.failures[0].second, actors_errc::worker_died));
  CHECK(f.is_finished(later));
  // Destroying the dead actor sends nothing.
  auto destroy = f.actor_task(task_kind::actor_destroy, 5);
  auto dout = f.submit(destroy);
  CHECK(dout.sends.empty());
  CHECK(dout.failures.empty());
  CHECK(f.is_finished(destroy));
  f.check_invariant();
}

TEST_CASE("removing a worker leaves new tasks to the survivors") {
  fixture f;
  f.add_workers();
  auto removed = f.remove_worker(w1);
  CHECK(removed.failures.empty());
  CHECK(f.d.workers() == 1);
  for (int i = 0; i < 3; ++i) {
    auto [id, w] = f.producer_task();
    static_cast<void>(id);
    CHECK(w == w2);
  }
  // Removing an unknown worker is harmless.
  f.remove_worker(w1);
  CHECK(f.d.workers() == 1);
  f.check_invariant();
}

TEST_CASE("a task reading a value stored only at a removed worker fails with "
          "object_lost") {
  fixture f;
  f.add_workers();
  auto x = oid(500);
  f.table.add_pending(x, nullptr);
  f.table.set_ready(x, nullptr, 10, w1);
  f.remove_worker(w1);
  // The runtime would drop the location too; the dispatcher must not send a
  // reader to a dead worker even before that.
  auto t = f.function({ref_arg(x)});
  auto out = f.submit(t);
  CHECK(out.sends.empty());
  REQUIRE(out.failures.size() == 1);
  CHECK(has_code(out.failures[0].second, refs_errc::object_lost));
  f.check_invariant();
}

TEST_CASE("while a replacement worker starts, a call is held rather than "
          "queued behind the busy survivor, and goes to the replacement") {
  fixture f;
  f.add_workers();
  auto [busy, wb] = f.producer_task(); // a long task on one worker
  static_cast<void>(busy);
  f.remove_worker(other(wb));          // the other died
  f.d.set_starting(1);                 // and its replacement is starting
  auto t = f.function();
  auto out = f.submit(t);
  CHECK(out.sends.empty());
  CHECK(f.d.held() == 1);
  // The replacement registers: the held call goes there, not to wb.
  constexpr worker_id w3 = 3;
  f.d.add_worker(w3, process_address{103, "127.0.0.1", 7003});
  f.d.set_starting(0);
  auto placed = f.retry();
  REQUIRE(placed.sends.size() == 1);
  CHECK(placed.sends[0].first == w3);
  f.check_invariant();
}

TEST_CASE("with no replacement coming, a call goes to the busy survivor") {
  fixture f;
  f.add_workers();
  auto [busy, wb] = f.producer_task();
  static_cast<void>(busy);
  f.remove_worker(other(wb));
  auto out = f.submit(f.function());
  REQUIRE(out.sends.size() == 1);
  CHECK(out.sends[0].first == wb);
  f.check_invariant();
}
