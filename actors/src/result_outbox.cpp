#include "result_outbox.hpp"

#include <utility>

namespace dref::internal {

result_outbox::result_outbox(send_fn send, clock_type::duration max_delay)
  : send_(std::move(send)), max_delay_(max_delay) {
  timer_ = std::thread{[this] { run_timer(); }};
}

result_outbox::~result_outbox() {
  stop();
}

void result_outbox::push(task_result r, bool more_follow) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_)
      return;
    pending_.push_back(std::move(r));
    auto now = clock_type::now();
    if (deadline_ && now >= *deadline_) {
      send_locked(); // past the deadline: no need to wait for the timer
    } else if (more_follow && !deadline_) {
      deadline_ = now + max_delay_;
      wake = true;
    }
  }
  if (wake)
    cv_.notify_one();
}

void result_outbox::flush() {
  std::lock_guard<std::mutex> guard{mtx_};
  send_locked();
}

void result_outbox::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopped_ = true;
    pending_.clear();
    deadline_.reset();
  }
  cv_.notify_all();
  if (timer_.joinable())
    timer_.join();
}

size_t result_outbox::timer_sends() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return timer_sends_;
}

bool result_outbox::armed() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return deadline_.has_value();
}

void result_outbox::send_locked() {
  deadline_.reset();
  if (pending_.empty())
    return;
  send_(std::move(pending_));
  pending_ = std::vector<task_result>{};
}

void result_outbox::run_timer() {
  std::unique_lock<std::mutex> lk{mtx_};
  while (!stopped_) {
    if (!deadline_) {
      cv_.wait(lk);
      continue;
    }
    auto deadline = *deadline_; // a copy: deadline_ changes meanwhile
    if (clock_type::now() < deadline) {
      // Woken early (a new deadline, a stop, or spuriously): check again.
      cv_.wait_until(lk, deadline);
      continue;
    }
    if (!pending_.empty())
      ++timer_sends_;
    send_locked();
  }
}

} // namespace dref::internal
