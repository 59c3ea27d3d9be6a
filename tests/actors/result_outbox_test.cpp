// result_outbox: a worker's results leave at the end of their batch, or
// from the timer while the executor still runs later tasks of the batch,
// always in the order they were made ("The call path", step 6,
// docs/architecture.md).

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "worker/result_outbox.hpp"

using namespace dref;
using namespace dref::internal;
using namespace std::chrono_literals;

namespace {

task_result result(uint64_t seq) {
  task_result r;
  r.id = object_id{0xabc, seq};
  return r;
}

/// What the outbox sent, one entry per send; waits (bounded) for sends.
class recorder {
public:
  result_outbox::send_fn sender() {
    return [this](std::vector<task_result>&& rs) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        std::vector<uint64_t> seqs;
        for (auto& r : rs)
          seqs.push_back(r.id.seq);
        sends_.push_back(std::move(seqs));
      }
      cv_.notify_all();
    };
  }

  /// Waits at most 10 s until `n` results were sent; true if they were.
  bool wait_for(size_t n) {
    std::unique_lock<std::mutex> lk{mtx_};
    return cv_.wait_for(lk, 10s, [&] { return count_locked() >= n; });
  }

  std::vector<std::vector<uint64_t>> sends() {
    std::lock_guard<std::mutex> guard{mtx_};
    return sends_;
  }

  /// Every result sent, in the order the sends happened.
  std::vector<uint64_t> all() {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<uint64_t> result;
    for (auto& s : sends_)
      result.insert(result.end(), s.begin(), s.end());
    return result;
  }

private:
  size_t count_locked() const {
    size_t n = 0;
    for (auto& s : sends_)
      n += s.size();
    return n;
  }

  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::vector<uint64_t>> sends_;
};

} // namespace

TEST_CASE("a result made while later tasks of its batch run is sent by the "
          "timer without waiting for the batch to end") {
  recorder rec;
  result_outbox out{rec.sender(), 2ms};
  out.push(result(1), true); // the executor goes on with a blocking task
  REQUIRE(rec.wait_for(1));
  CHECK(out.timer_sends() == 1);
  CHECK(rec.sends() == std::vector<std::vector<uint64_t>>{{1}});
  out.flush(); // the batch ends: nothing left to send
  CHECK(rec.sends().size() == 1);
}

TEST_CASE("the last result of a batch arms no timer and leaves with the "
          "batch's flush, together with the results before it") {
  recorder rec;
  result_outbox out{rec.sender(), std::chrono::hours{1}};
  out.push(result(1), false); // a batch of one task: the synchronous path
  CHECK_FALSE(out.armed());
  out.flush();
  out.push(result(2), true);
  CHECK(out.armed());
  out.push(result(3), false);
  out.flush();
  CHECK_FALSE(out.armed());
  CHECK(rec.sends() == std::vector<std::vector<uint64_t>>{{1}, {2, 3}});
  CHECK(out.timer_sends() == 0);
}

TEST_CASE("results sent by the timer and by flushes reach the sender in the "
          "order they were pushed") {
  recorder rec;
  result_outbox out{rec.sender(), 50us};
  uint64_t seq = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 50; ++i)
      out.push(result(++seq), true);
    if (round % 20 == 0) {
      // A batch ends, the next one's first result is followed by a task
      // that "blocks": only the timer can send it.
      out.flush();
      out.push(result(++seq), true);
      REQUIRE(rec.wait_for(seq));
    } else if (round % 3 == 0) {
      out.flush(); // a batch ended
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds{round % 7 * 20});
    }
  }
  out.push(result(++seq), false);
  out.flush();
  std::vector<uint64_t> want;
  for (uint64_t i = 1; i <= seq; ++i)
    want.push_back(i);
  CHECK(rec.all() == want);
  CHECK(out.timer_sends() >= 10);
}

TEST_CASE("a stopped outbox sends nothing more") {
  recorder rec;
  result_outbox out{rec.sender(), std::chrono::hours{1}};
  out.push(result(1), true);
  out.stop();
  out.push(result(2), true);
  out.flush();
  CHECK(rec.sends().empty());
  out.stop(); // idempotent
}
