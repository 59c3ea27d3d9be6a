// The driver's view of the whole cluster: `rt.stats()`, `rt.memory()` and
// the worker list. Every worker is asked at once, each request watched, so
// a worker that died just now is listed as dead instead of failing the
// call or waiting out the timeout.

#include "driver/runtime_impl.hpp"

#include "caf/all.hpp"

#include "core/caf_errors.hpp"
#include "core/watched_fan_out.hpp"

#include "dref/actors/error.hpp"

namespace dref::internal {

namespace {

std::string ms_text(caf::timespan t) {
  return std::to_string(
           std::chrono::duration_cast<std::chrono::milliseconds>(t).count())
         + " ms";
}

// Why worker `c` gave no `request` listing (it did not die): a timeout or
// its error, in dref's categories.
caf::error worker_error(const worker_conn& c, const char* request,
                        caf::timespan timeout, const caf::error& err) {
  auto who = "worker " + std::to_string(c.id) + " (pid "
             + std::to_string(c.pid) + ")";
  if (err == caf::sec::request_timeout)
    return make_error(actors_errc::timeout,
                      who + " did not answer the " + request
                        + " request within " + ms_text(timeout));
  return dref_error_of(err, who + " answering the " + request + " request",
                       make_error(actors_errc::worker_died));
}

// Asks every worker of `conns` at once (through the handle `pick` gives)
// and collects one `R` per worker: its answer, or `dead(c)` for a worker
// that went down before it answered.
template <class R, class Pick, class Dead, class... Ts>
caf::expected<std::vector<R>>
ask_all(caf::actor_system& sys, const std::vector<worker_conn>& conns,
        caf::timespan timeout, const char* what, Pick pick, Dead dead,
        Ts... xs) {
  std::vector<caf::actor> handles;
  for (auto& c : conns)
    handles.push_back(pick(c));
  auto answers = watched_fan_out<R>(sys, handles, timeout, xs...);
  std::vector<R> result;
  for (size_t i = 0; i < conns.size(); ++i) {
    auto& a = answers[i];
    if (a.reply)
      result.push_back(std::move(*a.reply));
    else if (a.down)
      result.push_back(dead(conns[i]));
    else
      return worker_error(conns[i], what, timeout, a.error);
  }
  return result;
}

} // namespace

std::vector<worker_info> runtime_impl::workers() const {
  std::lock_guard<std::mutex> guard{refs_->mutex()};
  std::vector<worker_info> result;
  for (auto& [id, c] : workers_)
    result.push_back(worker_info{c.id, c.pid, c.address.port, c.echo});
  return result;
}

std::vector<uint16_t> runtime_impl::worker_ports() const {
  std::lock_guard<std::mutex> guard{refs_->mutex()};
  std::vector<uint16_t> result;
  for (auto& [id, c] : workers_)
    result.push_back(c.address.port);
  return result;
}

caf::expected<runtime_stats> runtime_impl::stats(caf::timespan timeout) {
  if (!running_)
    return runtime_down_error();
  runtime_stats result;
  // Not under the lock: the checkpointer's lock is held during synced
  // writes.
  result.kept_values = ckpt_->kept_count();
  std::vector<worker_conn> conns;
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    auto& core = refs_->core();
    core.expire(std::chrono::steady_clock::now());
    result.owned_objects = core.owned().size();
    result.borrowed_objects = core.borrowed().size();
    result.transit_holds = core.transit_holds();
    result.lingering_holds = core.lingering_holds();
    result.pending_registrations = core.registrations_pending();
    result.pending_releases = core.releases_pending();
    result.in_flight_tasks = dispatcher_.in_flight();
    result.held_tasks = dispatcher_.held();
    result.actors = dispatcher_.actors();
    result.checkpoint_writes = ckpt_->writes();
    for (auto& [id, c] : workers_)
      conns.push_back(c);
  }
  refs_->settle();
  if (auto store = node_.store()) {
    auto ns = store->stats();
    result.node_objects = ns.objects;
    result.node_bytes = ns.memory_bytes;
    result.node_on_disk = ns.on_disk;
  }
  auto ws = ask_all<worker_stats>(
    *sys_, conns, timeout, "stats",
    [](const worker_conn& c) { return caf::actor_cast<caf::actor>(c.control); },
    [](const worker_conn& c) {
      worker_stats dead;
      dead.id = c.id;
      dead.pid = c.pid;
      dead.alive = false;
      return dead;
    },
    stats_atom::value);
  if (!ws)
    return std::move(ws.error());
  result.workers = std::move(*ws);
  return result;
}

caf::expected<memory_report> runtime_impl::memory(caf::timespan timeout) {
  if (!running_)
    return runtime_down_error();
  memory_report report;
  report.processes.push_back(refs_->memory(0));
  std::vector<worker_conn> conns;
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    for (auto& [id, c] : workers_)
      conns.push_back(c);
  }
  auto pms = ask_all<process_memory>(
    *sys_, conns, timeout, "memory",
    [](const worker_conn& c) { return caf::actor_cast<caf::actor>(c.refs); },
    [](const worker_conn& c) {
      process_memory dead;
      dead.role = "worker";
      dead.pid = c.pid;
      dead.id = c.id;
      dead.alive = false;
      return dead;
    },
    memory_atom::value);
  if (!pms)
    return std::move(pms.error());
  for (auto& pm : *pms)
    report.processes.push_back(std::move(pm));
  return report;
}

} // namespace dref::internal
