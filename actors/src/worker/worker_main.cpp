// The worker process: started by the driver's `worker_pool`, entered
// through `run_worker_if_requested`. It runs a ref server (like every
// process), an executor for its tasks, a control actor answering its node
// (stats) and an echo actor for benchmarks; and it gives task code its
// `dref::put` / `dref::get`.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include <unistd.h>

#include "caf/all.hpp"
#include "caf/io/middleman.hpp"

#include "core/blocking.hpp"
#include "core/process_refs.hpp"
#include "core/watched_request.hpp"
#include "wire/interfaces.hpp"
#include "wire/worker_settings.hpp"
#include "worker/executor.hpp"
#include "worker/in_place_buffer.hpp"
#include "worker/result_sink.hpp"
#include "worker/worker_calls.hpp"
#include "worker/worker_context.hpp"

#include "dref/actors/error.hpp"
#include "dref/actors/task.hpp"
#include "worker/worker_api.hpp"

namespace dref {

namespace internal {

namespace {

// The worker, for task code (`dref::put`, `dref::get`).
std::mutex current_mtx;
std::shared_ptr<worker_context> current; // guarded by current_mtx

// Detached: taking results may connect to the worker keeping their copies.
worker_control_actor::behavior_type
control_fn(worker_control_actor::pointer, std::shared_ptr<worker_context> ctx,
           std::shared_ptr<std::atomic<uint64_t>> actor_count) {
  return {
    [ctx](done_atom, worker_id w, const process_address& at,
          std::vector<task_result>& results) {
      if (auto calls = ctx->calls())
        calls->on_results(w, at, results);
    },
    [ctx](flush_atom) {
      if (auto calls = ctx->calls())
        calls->flush();
    },
    [ctx, actor_count](stats_atom) {
      auto [objects, bytes] = ctx->refs().values();
      worker_stats ws;
      ws.id = ctx->id();
      ws.pid = static_cast<int>(getpid());
      ws.objects = objects;
      ws.bytes = bytes;
      ws.actors = actor_count->load();
      ws.refs = ctx->refs().refs();
      return ws;
    },
  };
}

caf::behavior echo_fn(caf::event_based_actor*) {
  return {
    [](echo_atom, int32_t x) { return x; },
  };
}

// Ends this process when the driver process is gone (see worker_pool).
void watch_lifeline() {
  std::thread{[] {
    char c;
    for (;;) {
      auto n = read(lifeline_fd, &c, 1);
      if (n == 0 || (n < 0 && errno != EINTR))
        _exit(0);
    }
  }}.detach();
}

// The worker's refs: waits for registrations (its results end protections
// the release barrier does not cover); kept copies come from the driver.
std::shared_ptr<process_refs> make_refs(caf::actor_system& sys,
                                        const worker_settings& ws,
                                        const config& cfg) {
  process_refs::settings rs;
  rs.core.self = process_address{new_owner_id(), ws.host, 0};
  rs.core.transit_timeout = cfg.transit_timeout;
  rs.core.death_grace = cfg.death_grace;
  rs.wait_for_registrations = true;
  rs.fetch_timeout = cfg.fetch_timeout;
  rs.role = "worker";
  rs.id = ws.id;
  auto refs = std::make_shared<process_refs>(sys, rs);
  refs->start();
  return refs;
}

void ask_driver_for_kept_copies(process_refs& refs, caf::actor driver,
                                caf::timespan timeout) {
  auto& sys = refs.system();
  refs.set_kept_copies(
    [&sys, driver, timeout](const object_id& id) {
      return watched_request<value_msg>(sys, driver, timeout,
                                        "reading the kept copy of "
                                          + to_string(id),
                                        kept_atom::value, id);
    },
    [&sys, driver, timeout](const std::vector<object_id>& ids) {
      auto kept = watched_request<std::vector<object_id>>(
        sys, driver, timeout, "asking for kept copies", kept_atom::value, ids);
      return kept ? std::move(*kept) : std::vector<object_id>{};
    });
}

int run_worker(const worker_settings& ws) {
  watch_lifeline();
  auto cfg = ws.to_config();
  // Tasks run on the task pool's threads; the scheduler's run the helper
  // actors that wait for a task's reads, the ref server, the executor
  // taking batches: at least three, so none waits for another.
  cfg.scheduler_threads = std::max<size_t>(cfg.scheduler_threads, 3);
  caf::actor_system_config caf_cfg;
  configure_system(caf_cfg, cfg);
  // Blocking reads on the scheduler's own threads are refused.
  caf_cfg.add_thread_hook<scheduler_thread_hook>();
  caf::actor_system sys{caf_cfg};
  auto refs = make_refs(sys, ws, cfg);
  auto echo = sys.spawn(echo_fn);
  auto bail = [&](const std::string& why) {
    std::cerr << "dref worker " << ws.id << ": " << why << std::endl;
    refs->stop();
    caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
    return 3;
  };
  auto port = sys.middleman().publish(
    caf::actor_cast<ref_server_actor>(refs->server()), 0, ws.host.c_str(),
    true);
  if (!port)
    return bail("cannot listen: " + sys.render(port.error()));
  refs->set_port(*port);
  auto driver = sys.middleman().remote_actor<driver_actor>(ws.host,
                                                           ws.driver_port);
  if (!driver)
    return bail("cannot reach the driver: " + sys.render(driver.error()));
  if (ws.store_port != 0) {
    // One connection to the node store per worker process (thread-safe).
    auto node = node_client::connect(store_endpoint{ws.host, ws.store_port},
                                     std::chrono::seconds{10});
    if (!node)
      return bail("cannot reach the node store: " + sys.render(node.error()));
    refs->set_node(node_access::of(std::move(*node)));
  }
  ask_driver_for_kept_copies(*refs, caf::actor_cast<caf::actor>(*driver),
                             cfg.fetch_timeout);
  auto ctx = std::make_shared<worker_context>(refs, ws.id, cfg);
  ctx->set_calls(std::make_unique<worker_calls>(*ctx, *driver));
  refs->set_locations([calls = ctx->calls()](worker_id w) {
    return calls->location(w); // under the ref mutex
  });
  set_default_read_context(refs);
  register_system_context(&sys, refs);
  {
    std::lock_guard<std::mutex> guard{current_mtx};
    current = ctx;
  }
  actor_table actors;
  auto control = sys.spawn<caf::detached>(control_fn, ctx, actors.count);
  ctx->calls()->set_timer(caf::actor_cast<caf::actor>(control));
  auto exec = sys.spawn(executor_fn, ctx, *driver, actors);
  worker_registration reg;
  reg.version = cluster_protocol_version;
  reg.id = ws.id;
  reg.pid = static_cast<int32_t>(getpid());
  reg.address = refs->self();
  reg.refs = caf::actor_cast<ref_server_actor>(refs->server());
  reg.executor = exec;
  reg.control = control;
  reg.echo = echo;
  caf::scoped_actor self{sys};
  bool ok = false;
  std::string why;
  self->request(*driver, std::chrono::seconds{30}, register_atom::value, reg)
    .receive(
      [&](const process_address& addr, const ref_server_actor& driver_refs) {
        // The driver's ref server: no connection of our own needed.
        refs->peers().add(addr.process,
                          caf::actor_cast<caf::actor>(driver_refs));
        ok = true;
      },
      [&](caf::error& err) { why = sys.render(err); });
  auto forget = [&] {
    set_default_read_context(nullptr);
    unregister_system_context(&sys);
    refs->stop();
    std::lock_guard<std::mutex> guard{current_mtx};
    current = nullptr;
  };
  auto end_actors = [&] {
    caf::anon_send_exit(control, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  };
  if (!ok) {
    forget();
    caf::anon_send_exit(exec, caf::exit_reason::user_shutdown);
    end_actors();
    std::cerr << "dref worker " << ws.id << ": registration refused: " << why
              << std::endl;
    return 3;
  }
  // Serve until the executor ends (driver stopped us, or the driver died).
  self->monitor(exec);
  self->receive([](caf::down_msg&) {});
  forget();
  end_actors();
  return 0;
}

} // namespace

// -- task code's API ----------------------------------------------------------

std::shared_ptr<worker_context> current_worker() {
  std::lock_guard<std::mutex> guard{current_mtx};
  return current;
}

caf::expected<ref_base> put_in_worker(const void* value, put_writer write) {
  auto w = current_worker();
  if (!w)
    return make_error(actors_errc::invalid_argument,
                      "dref::put works inside a task in a worker; use "
                      "runtime::put in the driver");
  // 1. The object's id first: a large value is written under it at once.
  auto id = w->new_object_id();
  // 2. Serialize, collecting the refs inside. With a node store, a value
  //    above the inline limit goes straight into a segment named by `id`
  //    (the sink of this put hides the sink of the task's own result);
  //    without one, or when the store refuses, into a blob.
  std::optional<node_result_sink> sink;
  if (w->has_node())
    sink.emplace(*w, id, w->inline_limit());
  blob bytes;
  std::vector<ref_base> refs;
  caf::error err;
  {
    ref_collect_scope collect{refs};
    result_sink_scope in_place{sink ? &*sink : nullptr};
    err = write(value, bytes);
  }
  if (err) {
    if (sink && sink->written())
      w->free_in_node(id);
    return err;
  }
  // 3. Owned here and ready (the node copy already sealed, or the blob).
  if (sink && sink->written())
    return w->put_sealed(id, sink->size(), std::move(refs));
  return w->put(id, std::move(bytes), std::move(refs), !sink);
}

caf::expected<buffer> get_in_worker(const ref_base& x, caf::timespan timeout,
                                 std::vector<object_id>& held) {
  auto w = current_worker();
  if (!w)
    return make_error(actors_errc::invalid_argument,
                      "dref::get works inside a task in a worker; use "
                      "runtime::get in the driver");
  if (auto err = check_may_block(w->system(), "dref::get"))
    return err;
  if (auto calls = w->calls())
    calls->flush(); // the call that makes it may still be batched here
  return w->refs().read(x, timeout, held);
}

const ref_context* refs_in_worker() {
  auto w = current_worker();
  return w ? &w->refs() : nullptr;
}

ref_base submit_in_worker(task_spec spec, const void* call_site) {
  auto w = current_worker();
  if (!w || w->calls() == nullptr)
    return ref_base{};
  return w->calls()->submit(std::move(spec), call_site);
}

ref_base failed_in_worker(caf::error err) {
  auto w = current_worker();
  if (!w || w->calls() == nullptr)
    return ref_base{};
  return w->calls()->failed(std::move(err));
}

std::vector<bool> wait_in_worker(const std::vector<const ref_base*>& xs,
                              size_t n, caf::timespan timeout) {
  auto w = current_worker();
  if (!w)
    return std::vector<bool>(xs.size(), false);
  if (check_may_block(w->system(), "dref::wait"))
    timeout = caf::timespan{0}; // a look, no wait, on the scheduler
  if (auto calls = w->calls())
    calls->flush(); // the calls that make them may still be batched here
  return w->refs().wait_ready(xs, n, timeout);
}

void unhold_in_worker(std::vector<object_id>& held) {
  if (auto w = current_worker())
    w->refs().unhold(held);
}

caf::actor_system* worker_system() {
  auto w = current_worker();
  return w ? &w->system() : nullptr;
}

} // namespace internal

caf::expected<buffer_writer> make_buffer_writer(size_t size) {
  return make_buffer_writer(size, 0);
}

caf::expected<buffer_writer> make_buffer_writer(size_t size,
                                                uint32_t elem_size) {
  if (elem_size != 0 && size % elem_size != 0)
    return make_error(store_errc::invalid_argument,
                      "a typed buffer of " + std::to_string(size)
                        + " bytes is not a whole number of elements of "
                        + std::to_string(elem_size) + " bytes");
  if (auto w = internal::current_worker())
    return internal::make_in_place_writer(*w, size, elem_size);
  return internal::make_heap_writer(size, elem_size);
}

std::optional<int> run_worker_if_requested() {
  auto text = std::getenv("DREF_WORKER");
  if (text == nullptr)
    return std::nullopt;
  auto ws = internal::decode_worker_settings(text);
  if (!ws) {
    std::cerr << "dref worker: unreadable DREF_WORKER ("
              << caf::to_string(ws.error().context()) << ")" << std::endl;
    return 2;
  }
  // Tasks may start runtimes of their own: they must not become workers.
  unsetenv("DREF_WORKER");
  return internal::run_worker(*ws);
}

} // namespace dref
