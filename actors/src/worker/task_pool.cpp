#include "worker/task_pool.hpp"

#include <thread>

namespace dref::internal {

namespace {

// The actor a task belongs to (0: a function task, never serialized).
uint64_t actor_of(const task_spec& t) {
  return static_cast<task_kind>(t.kind) == task_kind::function ? 0 : t.actor;
}

} // namespace

struct task_pool::state {
  run_fn run;
  idle_fn idle;
  size_t max_threads = 1;
  mutable std::mutex mtx;
  std::condition_variable work;     // a task may start, or stop
  std::condition_variable produced; // a task ended
  // Each task with whether it ends its batch.
  std::deque<std::pair<task_spec, bool>> queue;
  std::unordered_set<uint64_t> busy;         // actors with a task running
  std::unordered_set<object_id> producing;   // results queued or running
  size_t running = 0;  // tasks running and not waiting (rule 1)
  size_t idle_threads = 0;
  size_t threads = 0;
  bool stopped = false;

  // @pre mtx held. The first task that may start (rule 2), or end().
  std::deque<std::pair<task_spec, bool>>::iterator next() {
    auto i = queue.begin();
    for (; i != queue.end(); ++i) {
      auto a = actor_of(i->first);
      if (a == 0 || busy.count(a) == 0)
        return i;
    }
    return i;
  }

  // @pre mtx held.
  bool can_start() {
    return !stopped && running == 0 && next() != queue.end();
  }
};

task_pool::task_pool(run_fn run, idle_fn idle, size_t max_threads)
  : st_(std::make_shared<state>()) {
  st_->run = std::move(run);
  st_->idle = std::move(idle);
  st_->max_threads = max_threads == 0 ? 1 : max_threads;
}

task_pool::~task_pool() {
  stop();
}

void task_pool::push(std::vector<task_spec>&& batch) {
  std::lock_guard<std::mutex> guard{st_->mtx};
  if (st_->stopped)
    return;
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& t = batch[i];
    if (t.result.valid())
      st_->producing.insert(t.result);
    st_->queue.emplace_back(std::move(t), i + 1 == batch.size());
  }
  if (st_->can_start()) {
    maybe_grow(st_);
    st_->work.notify_one();
  }
}

void task_pool::stop() {
  std::lock_guard<std::mutex> guard{st_->mtx};
  st_->stopped = true;
  st_->queue.clear();
  st_->producing.clear();
  st_->work.notify_all();
  st_->produced.notify_all();
}

bool task_pool::await_produced(const object_id& id, caf::timespan timeout) {
  blocking_scope waiting; // our slot goes to the producer meanwhile
  std::unique_lock<std::mutex> guard{st_->mtx};
  return st_->produced.wait_for(guard, timeout, [&] {
    return st_->stopped || st_->producing.count(id) == 0;
  }) && !st_->stopped;
}

bool task_pool::producing(const object_id& id) const {
  std::lock_guard<std::mutex> guard{st_->mtx};
  return st_->producing.count(id) > 0;
}

size_t task_pool::threads() const {
  std::lock_guard<std::mutex> guard{st_->mtx};
  return st_->threads;
}

void task_pool::maybe_grow(const std::shared_ptr<state>& st) {
  if (st->idle_threads > 0 || st->threads >= st->max_threads)
    return;
  ++st->threads;
  std::thread{run_thread, st}.detach();
}

void task_pool::run_thread(std::shared_ptr<state> st) {
  // Every wait of a task on this thread (rule 1) hands its slot on; the
  // observer holds the state, not the pool, which may be gone.
  struct observer : blocking_observer {
    std::shared_ptr<state> st;
    void on_block() override {
      std::lock_guard<std::mutex> guard{st->mtx};
      --st->running;
      if (st->can_start()) {
        maybe_grow(st);
        st->work.notify_one();
      }
    }
    void on_unblock() override {
      std::lock_guard<std::mutex> guard{st->mtx};
      ++st->running;
    }
  } obs;
  obs.st = st;
  blocking_observer_scope scope{&obs};
  std::unique_lock<std::mutex> guard{st->mtx};
  for (;;) {
    ++st->idle_threads;
    st->work.wait(guard, [&] { return st->stopped || st->can_start(); });
    --st->idle_threads;
    if (st->stopped) {
      --st->threads;
      return;
    }
    auto i = st->next();
    auto t = std::move(i->first);
    bool last = i->second;
    st->queue.erase(i);
    auto actor = actor_of(t);
    if (actor != 0)
      st->busy.insert(actor);
    ++st->running;
    guard.unlock();
    st->run(t, !last);
    guard.lock();
    --st->running;
    if (actor != 0)
      st->busy.erase(actor);
    st->producing.erase(t.result);
    st->produced.notify_all();
    bool drained = st->queue.empty();
    if (st->can_start())
      st->work.notify_one(); // e.g. the actor's next task
    if ((last || drained) && st->idle) {
      guard.unlock();
      st->idle();
      guard.lock();
    }
  }
}

} // namespace dref::internal
