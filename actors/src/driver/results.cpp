// What workers tell the driver: registrations, results, and their deaths
// (docs/architecture.md, "The call path" steps 6-7, "Failures", "Rollback
// after a failed write").

#include "driver/runtime_impl.hpp"

#include "submit/call_owner.hpp"

#include "caf/all.hpp"

#include "dref/actors/error.hpp"
#include "dref/persist/error.hpp"
#include "dref/refs/error.hpp"

namespace dref::internal {

namespace {

using clock_type = std::chrono::steady_clock;

} // namespace

caf::error runtime_impl::on_register(const worker_registration& reg) {
  if (reg.version != cluster_protocol_version)
    return make_error(actors_errc::invalid_argument,
                      "worker speaks protocol version "
                        + std::to_string(reg.version) + ", driver "
                        + std::to_string(cluster_protocol_version));
  if (stopped_)
    return make_error(actors_errc::runtime_down, "the runtime is stopping");
  starting_.erase(reg.pid);
  std::vector<object_id> changed;
  refs_->peers().add(reg.address.process,
                     caf::actor_cast<caf::actor>(reg.refs));
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    refs_->core().learn(reg.address);
    worker_conn c;
    c.id = reg.id;
    c.pid = reg.pid;
    c.address = reg.address;
    c.refs = reg.refs;
    c.executor = reg.executor;
    c.control = reg.control;
    c.echo = reg.echo;
    workers_[reg.id] = c;
    by_addr_[reg.executor.address()] = reg.id;
    dispatcher_.add_worker(reg.id, reg.address);
    dispatcher_.set_starting(starting_.size());
    dispatch_result out;
    settle(out, changed);
  }
  refs_->ready(std::move(changed));
  flush();
  return caf::none;
}

std::vector<std::tuple<uint64_t, std::string, std::string>>
runtime_impl::classify_results(worker_id w,
                               std::vector<task_result>& results) {
  // Rollback step 1: drop the results of calls a rollback took back (stale:
  // they ran on a state that was dropped; their re-runs follow) and of
  // calls no longer in flight (their worker's copy goes). Neither is
  // written.
  std::vector<std::tuple<uint64_t, std::string, std::string>> durable;
  auto keep = results.begin();
  for (auto& r : results) {
    switch (dispatcher_.classify(r.id, w)) {
      case dispatcher::report::stale:
        continue;
      case dispatcher::report::unknown:
        // Its worker was declared dead, or its actor died, and the object
        // failed already. Only the kept copies must go.
        refs_->core().free_copy(w, r.id,
                                r.status == task_result::in_node_store);
        continue;
      case dispatcher::report::current:
        break;
    }
    if (!r.durable.empty())
      if (auto t = dispatcher_.in_flight_task(r.id))
        durable.emplace_back(t->actor, t->name, r.durable);
    if (&*keep != &r)
      *keep = std::move(r);
    ++keep;
  }
  results.erase(keep, results.end());
  return durable;
}

void runtime_impl::complete_results(worker_id w,
                                    std::vector<task_result>& results,
                                    const std::set<object_id>& in_node,
                                    dispatch_result& out,
                                    std::vector<object_id>& changed) {
  auto& core = refs_->core();
  for (auto& r : results) {
    dispatcher_.completed(r.id, out);
    if (r.id.owner != owner_id_) {
      // A worker's task ("Task trees"): its owner takes the result.
      forward_result(w, std::move(r));
      continue;
    }
    auto status = r.status;
    bool known = complete_owned(core, r, w);
    if (!known)
      // Not (or no longer) pending here: the worker's copy must go.
      core.free_copy(w, r.id, status == task_result::in_node_store);
    else if (status == task_result::failed && in_node.count(r.id) > 0)
      // A durable call whose checkpoint failed: its bytes in the node
      // store will never be read.
      core.free_copy(node_location, r.id, true);
    changed.push_back(r.id);
  }
}

void runtime_impl::on_results(worker_id w, std::vector<task_result>& results) {
  // Steps of "Rollback after a failed write" (docs/architecture.md).
  std::vector<std::tuple<uint64_t, std::string, std::string>> durable;
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    durable = classify_results(w, results);
  }
  // 2. One synced write for the states of the whole batch; durable calls
  //    are acknowledged only once it succeeded. If it failed, each durable
  //    result of the batch is now a failure with the write's error.
  std::map<std::string, std::string> classes;
  for (auto& [id, cls, name] : durable)
    classes.emplace(name, cls);
  std::set<object_id> in_node; // their node copy goes if they fail now
  for (auto& r : results)
    if (r.status == task_result::in_node_store)
      in_node.insert(r.id);
  auto written = ckpt_->write(results, classes);
  arm_checkpoint_timer(written.next_due);
  // 3. After a failed write, every actor of the batch goes back to its last
  //    good checkpoint (read now, outside the lock) before any later call
  //    runs. The same for an actor whose worker could not save its state
  //    (`task_result::refused`, "Refs in durable state").
  struct rollback_plan {
    uint64_t id;
    std::string name;
    caf::error why;
    caf::expected<std::shared_ptr<const task_spec>> restore;
  };
  std::vector<rollback_plan> rollbacks;
  if (!written.failed.empty()) {
    std::set<uint64_t> seen;
    for (auto& [id, cls, name] : durable)
      if (auto f = written.failed.find(name);
          f != written.failed.end() && seen.insert(id).second)
        rollbacks.push_back(rollback_plan{id, name, f->second,
                                          ckpt_->restore_task(id, cls, name)});
  }
  std::vector<object_id> changed;
  changed.reserve(results.size());
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    dispatch_result out;
    complete_results(w, results, in_node, out, changed);
    // 4. The rollback itself: the restore goes first, then the calls that
    //    were in flight (re-run on the restored state), then queued ones.
    //    No good checkpoint: the actor dies, its calls fail.
    for (auto& [id, name, why, restore] : rollbacks) {
      if (restore) {
        // A null restore (no checkpoint yet: the write of its first state
        // failed) makes the actor die with the write's error.
        dispatcher_.rollback(id, std::move(*restore), why, out);
      } else {
        auto err = make_error(
          persist_errc::io_error,
          "durable actor '" + name + "' cannot be rolled back after a "
            "failed checkpoint write (" + caf::to_string(why)
            + "): its last checkpoint cannot be read: "
            + caf::to_string(restore.error()));
        dispatcher_.rollback(id, nullptr, err, out);
      }
    }
    settle(out, changed);
  }
  refs_->settle();
  refs_->ready(std::move(changed));
  flush();
}

void runtime_impl::on_worker_down(const caf::actor_addr& who) {
  std::vector<object_id> changed;
  worker_conn conn;
  // The checkpoints of the worker's durable actors are read before taking
  // the lock (a large state takes long to read; user threads go on
  // meanwhile). Nothing else changes the dispatcher's in-flight tasks
  // meanwhile (only this driver actor does); an actor placed on the dead
  // worker meanwhile has its spawn in flight and spawns again elsewhere.
  std::map<uint64_t, std::shared_ptr<const task_spec>> restores;
  {
    std::vector<std::tuple<uint64_t, std::string, std::string>> durables;
    {
      std::lock_guard<std::mutex> guard{refs_->mutex()};
      auto i = by_addr_.find(who);
      if (i == by_addr_.end())
        return;
      durables = dispatcher_.durable_actors_on(i->second);
    }
    for (auto& [id, cls, name] : durables) {
      auto t = ckpt_->restore_task(id, cls, name);
      if (t && *t) // no usable checkpoint: the actor dies with its worker
        restores.emplace(id, std::move(*t));
    }
  }
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    auto i = by_addr_.find(who);
    if (i == by_addr_.end())
      return;
    auto w = i->second;
    by_addr_.erase(i);
    conn = workers_[w];
    workers_.erase(w);
    auto& core = refs_->core();
    auto now = clock_type::now();
    // The worker owned the objects its tasks put: they fail with it
    // (fate-sharing); its borrows end after the death grace (refs it sent
    // just before dying can still be registered); nothing more goes to it.
    core.on_process_down(conn.address.process,
                         make_error(refs_errc::owner_died,
                                    "worker " + std::to_string(w) + " (pid "
                                      + std::to_string(conn.pid)
                                      + ") owning the object died"),
                         now);
    core.drop_frees(w);
    // A replacement is coming (started below): from now on calls wait for
    // it rather than queue behind a busy survivor.
    if (cfg_.restart_workers && !stopped_)
      dispatcher_.set_starting(starting_.size() + 1);
    dispatch_result out;
    dispatcher_.remove_worker(w, out, restores);
    // The protections its tasks had (their arguments' submitted refs)
    // linger for the grace too, for the same reason.
    for (auto& spec : out.finished)
      for (auto& arg : spec->args) {
        if (spec->result.owner != owner_id_)
          break; // a worker's task: its owner protects its arguments
        if (arg.kind != arg_kind::value)
          core.linger(arg.ref, now);
        for (auto& d : arg.contained)
          core.linger(d.id, now);
      }
    auto lost = core.owned().drop_location(w);
    changed.insert(changed.end(), lost.begin(), lost.end());
    settle(out, changed);
  }
  refs_->peers().remove(conn.address.process);
  refs_->arm_timer();
  // Every other worker hears of the death (also one that never talked to
  // it): the dead worker's objects fail there and the copies kept for it
  // go ("Task trees").
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    for (auto& [id, c] : workers_)
      caf::anon_send(c.refs, gone_atom::value, conn.address.process);
  }
  // Fate-sharing in the node store: the values the worker's tasks put were
  // its own (primary copies named by its process id); nobody frees them
  // any more. After `owner_died` above, so a get here that finds one gone
  // reports the death, not a store error.
  if (auto store = node_.store())
    store->free_owned_by(conn.address.process);
  pool_.kill_and_reap(conn.pid);
  if (cfg_.restart_workers) {
    std::lock_guard<std::mutex> guard{launch_mtx_};
    if (!stopped_) {
      if (auto pid = launch_worker(next_worker_++)) {
        starting_.insert(*pid);
        self_->delayed_send(self_, cfg_.start_timeout, check_atom::value,
                            static_cast<int32_t>(*pid));
      }
    }
  }
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    // The replacements actually starting (none if the launch failed: the
    // calls held for it go to the survivors).
    dispatcher_.set_starting(starting_.size());
    dispatch_result out;
    settle(out, changed);
    check_capacity(changed);
  }
  refs_->settle();
  refs_->ready(std::move(changed));
  flush();
}

void runtime_impl::on_start_deadline(int pid) {
  if (starting_.erase(pid) == 0)
    return; // registered in time
  pool_.kill_and_reap(pid);
  std::vector<object_id> changed;
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    // No replacement is coming for it: tasks held for it go elsewhere.
    dispatcher_.set_starting(starting_.size());
    dispatch_result out;
    settle(out, changed);
    check_capacity(changed);
  }
  refs_->settle();
  refs_->ready(std::move(changed));
}

} // namespace dref::internal
