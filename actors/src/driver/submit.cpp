// The driver's call path: submitting tasks, placing and batching them
// (docs/architecture.md, "The call path").

#include "driver/runtime_impl.hpp"

#include "submit/call_owner.hpp"

#include <algorithm>

#include "caf/all.hpp"

#include "dref/actors/error.hpp"

namespace dref::internal {

ref_base runtime_impl::submit(task_spec spec, const void* call_site) {
  if (!running_)
    return failed_ref(runtime_down_error());
  auto id = make_id();
  spec.result = id;
  // Refs owned by another process go to the worker as such: it fetches
  // them from their owner, not through the dispatcher.
  for (auto& arg : spec.args)
    if (arg.kind == arg_kind::owned_ref && arg.ref.owner != owner_id_) {
      arg.kind = arg_kind::borrowed_ref;
      ref_descriptor d;
      refs_->describe(arg.ref, d);
      arg.from = d.owner;
    }
  auto task = std::make_shared<const task_spec>(std::move(spec));
  auto made_by = std::make_shared<lineage>();
  made_by->function = task->name;
  made_by->task = task;
  bool send_now = false;
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    refs_->core().owned().add_pending(id, std::move(made_by), call_site);
    protect_args(refs_->core(), *task, true);
    // An idle cluster gets the task at once from this thread (latency); a
    // busy one gets it in the driver's next batch (throughput): the results
    // coming back keep the driver flushing.
    send_now = dispatcher_.in_flight() == 0 && !flush_pending_;
    if (send_now)
      flush_pending_ = true; // suppresses the driver's flush message
    dispatch_result out;
    dispatcher_.submit(task, refs_->core().owned(), out);
    apply(out, nullptr);
  }
  if (send_now)
    flush();
  return ref_base{id, refs_};
}

void runtime_impl::on_submit(worker_id from, std::vector<task_spec>& specs) {
  // A worker's tasks ("Task trees"): it owns their results and holds their
  // arguments; the dispatcher places them as the driver's own. An argument
  // the driver owns is read where the dispatcher says, like the driver's.
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    if (stopped_ || workers_.count(from) == 0)
      return; // it is gone: nobody would take the results
    for (auto& spec : specs) {
      for (auto& arg : spec.args)
        if (arg.kind == arg_kind::borrowed_ref && arg.ref.owner == owner_id_) {
          arg.kind = arg_kind::owned_ref;
          arg.from = process_address{};
        }
      dispatch_result out;
      dispatcher_.submit(std::make_shared<const task_spec>(std::move(spec)),
                         refs_->core().owned(), out);
      apply(out, nullptr);
    }
  }
  flush();
}

void runtime_impl::forward_result(worker_id where, task_result r) {
  forwards_[r.id.owner][where].push_back(std::move(r));
}

void runtime_impl::send_forwards(
  std::map<uint64_t, std::map<worker_id, std::vector<task_result>>>& fw) {
  // @pre refs_->mutex() held. Results of workers' tasks go to their owner
  // with the address of the worker keeping each copy; an owner that is
  // gone gets nothing, and the copies it would have freed go now.
  for (auto& [owner, by_worker] : fw) {
    const worker_conn* to = nullptr;
    for (auto& [id, c] : workers_)
      if (c.address.process == owner)
        to = &c;
    for (auto& [w, rs] : by_worker) {
      if (to == nullptr) {
        for (auto& r : rs)
          if (w != owner_location)
            refs_->core().free_copy(w, r.id,
                                    r.status == task_result::in_node_store);
        continue;
      }
      process_address at;
      if (auto i = workers_.find(w); i != workers_.end())
        at = i->second.address;
      caf::anon_send(to->control, done_atom::value, w, at, std::move(rs));
    }
  }
  fw.clear();
}

ref_base runtime_impl::failed_ref(caf::error err) {
  auto id = make_id();
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    auto& owned = refs_->core().owned();
    owned.add_pending(id, nullptr);
    owned.set_failed(id, std::move(err));
  }
  return ref_base{id, refs_};
}

ref_base runtime_impl::put_blob(blob value, const void* call_site,
                                std::vector<ref_base>&& refs) {
  if (!running_)
    return failed_ref(runtime_down_error());
  for (auto& r : refs)
    if (r.context() != refs_.get())
      return failed_ref(make_error(actors_errc::invalid_argument,
                                   "a value holds a ref owned by another "
                                   "runtime"));
  auto id = make_id();
  // Above the inline limit the value is sealed once in the node store (a
  // full store keeps it here instead): tasks read it there in place.
  bool in_node = false;
  auto size = value.size();
  if (size > cfg_.inline_limit)
    if (auto store = node_.store())
      in_node = static_cast<bool>(store->put(id, value.data(), size));
  // Nested refs: the object holds one local ref per ref inside it, taken
  // over from the copies collected while serializing.
  std::vector<object_id> inner;
  inner.reserve(refs.size());
  for (auto& r : refs)
    inner.push_back(r.release());
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    auto& core = refs_->core();
    if (in_node)
      core.owned().add_ready_at(id, size, node_location, call_site);
    else
      core.owned().add_ready(id,
                             std::make_shared<const blob>(std::move(value)),
                             call_site);
    core.adopt_in_owned(id, std::move(inner));
  }
  return ref_base{id, refs_};
}

void runtime_impl::destroy_actor(uint64_t actor, const std::string& cls) {
  if (stopped_)
    return;
  auto task = std::make_shared<task_spec>();
  task->kind = static_cast<uint8_t>(task_kind::actor_destroy);
  task->name = cls;
  task->actor = actor;
  std::lock_guard<std::mutex> guard{refs_->mutex()};
  dispatch_result out;
  dispatcher_.submit(std::move(task), refs_->core().owned(), out);
  apply(out, nullptr);
}

void runtime_impl::apply(dispatch_result& res,
                         std::vector<object_id>* changed) {
  auto& core = refs_->core();
  for (auto& [id, err] : res.failures) {
    if (id.owner != owner_id_) {
      // A worker's task ("Task trees"): its owner learns of the failure.
      task_result r;
      r.id = id;
      r.status = task_result::failed;
      r.error = std::move(err);
      forward_result(owner_location, std::move(r));
      continue;
    }
    core.owned().set_failed(id, std::move(err));
    if (changed != nullptr)
      changed->push_back(id);
  }
  for (auto& spec : res.finished)
    if (spec->result.owner == owner_id_) // a worker's task: its owner's
      protect_args(core, *spec, false);
  // A ref argument whose value the driver holds travels inline, one in the
  // node store or at a worker is read there: either way the refs inside
  // that value travel along, and the worker borrows them before the task
  // runs (a read from the node store would otherwise adopt them only
  // later, and a ref the task keeps could be freed meanwhile).
  for (auto& [w, t] : res.sends)
    for (auto& arg : t.args)
      if (((arg.kind == arg_kind::value && arg.ref.valid())
           || arg.kind == arg_kind::owned_ref)
          && arg.contained.empty())
        arg.contained = core.owned_contained(arg.ref);
  if (!res.sends.empty()) {
    if (outbox_.empty())
      outbox_ = std::move(res.sends);
    else
      std::move(res.sends.begin(), res.sends.end(),
                std::back_inserter(outbox_));
    schedule_flush();
  }
}

void runtime_impl::settle(dispatch_result& res,
                          std::vector<object_id>& changed) {
  // Failures may unblock (or fail) held tasks, which may fail more: repeat
  // until a retry decides nothing new.
  apply(res, &changed);
  for (;;) {
    dispatch_result more;
    dispatcher_.retry_held(refs_->core().owned(), more);
    auto progress = !more.failures.empty();
    apply(more, &changed);
    if (!progress)
      return;
  }
}

void runtime_impl::check_capacity(std::vector<object_id>& changed) {
  if (dispatcher_.workers() > 0 || !starting_.empty())
    return;
  auto err = make_error(actors_errc::worker_died,
                        "no worker left: every worker died and none could "
                        "be restarted");
  dispatcher_.set_unavailable(err);
  dispatch_result out;
  dispatcher_.fail_held(err, out);
  settle(out, changed);
}

void runtime_impl::schedule_flush() {
  if (flush_pending_ || stopped_ || !driver_)
    return;
  flush_pending_ = true;
  caf::anon_send(driver_, flush_atom::value, false);
}

void runtime_impl::flush() {
  constexpr size_t max_batch = 1024;
  std::lock_guard<std::mutex> flush_guard{flush_mtx_};
  std::vector<std::pair<worker_id, task_spec>> tasks;
  // Frees of copies ride on the task batches of their worker (the ref
  // layer sends the others within its send delay).
  std::map<worker_id, std::vector<object_id>> frees;
  std::map<worker_id, executor_actor> executors;
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    flush_pending_ = false;
    if (!forwards_.empty())
      send_forwards(forwards_);
    if (outbox_.empty())
      return;
    tasks.swap(outbox_);
    for (auto& [w, t] : tasks) {
      if (executors.count(w) > 0)
        continue;
      auto i = workers_.find(w);
      if (i == workers_.end())
        continue; // its tasks were failed by the dispatcher already
      executors.emplace(w, i->second.executor);
      refs_->core().take_frees(w, frees[w]);
    }
  }
  if (stopped_)
    return;
  static const std::vector<object_id> no_frees;
  std::map<worker_id, std::vector<task_spec>> batches;
  for (auto& [w, t] : tasks) {
    auto e = executors.find(w);
    if (e == executors.end())
      continue;
    auto& batch = batches[w];
    batch.push_back(std::move(t));
    if (batch.size() >= max_batch) {
      caf::anon_send(e->second, submit_atom::value, std::move(batch),
                     no_frees);
      batch = std::vector<task_spec>{};
    }
  }
  for (auto& [w, batch] : batches)
    if (!batch.empty() || !frees[w].empty())
      caf::anon_send(executors[w], submit_atom::value, std::move(batch),
                     std::move(frees[w]));
}

} // namespace dref::internal
