// The driver's life: construction, its actor, start and stop.

#include "driver/runtime_impl.hpp"

#include "core/blocking.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <thread>

#include <sys/stat.h>
#include <unistd.h>

#include "caf/all.hpp"
#include "caf/io/middleman.hpp"

#include "core/caf_errors.hpp"
#include "wire/worker_settings.hpp"

#include "dref/actors/error.hpp"

namespace dref::internal {

namespace {

using clock_type = std::chrono::steady_clock;

std::string ms_text(caf::timespan t) {
  return std::to_string(
           std::chrono::duration_cast<std::chrono::milliseconds>(t).count())
         + " ms";
}

// Announces this driver to `dref memory`: <run dir>/<pid>.port holds the
// driver actor's port. Best effort: a driver that cannot write it still
// runs.
std::string write_run_file(uint16_t port) {
  auto dir = run_directory();
  ::mkdir(dir.c_str(), 0700);
  auto path = dir + "/" + std::to_string(::getpid()) + ".port";
  std::ofstream out{path, std::ios::trunc};
  out << port << "\n";
  return out ? path : std::string{};
}

constexpr const char* loopback = "127.0.0.1";

} // namespace

runtime_impl::runtime_impl(config cfg)
  : cfg_(std::move(cfg)),
    owner_id_(new_owner_id()),
    ckpt_(std::make_unique<checkpointer>(
      cfg_.state_dir.empty() ? run_directory() + "/state" : cfg_.state_dir,
      cfg_.checkpoint_faults)) {
  // The caller id of this driver's calls on durable actors.
  char id[32];
  std::snprintf(id, sizeof(id), "driver-%016llx",
                static_cast<unsigned long long>(owner_id_));
  std::string caller = cfg_.test_caller_id.empty() ? id
                                                   : cfg_.test_caller_id;
  ckpt_->set_caller(caller);
  dispatcher_.set_caller(std::move(caller), cfg_.test_resend_durable_calls);
}

runtime_impl::~runtime_impl() {
  stop();
}

driver_actor::behavior_type runtime_impl::driver_fn(driver_actor::pointer self,
                                                    runtime_impl* rt) {
  rt->self_ = self;
  self->set_down_handler([rt](caf::down_msg& dm) {
    rt->on_worker_down(dm.source);
  });
  self->attach_functor([rt] { rt->self_ = nullptr; });
  return {
    [self, rt](register_atom, const worker_registration& reg)
      -> caf::result<process_address, ref_server_actor> {
      if (auto err = rt->on_register(reg))
        return err;
      self->monitor(reg.executor);
      return {rt->refs_->self(),
              caf::actor_cast<ref_server_actor>(rt->refs_->server())};
    },
    [rt](done_atom, worker_id w, std::vector<task_result>& results) {
      rt->on_results(w, results);
    },
    [rt](submit_atom, worker_id w, std::vector<task_spec>& specs) {
      rt->on_submit(w, specs);
    },
    [rt](flush_atom, bool) { rt->flush(); },
    [rt](check_atom, int32_t pid) { rt->on_start_deadline(pid); },
    [rt](ckpt_atom) { rt->on_checkpoint_timer(); },
    [rt](memory_atom) {
      return caf::make_result(rt->refs_->memory(0), rt->worker_ports());
    },
    [rt](kept_atom, const object_id& id) -> caf::result<value_msg> {
      // A worker's get failed (owner gone): a durable checkpoint may keep
      // the value. One RocksDB read on this actor; only on that path.
      auto v = rt->kept_copy(id);
      if (!v)
        return std::move(v.error());
      return std::move(*v);
    },
    [rt](kept_atom, const std::vector<object_id>& ids) {
      // Which of `ids` a durable checkpoint keeps (in memory: no read).
      return rt->kept_ids(ids);
    },
  };
}

void runtime_impl::start() {
  // From here on, SIGINT or SIGTERM removes what this runtime made.
  exit_cleanup_ = std::make_unique<exit_cleanup>();
  caf_cfg_ = std::make_unique<caf::actor_system_config>();
  configure_system(*caf_cfg_, cfg_);
  // Blocking reads on the scheduler's own threads are refused.
  caf_cfg_->add_thread_hook<scheduler_thread_hook>();
  sys_ = std::make_unique<caf::actor_system>(*caf_cfg_);
  // The driver's refs: every call's result, `rt.put`, and what it borrows.
  // It never waits for registrations (its protection-ending messages wait
  // behind the release barrier), so its ref server never blocks.
  process_refs::settings rs;
  rs.core.self = process_address{owner_id_, loopback, 0};
  rs.core.transit_timeout = cfg_.transit_timeout;
  rs.core.death_grace = cfg_.death_grace;
  rs.fetch_timeout = cfg_.fetch_timeout;
  rs.role = "driver";
  refs_ = std::make_shared<process_refs>(*sys_, rs);
  auto fail = [this](caf::error err) {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    status_ = std::move(err);
  };
  refs_->start();
  refs_->set_locations([this](worker_id w) -> caf::actor {
    auto i = workers_.find(w); // under refs_->mutex()
    return i != workers_.end() ? caf::actor_cast<caf::actor>(i->second.refs)
                               : caf::actor{};
  });
  refs_->set_kept_copies([this](const object_id& id) { return kept_copy(id); },
                         [this](const std::vector<object_id>& ids) {
                           return kept_ids(ids);
                         });
  auto refs_port = sys_->middleman().publish(
    caf::actor_cast<ref_server_actor>(refs_->server()), 0, loopback, true);
  driver_ = sys_->spawn(driver_fn, this);
  auto port = refs_port ? sys_->middleman().publish(driver_, 0, loopback, true)
                        : caf::expected<uint16_t>{refs_port.error()};
  if (!port) {
    fail(make_error(actors_errc::runtime_down,
                    "cannot listen on 127.0.0.1: "
                      + caf_reason_text(port.error())));
    return;
  }
  refs_->set_port(*refs_port);
  driver_port_ = *port;
  register_system_context(sys_.get(), refs_);
  run_file_ = write_run_file(driver_port_);
  update_exit_files();
  auto opened = node_.open(cfg_, loopback);
  update_exit_files();
  if (opened) {
    fail(make_error(actors_errc::runtime_down,
                    "cannot open the node store: " + sys_->render(opened)));
    return;
  }
  refs_->set_node(node_access::of(node_.store()));
  auto deadline = clock_type::now()
                  + std::chrono::duration_cast<clock_type::duration>(
                    cfg_.start_timeout);
  auto n = cfg_.num_workers;
  if (n == 0)
    n = std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < n; ++i) {
    auto pid = launch_worker(next_worker_++);
    if (!pid) {
      fail(pid.error());
      return;
    }
  }
  std::unique_lock<std::mutex> lk{refs_->mutex()};
  while (workers_.size() < n) {
    if (clock_type::now() >= deadline) {
      status_ = make_error(actors_errc::runtime_down,
                           "workers did not register within "
                             + ms_text(cfg_.start_timeout));
      return;
    }
    refs_->changed().wait_until(lk, std::min(deadline,
                                             clock_type::now()
                                               + std::chrono::milliseconds{
                                                 20}));
    if (workers_.size() >= n)
      break;
    lk.unlock();
    for (auto pid : pool_.pids()) {
      if (pool_.reap(pid)) {
        lk.lock();
        status_ = make_error(actors_errc::runtime_down,
                             "worker process " + std::to_string(pid)
                               + " exited while starting");
        return;
      }
    }
    lk.lock();
  }
  running_ = true;
}

caf::expected<int> runtime_impl::launch_worker(worker_id id) {
  auto ws = worker_settings::of(cfg_);
  ws.host = loopback;
  ws.driver_port = driver_port_;
  ws.store_port = node_.port();
  ws.id = id;
  return pool_.launch(encode(ws));
}

void runtime_impl::stop() {
  if (stopped_.exchange(true))
    return;
  running_ = false;
  // Wait for a replacement worker being started right now; none starts after.
  { std::lock_guard<std::mutex> guard{launch_mtx_}; }
  std::vector<worker_conn> conns;
  if (refs_) {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    if (!status_)
      status_ = make_error(actors_errc::runtime_down, "the runtime stopped");
    for (auto& [id, c] : workers_)
      conns.push_back(c);
  }
  if (refs_)
    refs_->changed().notify_all();
  // Registered workers end when their executor does; the others (still
  // starting) are killed at once.
  std::set<int> registered;
  for (auto& c : conns) {
    registered.insert(c.pid);
    caf::anon_send_exit(c.executor, caf::exit_reason::user_shutdown);
  }
  conns.clear();
  for (auto pid : pool_.pids())
    if (registered.count(pid) == 0)
      pool_.kill_and_reap(pid);
  pool_.stop_all(std::chrono::seconds{3});
  if (sys_) {
    sys_->middleman().unpublish(driver_, driver_port_);
    caf::anon_send_exit(driver_, caf::exit_reason::user_shutdown);
  }
  if (refs_) {
    {
      std::lock_guard<std::mutex> guard{refs_->mutex()};
      workers_.clear();
      by_addr_.clear();
    }
    // Transit and lingering holds end with the runtime; the node store
    // goes below.
    refs_->stop();
    refs_->set_node(nullptr);
  }
  driver_ = nullptr;
  if (sys_)
    unregister_system_context(sys_.get());
  sys_.reset();
  caf_cfg_.reset();
  // Nothing runs any more: write what weaker policies left pending.
  ckpt_->write_all();
  // Every worker is gone: close the node store (its files go with it).
  node_.close();
  if (!run_file_.empty())
    ::unlink(run_file_.c_str());
  // Every file is gone: a signal from now on needs no cleanup here.
  exit_cleanup_.reset();
}

void runtime_impl::update_exit_files() {
  exit_files f;
  f.run_file = run_file_;
  f.spill_dir = node_.spill_dir();
  f.own_spill_dir = node_.owns_spill_dir();
  if (auto store = node_.store()) {
    f.shm_dir = store->config().shm_dir;
    f.store_prefix = store->file_prefix();
  }
  exit_cleanup_->set(std::move(f));
}

caf::error runtime_impl::status() const {
  std::lock_guard<std::mutex> guard{refs_->mutex()};
  return status_;
}

caf::error runtime_impl::runtime_down_error() const {
  std::lock_guard<std::mutex> guard{refs_->mutex()};
  return status_ ? status_ : make_error(actors_errc::runtime_down);
}

std::string runtime_impl::node_store_prefix() const {
  return node_.prefix();
}

} // namespace dref::internal
