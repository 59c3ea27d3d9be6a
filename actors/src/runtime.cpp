#include "runtime_impl.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <atomic>
#include <filesystem>

#include <cxxabi.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "caf/all.hpp"
#include "caf/io/middleman.hpp"

#include "caf_errors.hpp"
#include "signal_cleanup.hpp"
#include "watched_fan_out.hpp"
#include "watched_request.hpp"

#include "dref/actors/error.hpp"
#include "dref/persist/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

namespace dref {

namespace internal {

namespace {

std::string ms_text(caf::timespan t) {
  return std::to_string(
           std::chrono::duration_cast<std::chrono::milliseconds>(t).count())
         + " ms";
}

using clock_type = std::chrono::steady_clock;

// Announces this driver to `dref memory`: <run dir>/<pid>.port holds the
// owner's port. Best effort: a driver that cannot write it still runs.
std::string write_run_file(uint16_t port) {
  auto dir = run_directory();
  ::mkdir(dir.c_str(), 0700);
  auto path = dir + "/" + std::to_string(::getpid()) + ".port";
  std::ofstream out{path, std::ios::trunc};
  out << port << "\n";
  return out ? path : std::string{};
}

std::string describe_call_site(const void* addr) {
  if (addr == nullptr)
    return {};
  Dl_info info;
  char buf[64];
  if (::dladdr(addr, &info) == 0 || info.dli_fname == nullptr) {
    std::snprintf(buf, sizeof(buf), "%p", addr);
    return buf;
  }
  std::string module = info.dli_fname;
  if (auto slash = module.rfind('/'); slash != std::string::npos)
    module = module.substr(slash + 1);
  std::snprintf(buf, sizeof(buf), "+0x%zx",
                static_cast<size_t>(static_cast<const char*>(addr)
                                    - static_cast<const char*>(info.dli_fbase)));
  auto result = module + buf;
  if (info.dli_sname != nullptr) {
    int status = 0;
    auto name = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    result += " (";
    result += status == 0 && name != nullptr ? name : info.dli_sname;
    result += ")";
    std::free(name);
  }
  return result;
}

clock_type::time_point deadline_of(caf::timespan timeout) {
  if (timeout == no_timeout)
    return clock_type::time_point::max();
  return clock_type::now()
         + std::chrono::duration_cast<clock_type::duration>(timeout);
}

// The store actors of `conns`, in order (for a fan-out).
std::vector<caf::actor> store_handles(const std::vector<worker_conn>& conns) {
  std::vector<caf::actor> result;
  for (auto& c : conns)
    result.push_back(caf::actor_cast<caf::actor>(c.store));
  return result;
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

} // namespace

// -- construction -------------------------------------------------------------

runtime_impl::runtime_impl(config cfg)
  : cfg_(std::move(cfg)),
    owner_id_(new_owner_id()),
    ckpt_(std::make_unique<checkpointer>(
      cfg_.state_dir.empty() ? run_directory() + "/state" : cfg_.state_dir,
      cfg_.checkpoint_faults)),
    table_([this](const object_id& id, object_entry&& e) {
      on_free(id, std::move(e));
    }) {
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

owner_actor::behavior_type runtime_impl::owner_fn(owner_actor::pointer self,
                                                  runtime_impl* rt) {
  rt->self_ = self;
  self->set_down_handler([rt](caf::down_msg& dm) {
    rt->on_worker_down(dm.source);
  });
  self->attach_functor([rt] {
    // Nobody will answer pending `then` requests: say so now.
    for (auto& [id, rps] : rt->waiters_)
      for (auto& [rp, node_ok] : rps)
        rp.deliver(make_error(actors_errc::runtime_down,
                              "the runtime stopped"));
    rt->waiters_.clear();
    for (auto& [token, fwd] : rt->forwarded_)
      fwd.rp.deliver(make_error(actors_errc::runtime_down,
                                "the runtime stopped"));
    rt->forwarded_.clear();
    rt->self_ = nullptr;
  });
  return {
    [self, rt](register_atom,
               const worker_registration& reg) -> caf::result<caf::ok_atom> {
      if (auto err = rt->on_register(reg))
        return err;
      self->monitor(reg.executor);
      return caf::ok_atom::value;
    },
    [rt](done_atom, worker_id w, std::vector<task_result>& results) {
      rt->on_results(w, results);
    },
    [rt](flush_atom, bool all_frees) { rt->flush(all_frees); },
    [rt](check_atom, int32_t pid) { rt->on_start_deadline(pid); },
    [rt](ckpt_atom) { rt->on_checkpoint_timer(); },
    [rt](memory_atom) {
      return caf::make_result(rt->own_memory(), rt->worker_ports());
    },
    [self, rt](get_atom, const object_id& id) {
      // A worker (another process on this node) reads the node store
      // itself; this process (`dref::then`) gets the bytes. (Read the
      // sender first: making the promise takes it from the message.)
      auto& sender = self->current_sender();
      bool node_ok = sender != nullptr && sender->node() != self->node();
      auto rp = self->make_response_promise<value_msg>();
      rt->on_get(id, rp, node_ok);
      return rp;
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
      std::vector<object_id> result;
      for (auto& id : ids)
        if (rt->ckpt_->has_kept_copy(id))
          result.push_back(id);
      return result;
    },
    [rt](borrow_atom, const std::vector<object_id>& ids, uint64_t borrower,
         const caf::actor& handle) {
      return rt->on_borrow(ids, borrower, handle);
    },
    [rt](release_atom, const std::vector<object_id>& ids, uint64_t borrower) {
      rt->on_release(ids, borrower);
    },
    [rt](release_hold_atom, const std::vector<uint64_t>& tokens) {
      rt->release_holds(tokens);
    },
    [rt](register_borrow_atom, uint64_t owner, std::vector<object_id>& ids) {
      rt->send_registration(owner, std::move(ids));
    },
  };
}

void runtime_impl::start() {
  auto fail = [this](caf::error err) {
    std::lock_guard<std::mutex> guard{mtx_};
    status_ = std::move(err);
  };
  // From here on, SIGINT or SIGTERM removes what this runtime made.
  exit_cleanup_ = std::make_unique<exit_cleanup>();
  caf_cfg_ = std::make_unique<caf::actor_system_config>();
  configure_system(*caf_cfg_, cfg_);
  sys_ = std::make_unique<caf::actor_system>(*caf_cfg_);
  owner_ = sys_->spawn(owner_fn, this);
  auto port = sys_->middleman().publish(owner_, 0, "127.0.0.1", true);
  if (!port) {
    fail(make_error(actors_errc::runtime_down,
                    "cannot listen on 127.0.0.1: "
                      + caf_reason_text(port.error())));
    return;
  }
  port_ = *port;
  register_system_context(sys_.get(), weak_from_this());
  run_file_ = write_run_file(port_);
  update_exit_files();
  auto opened = open_node_store();
  update_exit_files();
  if (opened) {
    fail(make_error(actors_errc::runtime_down,
                    "cannot open the node store: " + sys_->render(opened)));
    return;
  }
  auto deadline = deadline_of(cfg_.start_timeout);
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
  std::unique_lock<std::mutex> lk{mtx_};
  while (workers_.size() < n) {
    if (clock_type::now() >= deadline) {
      status_ = make_error(actors_errc::runtime_down,
                           "workers did not register within "
                             + ms_text(cfg_.start_timeout));
      return;
    }
    cv_.wait_until(lk, std::min(deadline, clock_type::now()
                                            + std::chrono::milliseconds{20}));
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
  auto ms = [](caf::timespan t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t).count();
  };
  std::ostringstream spec;
  spec << "127.0.0.1 " << port_ << ' ' << id << ' ' << cfg_.inline_limit << ' '
       << ms(cfg_.fetch_timeout) << ' ' << cfg_.scheduler_threads << ' '
       << ms(cfg_.heartbeat_interval) << ' ' << ms(cfg_.connection_timeout)
       << ' ' << cfg_.scheduler_policy << ' ' << cfg_.middleman_workers << ' '
       << ms(cfg_.transit_timeout) << ' '
       << (node_server_ ? node_server_->port() : 0);
  return pool_.launch(spec.str());
}

caf::error runtime_impl::open_node_store() {
  // One store per runtime: several may run in one process, one at a time
  // or side by side.
  static std::atomic<uint64_t> instances{0};
  auto n = instances++;
  store_config sc;
  sc.name = "rt-" + std::to_string(::getpid()) + "-" + std::to_string(n);
  sc.capacity = cfg_.store_capacity;
  if (cfg_.spill_dir.empty()) {
    auto dir = run_directory();
    ::mkdir(dir.c_str(), 0700);
    // Crash hygiene: spill directories of drivers that died without
    // stopping (their store files are removed by `node_store::open`).
    std::error_code ec;
    for (auto& ent : std::filesystem::directory_iterator{dir, ec}) {
      auto name = ent.path().filename().string();
      if (name.rfind("spill-", 0) != 0)
        continue;
      auto pid = std::atoi(name.c_str() + 6);
      if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH)
        std::filesystem::remove_all(ent.path(), ec);
    }
    spill_dir_ = dir + "/spill-" + std::to_string(::getpid()) + "-"
                 + std::to_string(n);
    if (::mkdir(spill_dir_.c_str(), 0700) != 0 && errno != EEXIST)
      return make_error(store_errc::io_error,
                        "cannot make the spill directory " + spill_dir_);
    own_spill_dir_ = true;
  } else {
    spill_dir_ = cfg_.spill_dir;
  }
  sc.spill_dir = spill_dir_;
  auto store = node_store::open(std::move(sc));
  if (!store)
    return std::move(store.error());
  std::shared_ptr<node_store> shared{std::move(*store)};
  auto server = transfer_server::start(*shared, "127.0.0.1", 0);
  if (!server)
    return std::move(server.error());
  node_server_ = std::move(*server);
  node_prefix_ = shared->config().shm_dir + "/" + shared->file_prefix();
  std::lock_guard<std::mutex> guard{node_mtx_};
  node_ = std::move(shared);
  return caf::none;
}

void runtime_impl::update_exit_files() {
  exit_files f;
  f.run_file = run_file_;
  f.spill_dir = spill_dir_;
  f.own_spill_dir = own_spill_dir_;
  if (auto store = node()) {
    f.shm_dir = store->config().shm_dir;
    f.store_prefix = store->file_prefix();
  }
  exit_cleanup_->set(std::move(f));
}

std::shared_ptr<node_store> runtime_impl::node() const {
  std::lock_guard<std::mutex> guard{node_mtx_};
  return node_;
}

std::string runtime_impl::node_store_prefix() const {
  std::lock_guard<std::mutex> guard{node_mtx_};
  return node_ ? node_prefix_ : std::string{};
}

void runtime_impl::free_in_node(const std::vector<object_id>& ids) {
  if (ids.empty())
    return;
  if (auto store = node())
    for (auto& id : ids)
      store->free(id); // not_found: freed already (or never sealed)
}

void runtime_impl::stop() {
  if (stopped_.exchange(true))
    return;
  running_ = false;
  // Wait for a replacement worker being started right now; none starts after.
  { std::lock_guard<std::mutex> guard{launch_mtx_}; }
  std::vector<worker_conn> conns;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!status_)
      status_ = make_error(actors_errc::runtime_down, "the runtime stopped");
    for (auto& [id, c] : workers_)
      conns.push_back(c);
  }
  cv_.notify_all();
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
    sys_->middleman().unpublish(owner_, port_);
    caf::anon_send_exit(owner_, caf::exit_reason::user_shutdown);
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    workers_.clear();
    by_addr_.clear();
    owner_ = nullptr;
  }
  transit_.clear(); // transit holds end with the runtime
  if (sys_)
    unregister_system_context(sys_.get());
  sys_.reset();
  caf_cfg_.reset();
  // Nothing runs any more: write what weaker policies left pending.
  ckpt_->write_all();
  // Every worker is gone: close the node store (its files go with it; a
  // buffer still held keeps its mapping, not the file).
  node_server_.reset();
  std::shared_ptr<node_store> store;
  {
    std::lock_guard<std::mutex> guard{node_mtx_};
    store = std::move(node_);
  }
  store.reset();
  if (own_spill_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(spill_dir_, ec);
  }
  if (!run_file_.empty())
    ::unlink(run_file_.c_str());
  // Every file is gone: a signal from now on needs no cleanup here.
  exit_cleanup_.reset();
}

caf::error runtime_impl::status() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return status_;
}

caf::error runtime_impl::runtime_down_error() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return status_ ? status_ : make_error(actors_errc::runtime_down);
}

// -- ref counting -------------------------------------------------------------

void runtime_impl::add_local_ref(const object_id& id) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  if (id.owner == owner_id_)
    table_.add_local_ref(id);
  else
    borrows_.add_local_ref(id);
}

void runtime_impl::remove_local_ref(const object_id& id) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  if (id.owner == owner_id_)
    table_.remove_local_ref(id);
  else
    drop_borrow(id);
}

void runtime_impl::describe(const object_id& id, ref_descriptor& out) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (id.owner == owner_id_) {
    out.host = "127.0.0.1";
    out.port = port_;
  } else if (auto o = borrows_.owner_of(id)) {
    out.host = o->host;
    out.port = o->port;
  }
}

void runtime_impl::adopt(const ref_descriptor& d) noexcept {
  std::map<uint64_t, std::vector<object_id>> todo;
  bool own_hold = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (d.hold != 0) {
      if (d.holder_port == port_) {
        own_hold = true; // our own message came back: let go below
      } else {
        // Sent in a plain CAF message: the sender's transit hold goes once
        // this process is registered (held back like every release).
        hold_releases_[d.holder_port].push_back(d.hold);
        ++queued_frees_;
        schedule_free_flush();
      }
    }
    if (d.id.owner == owner_id_) {
      table_.add_local_ref(d.id);
    } else if (borrows_.add(d) && !revive_borrow(d.id)) {
      // Borrowing, step 1: a new borrow (read from a value). Registering
      // it does not block this thread: until the owner answers, this
      // process sends no free and no release (see `flush`), so whatever
      // protects the object now keeps protecting it.
      for (auto& id : borrows_.start_registration({d.id}))
        todo[id.owner].push_back(id);
      count_registrations(todo);
    }
  }
  if (own_hold)
    release_holds({d.hold});
  for (auto& [owner, ids] : todo)
    if (owner_)
      caf::anon_send(owner_, register_borrow_atom::value, owner, ids);
}

bool runtime_impl::revive_borrow(const object_id& id) {
  // The release of an earlier borrow of `id` may still wait in the queue:
  // the owner still counts this process, so take it back instead of
  // registering again (a late release would undo the new registration).
  auto i = releases_.find(id.owner);
  if (i == releases_.end())
    return false;
  auto& ids = i->second;
  auto j = std::find(ids.begin(), ids.end(), id);
  if (j == ids.end())
    return false;
  ids.erase(j);
  --queued_frees_;
  if (ids.empty())
    releases_.erase(i);
  borrows_.start_registration({id});
  borrows_.registered(id);
  return true;
}

void runtime_impl::hold_for_transit(const ref_base& x, ref_descriptor& out) {
  transit_.expire();
  out.hold = transit_.hold(
    x, clock_type::now()
         + std::chrono::duration_cast<clock_type::duration>(
           cfg_.transit_timeout));
  out.holder_host = "127.0.0.1";
  out.holder_port = port_;
  if (owner_)
    caf::delayed_anon_send(owner_, cfg_.transit_timeout
                                     + std::chrono::milliseconds{100},
                           flush_atom::value, true);
}

void runtime_impl::release_holds(const std::vector<uint64_t>& tokens) {
  transit_.release(tokens);
}

void runtime_impl::expire_holds() {
  transit_.expire();
}

void runtime_impl::drop_borrow(const object_id& id) {
  auto tell = borrows_.remove_local_ref(id);
  if (!tell || !*tell)
    return;
  // Borrowing, step 4: released at the owner with the next free flush.
  releases_[id.owner].push_back(id);
  ++queued_frees_;
  schedule_free_flush();
}

void runtime_impl::hold_contained(
  const object_id& outer, const std::vector<ref_descriptor>& ds,
  std::map<uint64_t, std::vector<object_id>>& todo) {
  if (ds.empty())
    return;
  auto& inner = contained_[outer];
  std::vector<object_id> fresh;
  for (auto& d : ds) {
    if (d.id.owner == owner_id_) {
      if (!table_.add_local_ref(d.id))
        continue; // gone already: the value's ref will read as unknown
    } else if (borrows_.add(d) && !revive_borrow(d.id)) {
      fresh.push_back(d.id);
    }
    inner.push_back(d.id);
  }
  for (auto& id : borrows_.start_registration(fresh))
    todo[id.owner].push_back(id);
}

void runtime_impl::count_registrations(
  const std::map<uint64_t, std::vector<object_id>>& todo) {
  for (auto& [owner, ids] : todo) {
    ++registering_;
    ++registering_by_[owner];
  }
}

std::vector<ref_descriptor>
runtime_impl::contained_of(const object_id& id) const {
  std::vector<ref_descriptor> result;
  auto i = contained_.find(id);
  if (i == contained_.end())
    return result;
  result.reserve(i->second.size());
  for (auto& inner : i->second) {
    ref_descriptor d;
    d.id = inner;
    if (inner.owner == owner_id_) {
      d.host = "127.0.0.1";
      d.port = port_;
    } else if (auto o = borrows_.owner_of(inner)) {
      d.host = o->host;
      d.port = o->port;
    }
    result.push_back(std::move(d));
  }
  return result;
}

caf::actor runtime_impl::ref_server_of(uint64_t owner) const {
  for (auto& [w, c] : workers_)
    if (c.process == owner)
      return caf::actor_cast<caf::actor>(c.store);
  return {};
}

void runtime_impl::send_registration(uint64_t owner,
                                     std::vector<object_id> ids) {
  caf::actor peer;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    peer = ref_server_of(owner);
  }
  // Counts one registration as answered (or moot) and lets held frees and
  // releases go once none is under way.
  auto done = [this, owner](const std::vector<object_id>& registered) {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& id : registered)
      borrows_.registered(id);
    auto i = registering_by_.find(owner);
    if (i == registering_by_.end() || i->second == 0)
      return; // the owner died meanwhile: counted out already
    --i->second;
    if (--registering_ == 0)
      schedule_free_flush();
  };
  if (!peer || self_ == nullptr) {
    std::vector<object_id> none;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      borrows_.owner_died(owner, make_error(refs_errc::owner_died,
                                            "owner process unknown"));
    }
    done(none);
    return;
  }
  self_->request(peer, cfg_.fetch_timeout, borrow_atom::value, ids, owner_id_,
                 caf::actor_cast<caf::actor>(self_))
    .then(
      [done, ids](const std::vector<object_id>& unknown) {
        std::vector<object_id> ok;
        for (auto& id : ids)
          if (std::find(unknown.begin(), unknown.end(), id) == unknown.end())
            ok.push_back(id);
        done(ok);
      },
      [done](caf::error&) { done({}); });
}

std::vector<object_id>
runtime_impl::on_borrow(const std::vector<object_id>& ids, uint64_t borrower,
                        const caf::actor& handle) {
  std::vector<object_id> unknown;
  bool monitor = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (handle)
      monitor = borrower_addrs_.emplace(handle.address(), borrower).second;
    for (auto& id : ids) {
      if (table_.find(id) == nullptr) {
        unknown.push_back(id);
        continue;
      }
      if (borrowers_.add(id, borrower))
        table_.add_borrower(id);
    }
  }
  if (monitor && self_ != nullptr)
    self_->monitor(handle);
  return unknown;
}

void runtime_impl::on_release(const std::vector<object_id>& ids,
                              uint64_t borrower) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& id : ids)
      if (borrowers_.remove(id, borrower))
        table_.remove_borrower(id);
  }
  flush();
}

void runtime_impl::on_free(const object_id& id, object_entry&& e) {
  for (auto w : e.locations) {
    if (w == node_location) {
      node_frees_.push_back(id); // the next flush frees it in the store
    } else {
      frees_[w].push_back(id);
    }
    ++queued_frees_;
  }
  if (!e.locations.empty())
    schedule_free_flush();
  borrowers_.erase(id);
  // Nested refs: the value is gone, so are the refs inside it.
  if (auto i = contained_.find(id); i != contained_.end()) {
    auto inner = std::move(i->second);
    contained_.erase(i);
    for (auto& oid : inner) {
      if (oid.owner == owner_id_)
        table_.remove_local_ref(oid);
      else
        drop_borrow(oid);
    }
  }
}

// -- submitting ---------------------------------------------------------------

ref_base runtime_impl::submit(task_spec spec, const void* call_site) {
  if (!running_)
    return failed_ref(runtime_down_error());
  auto id = make_id();
  spec.result = id;
  // Refs owned by another process go to the worker as such (kind 2): it
  // fetches them from their owner, not through the dispatcher.
  for (auto& arg : spec.args)
    if (arg.kind == 1 && arg.ref.owner != owner_id_) {
      arg.kind = 2;
      ref_descriptor d;
      describe(arg.ref, d);
      arg.port = d.port;
    }
  auto task = std::make_shared<const task_spec>(std::move(spec));
  auto made_by = std::make_shared<lineage>();
  made_by->function = task->name;
  made_by->task = task;
  bool send_now = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    table_.add_pending(id, std::move(made_by), call_site);
    // The task holds its ref arguments and the refs inside its value
    // arguments until it is over (see `apply`).
    for (auto& arg : task->args) {
      if (arg.kind == 1)
        table_.add_submitted_ref(arg.ref);
      else if (arg.kind == 2)
        borrows_.add_local_ref(arg.ref);
      for (auto& d : arg.contained) {
        if (d.id.owner == owner_id_)
          table_.add_submitted_ref(d.id);
        else
          borrows_.add_local_ref(d.id);
      }
    }
    // An idle cluster gets the task at once from this thread (latency); a
    // busy one gets it in the owner's next batch (throughput): the results
    // coming back keep the owner flushing.
    send_now = dispatcher_.in_flight() == 0 && !flush_pending_;
    if (send_now)
      flush_pending_ = true; // suppresses the owner's flush message
    dispatch_result out;
    dispatcher_.submit(task, table_, out);
    apply(out, nullptr);
  }
  if (send_now)
    flush();
  return ref_base{id, shared_from_this()};
}

ref_base runtime_impl::submit_durable(task_spec create,
                                      const void* call_site,
                                      const checkpoint_policy& policy) {
  auto r = spawn_durable(std::move(create), call_site, false, policy);
  return r ? std::move(*r) : failed_ref(std::move(r.error()));
}

caf::expected<ref_base> runtime_impl::spawn_durable(
  task_spec create, const void* call_site, bool must_exist,
  const checkpoint_policy& policy) {
  if (!running_)
    return runtime_down_error();
  const auto& name = create.durable;
  {
    // An earlier instance of this name whose last handle is gone may still
    // have calls to finish (and checkpoints to write): wait, bounded.
    constexpr auto limit = std::chrono::seconds{60};
    std::unique_lock<std::mutex> lk{mtx_};
    auto idle = [&] { return stopped_ || !dispatcher_.durable_busy(name); };
    if (!cv_.wait_for(lk, limit, idle))
      return make_error(actors_errc::timeout,
                        "durable actor '" + name + "': the calls of its "
                          "previous instance did not finish within 60 s");
  }
  auto found = ckpt_->load(name);
  if (!found)
    return std::move(found.error());
  if (!found->cls.empty() && found->cls != create.name)
    return make_error(refs_errc::type_mismatch,
                      "durable actor '" + name + "' is a " + found->cls
                        + ", not a " + create.name);
  if (found->fell_back)
    std::fprintf(stderr, "dref: %s; restoring version %llu instead\n",
                 caf::to_string(found->fell_back).c_str(),
                 static_cast<unsigned long long>(found->cp->version));
  if (found->cp) {
    // Saved state wins over constructor arguments.
    create.kind = static_cast<uint8_t>(task_kind::actor_restore);
    create.args = checkpointer::restore_args(*found->cp, ckpt_->caller());
  } else if (must_exist) {
    return make_error(actors_errc::unknown_actor,
                      "no durable actor named '" + name + "' is stored");
  }
  ckpt_->set_policy(name, policy);
  return submit(std::move(create), call_site);
}

caf::expected<std::shared_ptr<void>> runtime_impl::durable_actor(
  const std::string& name, const std::type_info& type,
  const std::function<caf::expected<std::shared_ptr<void>>()>& make) {
  std::lock_guard<std::mutex> guard{durable_mtx_};
  auto i = durables_.find(name);
  if (i != durables_.end()) {
    if (auto live = i->second.handle.lock()) {
      if (*i->second.type != type)
        return make_error(refs_errc::type_mismatch,
                          "durable actor '" + name
                            + "' is alive in this runtime as another class");
      return live;
    }
  }
  auto made = make();
  if (made)
    durables_[name] = durable_entry{&type, *made};
  else if (i != durables_.end())
    durables_.erase(i);
  return made;
}

ref_base runtime_impl::failed_ref(caf::error err) {
  auto id = make_id();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    table_.add_pending(id, nullptr);
    table_.set_failed(id, std::move(err));
  }
  return ref_base{id, shared_from_this()};
}

ref_base runtime_impl::put_blob(blob value, const void* call_site,
                                std::vector<ref_base>&& refs) {
  if (!running_)
    return failed_ref(runtime_down_error());
  for (auto& r : refs)
    if (r.context() != this)
      return failed_ref(make_error(actors_errc::invalid_argument,
                                   "a value holds a ref owned by another "
                                   "runtime"));
  auto id = make_id();
  // Above the inline limit the value is sealed once in the node store (a
  // full store keeps it here instead): tasks read it there in place.
  bool in_node = false;
  auto size = value.size();
  if (size > cfg_.inline_limit)
    if (auto store = node())
      in_node = static_cast<bool>(store->put(id, value.data(), size));
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (in_node)
      table_.add_ready_at(id, size, node_location, call_site);
    else
      table_.add_ready(id, std::make_shared<const blob>(std::move(value)),
                       call_site);
    if (!refs.empty()) {
      // Nested refs: the object holds one local ref per ref inside it,
      // taken over from the copies collected while serializing.
      auto& inner = contained_[id];
      inner.reserve(refs.size());
      for (auto& r : refs)
        inner.push_back(r.release());
    }
  }
  return ref_base{id, shared_from_this()};
}

void runtime_impl::destroy_actor(uint64_t actor, const std::string& cls) {
  if (stopped_)
    return;
  auto task = std::make_shared<task_spec>();
  task->kind = static_cast<uint8_t>(task_kind::actor_destroy);
  task->name = cls;
  task->actor = actor;
  std::lock_guard<std::mutex> guard{mtx_};
  dispatch_result out;
  dispatcher_.submit(std::move(task), table_, out);
  apply(out, nullptr);
}

void runtime_impl::apply(dispatch_result& res,
                         std::vector<object_id>* changed) {
  for (auto& [id, err] : res.failures) {
    table_.set_failed(id, std::move(err));
    if (changed != nullptr)
      changed->push_back(id);
  }
  for (auto& spec : res.finished)
    for (auto& arg : spec->args) {
      if (arg.kind == 1)
        table_.remove_submitted_ref(arg.ref);
      else if (arg.kind == 2)
        drop_borrow(arg.ref);
      for (auto& d : arg.contained) {
        if (d.id.owner == owner_id_)
          table_.remove_submitted_ref(d.id);
        else
          drop_borrow(d.id);
      }
    }
  // A ref argument whose value the owner holds travels inline, one in the
  // node store or at a worker is read there: either way the refs inside
  // that value travel along, and the worker borrows them before the task
  // runs (a read from the node store would otherwise adopt them only
  // later, and a ref the task keeps could be freed meanwhile).
  for (auto& [w, t] : res.sends)
    for (auto& arg : t.args)
      if (((arg.kind == 0 && arg.ref.valid()) || arg.kind == 1)
          && arg.contained.empty())
        arg.contained = contained_of(arg.ref);
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
    dispatcher_.retry_held(table_, more);
    auto progress = !more.failures.empty();
    apply(more, &changed);
    if (!progress)
      return;
  }
}

void runtime_impl::schedule_flush() {
  if (flush_pending_ || stopped_ || !owner_)
    return;
  flush_pending_ = true;
  caf::anon_send(owner_, flush_atom::value, false);
}

void runtime_impl::schedule_free_flush() {
  constexpr size_t max_queued = 4096;
  constexpr auto free_delay = std::chrono::milliseconds{20};
  if (stopped_ || !owner_)
    return;
  // While a registration is under way nothing is sent anyway; its answer
  // schedules the flush.
  if (queued_frees_ >= max_queued && registering_ == 0) {
    caf::anon_send(owner_, flush_atom::value, true);
    return;
  }
  if (free_flush_pending_)
    return;
  free_flush_pending_ = true;
  caf::delayed_anon_send(owner_, free_delay, flush_atom::value, true);
}

void runtime_impl::flush(bool all_frees) {
  constexpr size_t max_batch = 1024;
  std::lock_guard<std::mutex> flush_guard{flush_mtx_};
  std::vector<std::pair<worker_id, task_spec>> tasks;
  std::map<worker_id, std::vector<object_id>> frees;
  std::map<worker_id, worker_conn> conns;
  std::vector<std::pair<caf::actor, std::vector<object_id>>> releases;
  std::vector<std::pair<caf::actor, std::vector<uint64_t>>> hold_releases;
  std::vector<object_id> node_frees;
  bool nothing = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    flush_pending_ = false;
    if (all_frees)
      free_flush_pending_ = false;
    nothing = outbox_.empty()
              && ((frees_.empty() && releases_.empty()
                   && hold_releases_.empty())
                  || !all_frees);
    // Node-store copies go at once: no ref depends on their bytes (the
    // refs inside stay held by the worker's slot, freed below as usual).
    queued_frees_ -= node_frees_.size();
    node_frees.swap(node_frees_);
  }
  free_in_node(node_frees);
  if (nothing) {
    if (all_frees)
      expire_holds();
    return;
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    tasks.swap(outbox_);
    // Frees ride on the task batches of their worker; the rest wait for
    // the free flush unless this is one.
    // While a borrow registration is under way, no free and no release
    // leaves this process (borrowing, step 2: none may overtake it).
    bool may_free = registering_ == 0;
    if (may_free && all_frees) {
      for (auto& [owner, ids] : releases_) {
        queued_frees_ -= ids.size();
        if (auto peer = ref_server_of(owner))
          releases.emplace_back(std::move(peer), std::move(ids));
      }
      releases_.clear();
      for (auto& [port, tokens] : hold_releases_) {
        queued_frees_ -= tokens.size();
        for (auto& [w, c] : workers_)
          if (c.port == port)
            hold_releases.emplace_back(caf::actor_cast<caf::actor>(c.store),
                                       std::move(tokens));
      }
      hold_releases_.clear();
    }
    for (auto i = frees_.begin(); may_free && i != frees_.end();) {
      bool has_tasks = std::any_of(tasks.begin(), tasks.end(),
                                   [w = i->first](auto& t) {
                                     return t.first == w;
                                   });
      if (all_frees || has_tasks) {
        queued_frees_ -= i->second.size();
        frees.emplace(i->first, std::move(i->second));
        i = frees_.erase(i);
      } else {
        ++i;
      }
    }
    for (auto& [w, t] : tasks)
      if (conns.count(w) == 0)
        if (auto i = workers_.find(w); i != workers_.end())
          conns.emplace(w, i->second);
    for (auto& [w, ids] : frees)
      if (conns.count(w) == 0)
        if (auto i = workers_.find(w); i != workers_.end())
          conns.emplace(w, i->second);
  }
  if (stopped_)
    return;
  for (auto& [peer, ids] : releases)
    caf::anon_send(peer, release_atom::value, std::move(ids), owner_id_);
  for (auto& [peer, tokens] : hold_releases)
    caf::anon_send(peer, release_hold_atom::value, std::move(tokens));
  if (all_frees)
    expire_holds();
  // Tasks for a worker that is gone were already failed by the dispatcher.
  static const std::vector<object_id> no_frees;
  std::map<worker_id, std::vector<task_spec>> batches;
  for (auto& [w, t] : tasks) {
    auto c = conns.find(w);
    if (c == conns.end())
      continue;
    auto& batch = batches[w];
    batch.push_back(std::move(t));
    if (batch.size() >= max_batch) {
      caf::anon_send(c->second.executor, submit_atom::value, std::move(batch),
                     no_frees);
      batch = std::vector<task_spec>{};
    }
  }
  for (auto& [w, batch] : batches) {
    auto f = frees.find(w);
    if (batch.empty() && f == frees.end())
      continue;
    std::vector<object_id> ids;
    if (f != frees.end()) {
      ids = std::move(f->second);
      frees.erase(f);
    }
    caf::anon_send(conns[w].executor, submit_atom::value, std::move(batch),
                   std::move(ids));
  }
  for (auto& [w, ids] : frees) {
    auto c = conns.find(w);
    if (c != conns.end())
      caf::anon_send(c->second.store, free_atom::value, std::move(ids));
  }
}

// -- owner actor --------------------------------------------------------------

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
  {
    std::lock_guard<std::mutex> guard{mtx_};
    worker_conn c;
    c.id = reg.id;
    c.pid = reg.pid;
    c.port = reg.port;
    c.process = reg.process;
    c.executor = reg.executor;
    c.store = reg.store;
    c.echo = reg.echo;
    workers_[reg.id] = c;
    by_addr_[reg.executor.address()] = reg.id;
    dispatcher_.add_worker(reg.id, reg.port);
    dispatch_result out;
    settle(out, changed);
  }
  cv_.notify_all();
  deliver_waiters(changed);
  flush();
  return caf::none;
}

void runtime_impl::on_results(worker_id w, std::vector<task_result>& results) {
  // Steps of "Rollback after a failed write" (docs/architecture.md).
  // 1. Drop the results of calls a rollback took back (stale: they ran on
  //    a state that was dropped; their re-runs follow) and of calls no
  //    longer in flight (their worker's copy goes). Neither is written.
  std::vector<std::tuple<uint64_t, std::string, std::string>> durable;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto keep = results.begin();
    for (auto& r : results) {
      switch (dispatcher_.classify(r.id, w)) {
        case dispatcher::report::stale:
          continue;
        case dispatcher::report::unknown:
          // Its worker was declared dead, or its actor died, and the
          // object failed already. Only the stored copies must go.
          frees_[w].push_back(r.id);
          ++queued_frees_;
          if (r.status == task_result::in_node_store) {
            node_frees_.push_back(r.id);
            ++queued_frees_;
          }
          schedule_free_flush();
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
  //    good checkpoint (read now, outside mtx_) before any later call runs.
  //    The same for an actor whose worker could not save its state
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
  std::map<uint64_t, std::vector<object_id>> todo;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    dispatch_result out;
    for (auto& r : results) {
      bool known = false;
      dispatcher_.completed(r.id, out);
      switch (r.status) {
        case task_result::inline_value:
          known = table_.set_ready(
            r.id, std::make_shared<const blob>(std::move(r.value)), r.size, w);
          break;
        case task_result::stored:
          known = table_.set_ready(r.id, nullptr, r.size, w);
          break;
        case task_result::in_node_store:
          // Two copies: the worker's slot (holding the refs inside) and the
          // bytes in the node store, which outlive the worker.
          known = table_.set_ready(r.id, nullptr, r.size, w, node_location);
          break;
        default:
          known = table_.add_location(r.id, w)
                  && table_.set_failed(r.id, std::move(r.error));
          if (in_node.count(r.id) > 0) {
            // A durable call whose checkpoint failed: its bytes in the node
            // store will never be read.
            node_frees_.push_back(r.id);
            ++queued_frees_;
            schedule_free_flush();
          }
      }
      if (!known) {
        // Not (or no longer) pending here: the worker's copy must go.
        frees_[w].push_back(r.id);
        ++queued_frees_;
        if (r.status == task_result::in_node_store) {
          node_frees_.push_back(r.id);
          ++queued_frees_;
        }
        schedule_free_flush();
      } else if (!r.contained.empty() && table_.find(r.id) != nullptr) {
        // Nested refs in a result: the owner of the result holds them too
        // (the worker's copy may die), borrowing those owned elsewhere.
        hold_contained(r.id, r.contained, todo);
      }
      changed.push_back(r.id);
    }
    count_registrations(todo);
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
  for (auto& [owner, ids] : todo)
    send_registration(owner, std::move(ids));
  cv_.notify_all();
  deliver_waiters(changed);
  flush();
}

void runtime_impl::on_worker_down(const caf::actor_addr& who) {
  std::vector<object_id> changed;
  worker_conn conn;
  // The checkpoints of the worker's durable actors are read before taking
  // mtx_ (a large state takes long to read; user threads go on meanwhile).
  // Nothing else changes the dispatcher's in-flight tasks meanwhile (only
  // this owner actor does); an actor placed on the dead worker meanwhile
  // has its spawn in flight and spawns again elsewhere.
  std::map<uint64_t, std::shared_ptr<const task_spec>> restores;
  {
    std::vector<std::tuple<uint64_t, std::string, std::string>> durables;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (auto b = borrower_addrs_.find(who); b != borrower_addrs_.end()) {
        // A borrower process is gone: its borrows end (no leak).
        for (auto& id : borrowers_.remove_borrower(b->second))
          table_.remove_borrower(id);
        borrower_addrs_.erase(b);
      }
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
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = by_addr_.find(who);
    if (i == by_addr_.end())
      return;
    auto w = i->second;
    by_addr_.erase(i);
    conn = workers_[w];
    workers_.erase(w);
    // Its borrows end too, whichever of its actors CAF reports down first.
    for (auto& id : borrowers_.remove_borrower(conn.process))
      table_.remove_borrower(id);
    // The worker owned the objects its tasks put: they fail with it
    // (fate-sharing), here and in every get forwarded to it.
    auto why = make_error(refs_errc::owner_died,
                          "worker " + std::to_string(w) + " (pid "
                            + std::to_string(conn.pid)
                            + ") owning the object died");
    borrows_.owner_died(conn.process, why);
    if (auto r = registering_by_.find(conn.process);
        r != registering_by_.end()) {
      registering_ -= r->second;
      r->second = 0;
      if (registering_ == 0)
        schedule_free_flush();
    }
    if (auto r = releases_.find(conn.process); r != releases_.end()) {
      queued_frees_ -= r->second.size();
      releases_.erase(r);
    }
    for (auto f = forwarded_.begin(); f != forwarded_.end();) {
      if (f->second.process == conn.process) {
        f->second.rp.deliver(
          f->second.owner ? why
                          : make_error(refs_errc::object_lost,
                                       "worker " + std::to_string(w)
                                         + " holding the value died"));
        f = forwarded_.erase(f);
      } else {
        ++f;
      }
    }
    if (auto f = frees_.find(w); f != frees_.end()) {
      queued_frees_ -= f->second.size();
      frees_.erase(f);
    }
    dispatch_result out;
    dispatcher_.remove_worker(w, out, restores);
    auto lost = table_.drop_location(w);
    changed.insert(changed.end(), lost.begin(), lost.end());
    settle(out, changed);
  }
  // Fate-sharing in the node store: the values the worker's tasks put were
  // its own (primary copies named by its process id); nobody frees them
  // any more. After `owner_died` above, so a get here that finds one gone
  // reports the death, not a store error.
  if (auto store = node())
    store->free_owned_by(conn.process);
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
    std::lock_guard<std::mutex> guard{mtx_};
    check_capacity(changed);
  }
  cv_.notify_all();
  deliver_waiters(changed);
  flush();
}

void runtime_impl::arm_checkpoint_timer(
  const std::optional<std::chrono::steady_clock::time_point>& due) {
  if (!due || self_ == nullptr || (ckpt_timer_ && *ckpt_timer_ <= *due))
    return;
  ckpt_timer_ = due;
  auto wait = std::max(*due - clock_type::now(), clock_type::duration{0});
  self_->delayed_send(self_, std::chrono::duration_cast<caf::timespan>(wait),
                      ckpt_atom::value);
}

void runtime_impl::on_checkpoint_timer() {
  if (ckpt_timer_ && clock_type::now() < *ckpt_timer_)
    return; // an earlier timer; the current one is still coming
  ckpt_timer_.reset();
  arm_checkpoint_timer(ckpt_->write_due().next_due);
}

void runtime_impl::on_start_deadline(int pid) {
  if (starting_.erase(pid) == 0)
    return; // registered in time
  pool_.kill_and_reap(pid);
  std::vector<object_id> changed;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    check_capacity(changed);
  }
  cv_.notify_all();
  deliver_waiters(changed);
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

void runtime_impl::on_get(const object_id& id,
                          caf::typed_response_promise<value_msg> rp,
                          bool node_ok) {
  if (id.owner != owner_id_) {
    // A borrowed object (a `then` in this process): ask its owner.
    caf::actor peer;
    caf::error dead;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      dead = borrows_.owner_error(id);
      peer = ref_server_of(id.owner);
    }
    if (dead || !peer || self_ == nullptr) {
      rp.deliver(dead ? dead
                      : make_error(refs_errc::owner_died, to_string(id)));
      return;
    }
    forward_get(peer, id.owner, true, id, std::move(rp), node_ok);
    return;
  }
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto e = table_.find(id);
    if (e != nullptr && e->state == object_state::pending) {
      waiters_[id].emplace_back(std::move(rp), node_ok);
      return;
    }
  }
  answer(id, std::move(rp), node_ok);
}

void runtime_impl::forward_get(const caf::actor& peer, uint64_t process,
                               bool owner, const object_id& id,
                               caf::typed_response_promise<value_msg> rp,
                               bool node_ok) {
  auto token = next_token_++;
  forwarded_.emplace(token, forward{process, owner, rp});
  auto reply = [this, token](auto&& x) {
    if (auto i = forwarded_.find(token); i != forwarded_.end()) {
      i->second.rp.deliver(std::forward<decltype(x)>(x));
      forwarded_.erase(i);
    }
  };
  auto on_value = [this, reply, id, node_ok](value_msg& v) mutable {
    if (v.in_node_store && !node_ok) {
      // The worker answered "in the node store" (which this process
      // hosts), but the requester (`dref::then` here) needs the bytes.
      auto b = read_node_copy(id);
      if (!b) {
        reply(std::move(b.error()));
        return;
      }
      v.bytes.assign(b->data(), b->data() + b->size());
      v.in_node_store = false;
    }
    reply(std::move(v));
  };
  // CAF's errors (the holder gone, a timeout) in dref's words: the reply
  // goes on to a `dref::then` or a worker's task, and so to a user.
  auto on_error = [reply, id, owner](caf::error& err) mutable {
    reply(dref_error_of(std::move(err),
                        (owner ? "getting " : "fetching ") + to_string(id),
                        make_error(owner ? refs_errc::owner_died
                                         : refs_errc::object_lost)));
  };
  if (owner)
    self_->request(peer, cfg_.fetch_timeout, get_atom::value, id)
      .then(on_value, on_error);
  else
    self_->request(peer, cfg_.fetch_timeout, fetch_atom::value, id)
      .then(on_value, on_error);
}

void runtime_impl::answer(const object_id& id,
                          caf::typed_response_promise<value_msg> rp,
                          bool node_ok) {
  store_actor from;
  uint64_t holder = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto e = table_.find(id);
    if (e == nullptr) {
      rp.deliver(make_error(refs_errc::unknown_object, to_string(id)));
      return;
    }
    if (e->state == object_state::failed) {
      rp.deliver(e->error);
      return;
    }
    if (e->value) {
      rp.deliver(value_msg{*e->value, contained_of(id)});
      return;
    }
    if (std::find(e->locations.begin(), e->locations.end(), node_location)
        != e->locations.end()) {
      if (node_ok) {
        // The reader maps it itself: only the refs inside travel.
        value_msg v;
        v.contained = contained_of(id);
        v.in_node_store = true;
        rp.deliver(std::move(v));
        return;
      }
      // In the node store, which this process hosts: a CAF message needs
      // its own copy of the bytes.
      auto store = node();
      auto b = store ? store->get(id)
                     : caf::expected<buffer>{
                       make_error(actors_errc::runtime_down)};
      if (!b) {
        rp.deliver(std::move(b.error()));
        return;
      }
      rp.deliver(value_msg{blob(b->data(), b->data() + b->size()),
                           contained_of(id)});
      return;
    }
    for (auto w : e->locations)
      if (auto i = workers_.find(w); i != workers_.end()) {
        from = i->second.store;
        holder = i->second.process;
        break;
      }
  }
  if (!from || self_ == nullptr) {
    rp.deliver(make_error(refs_errc::object_lost, to_string(id)));
    return;
  }
  // Watched: the holder's death answers at once (see on_worker_down).
  forward_get(caf::actor_cast<caf::actor>(from), holder, false, id,
              std::move(rp), node_ok);
}

void runtime_impl::deliver_waiters(const std::vector<object_id>& ids) {
  if (waiters_.empty())
    return;
  for (auto& id : ids) {
    auto i = waiters_.find(id);
    if (i == waiters_.end())
      continue;
    auto rps = std::move(i->second);
    waiters_.erase(i);
    for (auto& [rp, node_ok] : rps)
      answer(id, std::move(rp), node_ok);
  }
}

// -- reading ------------------------------------------------------------------

caf::expected<buffer>
runtime_impl::get_blob(const ref_base& x, caf::timespan timeout) {
  if (x.context() != this)
    return make_error(actors_errc::invalid_argument,
                      x.valid() ? "a ref owned by another runtime"
                                : "an empty ref");
  flush();
  auto deadline = deadline_of(timeout);
  auto limit = cfg_.fetch_timeout;
  if (deadline != clock_type::time_point::max())
    limit = std::min<caf::timespan>(
      limit, std::chrono::duration_cast<caf::timespan>(deadline
                                                       - clock_type::now()));
  if (x.id().owner != owner_id_) {
    // Borrowed: the owner (a worker whose task put it) serves the value.
    caf::actor peer;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (borrows_.find(x.id()) == nullptr)
        return make_error(refs_errc::unknown_object, to_string(x.id()));
      if (auto dead = borrows_.owner_error(x.id()); !dead)
        peer = ref_server_of(x.id().owner);
    }
    caf::expected<value_msg> reply{caf::error{}};
    if (peer)
      reply = watched_request<value_msg>(*sys_, peer, limit,
                                         "getting " + to_string(x.id()),
                                         get_atom::value, x.id());
    else
      reply = make_error(refs_errc::owner_died, to_string(x.id()));
    if (!reply) {
      if (reply.error() == refs_errc::owner_died) {
        std::lock_guard<std::mutex> guard{mtx_};
        borrows_.owner_died(x.id().owner, reply.error());
      }
      // Refs in durable state: a checkpoint may keep the value.
      if (is_fetch_failure(reply.error()))
        if (auto kept = kept_copy(x.id()))
          return view_of(std::make_shared<const blob>(std::move(kept->bytes)));
      return std::move(reply.error());
    }
    // The refs inside are adopted when the caller deserializes the value.
    if (reply->in_node_store) {
      // Sealed by its owner in the store this process hosts: mapped, not
      // copied. Gone meanwhile (its owner died): a kept copy, as above.
      auto b = read_node_copy(x.id());
      if (!b && is_fetch_failure(b.error()))
        if (auto kept = kept_copy(x.id()))
          return view_of(std::make_shared<const blob>(std::move(kept->bytes)));
      return b;
    }
    return view_of(std::make_shared<const blob>(std::move(reply->bytes)));
  }
  store_actor from;
  bool in_node = false;
  {
    std::unique_lock<std::mutex> lk{mtx_};
    for (;;) {
      auto e = table_.find(x.id());
      if (e == nullptr)
        return make_error(refs_errc::unknown_object, to_string(x.id()));
      if (e->state == object_state::failed)
        return e->error;
      if (e->state == object_state::ready) {
        if (e->value)
          return view_of(e->value);
        in_node = std::find(e->locations.begin(), e->locations.end(),
                            node_location)
                  != e->locations.end();
        if (in_node)
          break;
        for (auto w : e->locations)
          if (auto i = workers_.find(w); i != workers_.end()) {
            from = i->second.store;
            break;
          }
        if (!from)
          return make_error(refs_errc::object_lost, to_string(x.id()));
        break;
      }
      if (stopped_)
        return status_ ? status_ : make_error(actors_errc::runtime_down);
      if (deadline == clock_type::time_point::max())
        cv_.wait(lk);
      else if (cv_.wait_until(lk, deadline) == std::cv_status::timeout
               && table_.find(x.id()) != nullptr
               && table_.find(x.id())->state == object_state::pending)
        return make_error(actors_errc::timeout,
                          "object " + to_string(x.id())
                            + " not ready after " + ms_text(timeout));
    }
  }
  if (in_node) {
    // In the node store this process hosts: a view of its mapping, pinned
    // while the caller reads (no fetch, no copy). The caller's ref keeps
    // the object from being freed meanwhile.
    auto store = node();
    if (!store)
      return runtime_down_error();
    return store->get(x.id());
  }
  // The value stays at a worker: fetch it from there (watched: a worker
  // that dies mid-transfer ends the get at once, not at the timeout).
  auto reply = watched_request<value_msg>(
    *sys_, caf::actor_cast<caf::actor>(from), limit,
    "fetching " + to_string(x.id()), fetch_atom::value, x.id());
  if (!reply) {
    if (reply.error() == refs_errc::owner_died)
      return make_error(refs_errc::object_lost,
                        "the worker holding " + to_string(x.id())
                          + " died during the transfer");
    return std::move(reply.error());
  }
  if (reply->in_node_store)
    return read_node_copy(x.id());
  return view_of(std::make_shared<const blob>(std::move(reply->bytes)));
}

caf::expected<buffer> runtime_impl::read_node_copy(const object_id& id) {
  auto store = node();
  if (!store)
    return runtime_down_error();
  auto b = store->get(id);
  if (b)
    return b;
  // The reader's ref keeps the object, so only its owner's death frees it
  // early: `on_worker_down` marks the owner dead before it frees the
  // owner's objects from the store.
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto dead = borrows_.owner_error(id))
    return dead;
  return make_error(refs_errc::object_lost,
                    to_string(id) + " is not in the node store: "
                      + to_string(b.error()));
}

caf::expected<value_msg> runtime_impl::kept_copy(const object_id& id) {
  auto kv = ckpt_->kept_copy(id);
  if (!kv)
    return std::move(kv.error());
  if (!*kv)
    return make_error(refs_errc::object_lost,
                      "no durable checkpoint keeps " + to_string(id));
  value_msg result;
  result.bytes.assign((*kv)->value.begin(), (*kv)->value.end());
  for (auto& inner : (*kv)->refs)
    if (auto inner_id = object_id_from_string(inner)) {
      ref_descriptor d;
      d.id = *inner_id;
      result.contained.push_back(std::move(d));
    }
  return result;
}

size_t runtime_impl::kept_values() {
  return ckpt_->kept_count();
}

std::vector<bool>
runtime_impl::wait_ids(const std::vector<const ref_base*>& xs, size_t n,
                       caf::timespan timeout) {
  flush();
  n = std::min(n, xs.size());
  auto deadline = deadline_of(timeout);
  std::vector<bool> ready(xs.size(), false);
  std::unique_lock<std::mutex> lk{mtx_};
  bool timed_out = false;
  for (;;) {
    size_t count = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!ready[i]) {
        auto e = table_.find(xs[i]->id());
        ready[i] = xs[i]->context() != this || e == nullptr
                   || e->state != object_state::pending;
      }
      count += ready[i] ? 1 : 0;
    }
    if (count >= n || stopped_ || timed_out)
      return ready;
    if (deadline == clock_type::time_point::max())
      cv_.wait(lk);
    else
      timed_out = cv_.wait_until(lk, deadline) == std::cv_status::timeout;
  }
}

// -- introspection ------------------------------------------------------------

std::vector<worker_info> runtime_impl::workers() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<worker_info> result;
  for (auto& [id, c] : workers_)
    result.push_back(worker_info{c.id, c.pid, c.port, c.echo});
  return result;
}

caf::actor runtime_impl::owner_handle() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return caf::actor_cast<caf::actor>(owner_);
}

caf::expected<runtime_stats> runtime_impl::stats(caf::timespan timeout) {
  if (!running_)
    return runtime_down_error();
  runtime_stats result;
  expire_holds();
  result.transit_holds = transit_.size();
  // Not under mtx_: the checkpointer's lock is held during synced writes.
  result.kept_values = ckpt_->kept_count();
  std::vector<worker_conn> conns;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    result.owned_objects = table_.size();
    result.borrowed_objects = borrows_.size();
    result.pending_registrations = registering_;
    for (auto& [owner, ids] : releases_)
      result.pending_releases += ids.size();
    for (auto& [port, tokens] : hold_releases_)
      result.pending_releases += tokens.size();
    result.in_flight_tasks = dispatcher_.in_flight();
    result.held_tasks = dispatcher_.held();
    result.actors = dispatcher_.actors();
    result.checkpoint_writes = ckpt_->writes();
    for (auto& [id, c] : workers_)
      conns.push_back(c);
  }
  if (auto store = node()) {
    auto ns = store->stats();
    result.node_objects = ns.objects;
    result.node_bytes = ns.memory_bytes;
    result.node_on_disk = ns.on_disk;
  }
  // Every worker at once, each watched: a worker that died (and that the
  // owner did not drop yet) is listed as dead instead of failing the call.
  auto answers = watched_fan_out<worker_stats>(*sys_, store_handles(conns),
                                               timeout, stats_atom::value);
  for (size_t i = 0; i < conns.size(); ++i) {
    auto& a = answers[i];
    if (a.reply) {
      result.workers.push_back(std::move(*a.reply));
    } else if (a.down) {
      worker_stats dead;
      dead.id = conns[i].id;
      dead.pid = conns[i].pid;
      dead.alive = false;
      result.workers.push_back(dead);
    } else {
      return worker_error(conns[i], "stats", timeout, a.error);
    }
  }
  return result;
}

process_memory runtime_impl::own_memory() const {
  process_memory pm;
  pm.role = "driver";
  pm.pid = static_cast<int32_t>(::getpid());
  std::vector<std::pair<object_id, const void*>> sites;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    table_.for_each([&](const object_id& id, const object_entry& e) {
      memory_entry m;
      m.id = id;
      m.state = to_string(e.state);
      m.size = e.size;
      m.local_refs = e.local_refs;
      m.submitted_refs = e.submitted_refs;
      m.borrowers = e.borrowers;
      m.locations = e.locations.to_vector();
      m.owner_copy = e.value != nullptr;
      if (e.made_by)
        m.made_by = e.made_by->function;
      pm.objects.push_back(std::move(m));
      sites.emplace_back(id, e.call_site);
    });
    borrows_.for_each([&](const object_id& id, const borrow_entry& b) {
      memory_entry m;
      m.id = id;
      m.state = "borrowed";
      m.local_refs = b.local_refs;
      pm.objects.push_back(std::move(m));
      sites.emplace_back(id, nullptr);
    });
  }
  // Symbolize outside the lock; equal addresses only once.
  std::map<const void*, std::string> names;
  for (size_t i = 0; i < sites.size(); ++i) {
    auto addr = sites[i].second;
    auto j = names.find(addr);
    if (j == names.end())
      j = names.emplace(addr, describe_call_site(addr)).first;
    pm.objects[i].call_site = j->second;
  }
  return pm;
}

std::vector<uint16_t> runtime_impl::worker_ports() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<uint16_t> result;
  for (auto& [id, c] : workers_)
    result.push_back(c.port);
  return result;
}

caf::expected<memory_report> runtime_impl::memory(caf::timespan timeout) {
  if (!running_)
    return runtime_down_error();
  memory_report report;
  report.processes.push_back(own_memory());
  std::vector<worker_conn> conns;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [id, c] : workers_)
      conns.push_back(c);
  }
  auto answers = watched_fan_out<process_memory>(*sys_, store_handles(conns),
                                                 timeout, memory_atom::value);
  for (size_t i = 0; i < conns.size(); ++i) {
    auto& a = answers[i];
    if (a.reply) {
      report.processes.push_back(std::move(*a.reply));
    } else if (a.down) {
      process_memory dead;
      dead.role = "worker";
      dead.pid = conns[i].pid;
      dead.id = conns[i].id;
      dead.alive = false;
      report.processes.push_back(std::move(dead));
    } else {
      return worker_error(conns[i], "memory", timeout, a.error);
    }
  }
  return report;
}

// -- free functions behind the templates --------------------------------------

ref_base submit(runtime_impl& rt, task_spec spec, const void* call_site) {
  return rt.submit(std::move(spec), call_site);
}

ref_base failed_ref(runtime_impl& rt, caf::error err) {
  return rt.failed_ref(std::move(err));
}

ref_base put_blob(runtime_impl& rt, blob value, const void* call_site,
                  std::vector<ref_base>&& refs) {
  return rt.put_blob(std::move(value), call_site, std::move(refs));
}

caf::expected<buffer> get_blob(runtime_impl& rt, const ref_base& x,
                               caf::timespan timeout) {
  return rt.get_blob(x, timeout);
}

std::string node_store_prefix(const runtime_impl& rt) {
  return rt.node_store_prefix();
}

std::vector<bool> wait_ids(runtime_impl& rt,
                           const std::vector<const ref_base*>& xs, size_t n,
                           caf::timespan timeout) {
  return rt.wait_ids(xs, n, timeout);
}

ref_base submit_durable(runtime_impl& rt, task_spec create,
                        const void* call_site,
                        const checkpoint_policy& policy) {
  return rt.submit_durable(std::move(create), call_site, policy);
}

caf::expected<ref_base> recover_durable(runtime_impl& rt, task_spec create,
                                        const void* call_site,
                                        const checkpoint_policy& policy) {
  return rt.spawn_durable(std::move(create), call_site, true, policy);
}

caf::expected<std::shared_ptr<void>>
durable_actor(runtime_impl& rt, const std::string& name,
              const std::type_info& type,
              const std::function<caf::expected<std::shared_ptr<void>>()>&
                make) {
  return rt.durable_actor(name, type, make);
}

uint64_t next_actor_id(runtime_impl& rt) {
  return rt.next_actor_id();
}

void destroy_actor(runtime_impl& rt, uint64_t actor, const std::string& cls) {
  rt.destroy_actor(actor, cls);
}

const ref_context* context_of(const runtime_impl& rt) {
  return &rt;
}

caf::error owner_request_error(caf::error err, const object_id& id) {
  return dref_error_of(std::move(err), "getting " + to_string(id),
                       make_error(actors_errc::runtime_down));
}

caf::actor owner_actor_of(const ref_base& x) {
  auto rt = dynamic_cast<runtime_impl*>(x.context());
  return rt != nullptr ? rt->owner_handle() : caf::actor{};
}

} // namespace internal

// -- runtime ------------------------------------------------------------------

runtime::runtime(config cfg) {
  if (auto rc = run_worker_if_requested())
    std::exit(*rc);
  impl_ = std::make_shared<internal::runtime_impl>(std::move(cfg));
  impl_->start();
}

runtime::~runtime() {
  impl_->stop();
}

bool runtime::running() const {
  return impl_->running();
}

caf::error runtime::status() const {
  return impl_->status();
}

std::vector<worker_info> runtime::workers() const {
  return impl_->workers();
}

caf::expected<runtime_stats> runtime::stats(caf::timespan timeout) {
  return impl_->stats(timeout);
}

caf::expected<memory_report> runtime::memory(caf::timespan timeout) {
  return impl_->memory(timeout);
}

caf::actor_system& runtime::system() {
  return impl_->system();
}

std::string runtime::node_store_prefix() const {
  return impl_->node_store_prefix();
}

} // namespace dref
