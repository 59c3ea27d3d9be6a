#include "core/blocking.hpp"

#include <cstring>
#include <string>

#include <pthread.h>

#include "dref/actors/error.hpp"

namespace dref::internal {

namespace {

thread_local blocking_observer* observer = nullptr;
thread_local unsigned depth = 0;
thread_local const caf::actor_system* scheduler = nullptr;

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

void scheduler_thread_hook::init(caf::actor_system& sys) {
  sys_ = &sys;
}

void scheduler_thread_hook::thread_started() {
  char name[16] = {0};
  if (pthread_getname_np(pthread_self(), name, sizeof(name)) == 0
      && std::strcmp(name, "caf.multiplexer") == 0)
    scheduler = sys_;
}

void scheduler_thread_hook::thread_terminates() {
  scheduler = nullptr;
}

const caf::actor_system* scheduler_of_this_thread() noexcept {
  return scheduler;
}

caf::error check_may_block(const caf::actor_system& sys, const char* what) {
  if (scheduler != &sys)
    return caf::none;
  return make_error(actors_errc::would_block,
                    std::string{what}
                      + " would block a thread of the runtime's actor "
                        "scheduler (inside an actor's handler), starving "
                        "the actors the value may depend on; use dref::then "
                        "there, or read from a task or another thread");
}

} // namespace dref::internal
