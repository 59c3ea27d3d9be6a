#include "worker/worker_calls.hpp"

#include "caf/all.hpp"

#include "submit/call_owner.hpp"
#include "worker/worker_context.hpp"

#include "dref/actors/error.hpp"

namespace dref::internal {

worker_calls::worker_calls(worker_context& ctx, driver_actor scheduler)
  : ctx_(ctx), scheduler_(std::move(scheduler)) {
}

ref_base worker_calls::submit(task_spec spec, const void* call_site) {
  auto& refs = ctx_.refs();
  auto id = ctx_.new_object_id();
  spec.result = id;
  // Every ref argument names its owner: the scheduler reads its own objects
  // where it knows they are, the others are read from their owner (this
  // worker's own answer when they are ready).
  for (auto& arg : spec.args)
    if (arg.kind == arg_kind::owned_ref) {
      ref_descriptor d;
      refs.describe(arg.ref, d);
      arg.kind = arg_kind::borrowed_ref;
      arg.from = d.owner.valid() ? d.owner : refs.self();
    }
  auto task = std::make_shared<const task_spec>(std::move(spec));
  auto made_by = std::make_shared<lineage>();
  made_by->function = task->name;
  made_by->task = task;
  bool idle = false;
  {
    std::lock_guard<std::mutex> guard{refs.mutex()};
    refs.core().owned().add_pending(id, std::move(made_by), call_site);
    protect_args(refs.core(), *task, true);
    idle = in_flight_.empty();
    in_flight_.emplace(id, task);
  }
  bool send_now = false;
  bool arm = false;
  {
    std::lock_guard<std::mutex> guard{batch_mtx_};
    batch_.push_back(*task);
    send_now = idle || batch_.size() >= max_batch;
    if (!send_now && !armed_)
      arm = armed_ = true;
  }
  if (send_now)
    flush();
  else if (arm && timer_)
    caf::delayed_anon_send(timer_, max_delay, flush_atom::value);
  return ref_base{id, ctx_.refs_ptr()};
}

void worker_calls::flush() {
  std::vector<task_spec> batch;
  {
    std::lock_guard<std::mutex> guard{batch_mtx_};
    if (batch_.empty())
      return;
    batch.swap(batch_);
    armed_ = false;
  }
  caf::anon_send(scheduler_, submit_atom::value, ctx_.id(), std::move(batch));
}

void worker_calls::set_timer(caf::actor control) {
  timer_ = std::move(control);
}

ref_base worker_calls::failed(caf::error err) {
  auto& refs = ctx_.refs();
  auto id = ctx_.new_object_id();
  {
    std::lock_guard<std::mutex> guard{refs.mutex()};
    auto& owned = refs.core().owned();
    owned.add_pending(id, nullptr);
    owned.set_failed(id, std::move(err));
  }
  return ref_base{id, ctx_.refs_ptr()};
}

void worker_calls::on_results(worker_id w, const process_address& at,
                              std::vector<task_result>& results) {
  auto& refs = ctx_.refs();
  // Reads and frees of the copies at `w` go to its ref server: connected
  // before the objects list it (bounded; this actor may block).
  if (w != owner_location && w != ctx_.id() && at.valid()
      && !refs.peers().find(at.process))
    refs.peers().connect(at);
  std::vector<object_id> changed;
  changed.reserve(results.size());
  {
    std::lock_guard<std::mutex> guard{refs.mutex()};
    if (w != owner_location && at.valid())
      workers_[w] = at;
    auto& core = refs.core();
    for (auto& r : results) {
      auto status = r.status;
      if (!complete_owned(core, r, w) && w != owner_location)
        core.free_copy(w, r.id, status == task_result::in_node_store);
      if (auto i = in_flight_.find(r.id); i != in_flight_.end()) {
        protect_args(core, *i->second, false);
        in_flight_.erase(i);
      }
      changed.push_back(r.id);
    }
  }
  refs.settle();
  refs.ready(std::move(changed));
  flush(); // results coming back keep the batches going
}

caf::actor worker_calls::location(worker_id w) {
  if (w == ctx_.id())
    return ctx_.refs().server(); // a copy this worker keeps itself
  auto i = workers_.find(w);
  return i != workers_.end() ? ctx_.refs().peers().find(i->second.process)
                             : caf::actor{};
}

size_t worker_calls::in_flight() {
  std::lock_guard<std::mutex> guard{ctx_.refs().mutex()};
  return in_flight_.size();
}

} // namespace dref::internal
