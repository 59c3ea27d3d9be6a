// The task pool of a worker (worker/task_pool.hpp): one task at a time in
// arrival order, a waiting task's slot handed on, one actor's tasks one at
// a time, consumers waiting for a producer that waits.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "core/blocking.hpp"
#include "worker/task_pool.hpp"

using namespace dref;
using namespace dref::internal;
using namespace std::chrono_literals;

namespace {

task_spec function_task(uint64_t seq) {
  task_spec t;
  t.kind = static_cast<uint8_t>(task_kind::function);
  t.result = object_id{7, seq};
  return t;
}

task_spec actor_task(uint64_t actor, uint64_t seq) {
  auto t = function_task(seq);
  t.kind = static_cast<uint8_t>(task_kind::actor_call);
  t.actor = actor;
  return t;
}

// What the tasks did, and a latch the test's tasks wait on.
struct journal {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<uint64_t> started;
  std::vector<uint64_t> ended;
  int running = 0;
  int most = 0;
  bool open = false;

  void start(uint64_t seq) {
    std::lock_guard<std::mutex> guard{mtx};
    started.push_back(seq);
    most = std::max(most, ++running);
    cv.notify_all();
  }
  void end(uint64_t seq) {
    std::lock_guard<std::mutex> guard{mtx};
    ended.push_back(seq);
    --running;
    cv.notify_all();
  }
  // Waits (as a task waits: a blocking scope) until `open`.
  bool wait_open() {
    blocking_scope waiting;
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, 10s, [&] { return open; });
  }
  void set_open() {
    std::lock_guard<std::mutex> guard{mtx};
    open = true;
    cv.notify_all();
  }
  bool wait_ended(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, 10s, [&] { return ended.size() >= n; });
  }
};

} // namespace

TEST_CASE("a task pool runs tasks one at a time in arrival order when none "
          "waits") {
  journal j;
  std::atomic<int> flushes{0};
  task_pool pool{[&](task_spec& t, bool) {
                   j.start(t.result.seq);
                   j.end(t.result.seq);
                 },
                 [&] { ++flushes; }, 8};
  std::vector<task_spec> batch;
  for (uint64_t i = 1; i <= 50; ++i)
    batch.push_back(function_task(i));
  pool.push(std::move(batch));
  REQUIRE(j.wait_ended(50));
  CHECK(j.most == 1);
  for (uint64_t i = 0; i < 50; ++i)
    CHECK(j.started[i] == i + 1);
  CHECK(flushes.load() >= 1);
  CHECK(pool.threads() == 1);
}

TEST_CASE("a waiting task hands its slot to the next task, which can end "
          "the wait") {
  journal j;
  task_pool pool{[&](task_spec& t, bool) {
                   j.start(t.result.seq);
                   if (t.result.seq == 1)
                     CHECK(j.wait_open()); // waits for task 2
                   else
                     j.set_open();
                   j.end(t.result.seq);
                 },
                 nullptr, 8};
  pool.push({function_task(1), function_task(2)});
  REQUIRE(j.wait_ended(2));
  // 2 started while 1 waited (one thread alone would never get there).
  CHECK(j.started == std::vector<uint64_t>{1, 2});
  CHECK(pool.threads() == 2);
}

TEST_CASE("one actor's tasks run one at a time and in order, even when the "
          "first waits") {
  journal j;
  task_pool pool{[&](task_spec& t, bool) {
                   j.start(t.result.seq);
                   if (t.result.seq == 1)
                     CHECK(j.wait_open()); // the actor's first call waits
                   if (t.result.seq == 3)
                     j.set_open(); // a function task opens it
                   j.end(t.result.seq);
                 },
                 nullptr, 8};
  // 1 and 2 belong to actor 5; 3 is a function task that may pass 2.
  pool.push({actor_task(5, 1), actor_task(5, 2), function_task(3)});
  REQUIRE(j.wait_ended(3));
  // 3 ran while 1 waited; 2 started only once 1 had ended.
  CHECK(j.started == std::vector<uint64_t>{1, 3, 2});
  CHECK(j.ended.back() == 2);
}

TEST_CASE("a consumer that starts while its producer waits waits for the "
          "producer") {
  journal j;
  task_pool* self = nullptr;
  std::atomic<bool> saw_producing{false};
  std::atomic<bool> produced{false};
  task_pool pool{[&](task_spec& t, bool) {
                   j.start(t.result.seq);
                   if (t.result.seq == 1) { // the producer waits
                     CHECK(j.wait_open());
                   } else { // the consumer of 1
                     saw_producing = self->producing(object_id{7, 1});
                     j.set_open();
                     produced = self->await_produced(object_id{7, 1}, 10s);
                   }
                   j.end(t.result.seq);
                 },
                 nullptr, 8};
  self = &pool;
  pool.push({function_task(1), function_task(2)});
  REQUIRE(j.wait_ended(2));
  CHECK(saw_producing.load());
  CHECK(produced.load());
  CHECK(j.ended == std::vector<uint64_t>{1, 2});
  CHECK_FALSE(pool.producing(object_id{7, 1}));
}

TEST_CASE("a task pool starts no more threads than its limit") {
  journal j;
  task_pool pool{[&](task_spec& t, bool) {
                   j.start(t.result.seq);
                   if (t.result.seq <= 3)
                     CHECK(j.wait_open());
                   j.end(t.result.seq);
                 },
                 nullptr, 3};
  pool.push({function_task(1), function_task(2), function_task(3),
             function_task(4)});
  // Three waiting tasks fill the pool: the fourth cannot start until one
  // of them ends.
  {
    std::unique_lock<std::mutex> guard{j.mtx};
    REQUIRE(j.cv.wait_for(guard, 10s, [&] { return j.started.size() >= 3; }));
  }
  std::this_thread::sleep_for(50ms);
  {
    std::lock_guard<std::mutex> guard{j.mtx};
    CHECK(j.started.size() == 3);
  }
  CHECK(pool.threads() == 3);
  j.set_open();
  REQUIRE(j.wait_ended(4));
}
