#include "core/blocking.hpp"

namespace dref::internal {

namespace {

thread_local blocking_observer* observer = nullptr;
thread_local unsigned depth = 0;

} // namespace

blocking_observer_scope::blocking_observer_scope(
  blocking_observer* obs) noexcept
  : prev_(observer) {
  observer = obs;
}

blocking_observer_scope::~blocking_observer_scope() {
  observer = prev_;
}

blocking_scope::blocking_scope() noexcept : obs_(nullptr) {
  if (depth++ == 0 && observer != nullptr) {
    obs_ = observer;
    obs_->on_block();
  }
}

blocking_scope::~blocking_scope() {
  --depth;
  if (obs_ != nullptr)
    obs_->on_unblock();
}

bool on_task_thread() noexcept {
  return observer != nullptr;
}

} // namespace dref::internal
