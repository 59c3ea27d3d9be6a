#include "worker_context.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>

#include <unistd.h>

#include "caf/actor_system.hpp"
#include "caf/io/middleman.hpp"
#include "caf/send.hpp"

#include "messages.hpp"
#include "watched_request.hpp"

#include "dref/actors/atoms.hpp"
#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

namespace dref::internal {

worker_context::worker_context(caf::actor_system& sys, worker_id id,
                               uint64_t process, config cfg,
                               std::shared_ptr<local_store> store)
  : sys_(sys),
    id_(id),
    process_(process),
    cfg_(std::move(cfg)),
    store_(std::move(store)),
    own_([this](const object_id& oid, object_entry&& e) {
      on_free(oid, std::move(e));
    }) {
  // nop
}

void worker_context::set_server(caf::actor server, uint16_t port) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    server_ = std::move(server);
    port_ = port;
  }
  if (!registrar_.joinable())
    registrar_ = std::thread{[this] { run_registrar(); }};
}

void worker_context::set_driver(caf::actor driver, std::string host,
                                uint16_t port) {
  std::lock_guard<std::mutex> guard{mtx_};
  driver_ = driver;
  driver_host_ = std::move(host);
  driver_port_ = port;
  peers_[port] = std::move(driver);
}

void worker_context::set_node(node_client node) {
  node_.emplace(std::move(node));
}

// -- ref_context --------------------------------------------------------------

void worker_context::add_local_ref(const object_id& id) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  if (id.owner == process_)
    own_.add_local_ref(id);
  else
    borrows_.add_local_ref(id);
}

void worker_context::remove_local_ref(const object_id& id) noexcept {
  std::vector<object_id> node_frees;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (id.owner == process_)
      own_.remove_local_ref(id);
    else
      drop_borrow(id);
    node_frees.swap(node_frees_);
  }
  free_node_copies(node_frees);
}

void worker_context::describe(const object_id& id,
                              ref_descriptor& out) const {
  std::lock_guard<std::mutex> guard{mtx_};
  if (id.owner == process_) {
    out.host = "127.0.0.1";
    out.port = port_;
  } else if (auto o = borrows_.owner_of(id)) {
    out.host = o->host;
    out.port = o->port;
  }
}

void worker_context::adopt(const ref_descriptor& d) noexcept {
  bool todo = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (d.id.owner == process_) {
      own_.add_local_ref(d.id);
    } else if (borrows_.add(d)) {
      // A ref that arrived outside the task protocol (a plain CAF message,
      // a durable actor's restored state): register it without blocking
      // the reader.
      todo = !borrows_.start_registration({d.id}).empty();
    }
  }
  if (todo || d.hold != 0)
    register_later(d, todo);
}

void worker_context::register_later(ref_descriptor d, bool todo) {
  if (stopped_)
    return;
  {
    std::lock_guard<std::mutex> guard{reg_mtx_};
    reg_queue_.emplace_back(std::move(d), todo);
  }
  reg_cv_.notify_one();
}

void worker_context::run_registrar() {
  for (;;) {
    std::pair<ref_descriptor, bool> item;
    {
      std::unique_lock<std::mutex> lk{reg_mtx_};
      reg_cv_.wait(lk, [this] { return stopped_ || !reg_queue_.empty(); });
      if (stopped_)
        return;
      item = std::move(reg_queue_.front());
      reg_queue_.pop_front();
    }
    auto& [d, todo] = item;
    if (todo)
      static_cast<void>(register_now(d.id.owner, d.port, {d.id}));
    // Registered (or the owner is gone): the sender may let go.
    if (d.hold != 0 && !stopped_)
      if (auto holder = connect(d.holder_port))
        caf::anon_send(holder, release_hold_atom::value,
                       std::vector<uint64_t>{d.hold});
  }
}

caf::error worker_context::register_now(uint64_t owner, uint16_t port,
                                        const std::vector<object_id>& ids) {
  caf::actor self;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    self = server_;
  }
  auto peer = connect(port);
  caf::expected<std::vector<object_id>> reply{caf::error{}};
  if (peer)
    reply = watched_request<std::vector<object_id>>(
      sys_, peer, cfg_.fetch_timeout, "borrowing " + to_string(ids.front()),
      borrow_atom::value, ids, process_, self);
  else
    reply = make_error(refs_errc::object_lost,
                       "cannot reach the owner of " + to_string(ids.front())
                         + " at port " + std::to_string(port));
  caf::error err;
  std::vector<object_id> release_now;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!reply) {
      // Only a down message proves the owner dead; a failed connection or
      // a timeout does not.
      if (reply.error() == refs_errc::owner_died)
        borrows_.owner_died(owner, reply.error());
      for (auto& id : ids) {
        borrows_.registration_failed(id);
        release_after_registration_.erase(id); // never counted there
      }
      err = std::move(reply.error());
    } else {
      for (auto& id : ids) {
        bool known = std::find(reply->begin(), reply->end(), id)
                     == reply->end();
        if (known)
          borrows_.registered(id);
        else
          borrows_.registration_failed(id);
        if (release_after_registration_.erase(id) > 0 && known)
          release_now.push_back(id);
      }
      if (!reply->empty())
        err = make_error(refs_errc::unknown_object,
                         to_string(reply->front()) + " is no longer owned");
    }
  }
  if (!release_now.empty() && peer)
    caf::anon_send(peer, release_atom::value, release_now, process_);
  return err;
}

void worker_context::hold_for_transit(const ref_base& x, ref_descriptor& out) {
  transit_.expire();
  out.hold = transit_.hold(
    x, std::chrono::steady_clock::now()
         + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
           cfg_.transit_timeout));
  std::lock_guard<std::mutex> guard{mtx_};
  out.holder_host = "127.0.0.1";
  out.holder_port = port_;
}

void worker_context::release_holds(const std::vector<uint64_t>& tokens) {
  transit_.release(tokens);
}

void worker_context::expire_holds() {
  transit_.expire();
}

void worker_context::stop() {
  {
    std::lock_guard<std::mutex> guard{reg_mtx_};
    stopped_ = true;
  }
  reg_cv_.notify_all();
  if (registrar_.joinable())
    registrar_.join();
  transit_.clear();
}

// -- task side ----------------------------------------------------------------

caf::error worker_context::hold(const std::vector<ref_descriptor>& ds,
                                std::vector<object_id>& held,
                                object_id* failed) {
  if (ds.empty())
    return caf::none;
  auto fail = [failed](const object_id& id, caf::error err) {
    if (failed != nullptr)
      *failed = id;
    return err;
  };
  std::map<uint64_t, std::vector<object_id>> todo; // owner -> new borrows
  std::map<uint64_t, uint16_t> ports;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    caf::error err;
    std::vector<object_id> borrowed;
    for (auto& d : ds) {
      if (d.id.owner == process_) {
        if (!own_.add_local_ref(d.id)) {
          if (!err)
            err = fail(d.id, make_error(refs_errc::unknown_object,
                                        to_string(d.id)));
          continue;
        }
      } else {
        // An owner known dead is no error here: there is nothing left to
        // keep alive, and a get may still find a durable checkpoint's copy
        // (else it fails with owner_died then).
        borrows_.add(d);
        borrowed.push_back(d.id);
      }
      held.push_back(d.id);
    }
    if (err)
      return err; // nothing is being registered; the caller unholds
    for (auto& id : borrows_.start_registration(borrowed)) {
      todo[id.owner].push_back(id);
      if (auto o = borrows_.owner_of(id))
        ports[id.owner] = o->port;
    }
  }
  // Step 2: register with each owner and wait for its answer, so that no
  // release by whoever handed us the refs can overtake the registration.
  // An owner proven dead (a down message) is no error either, as above;
  // an unreachable owner (not proven dead) or one that no longer knows
  // the object is.
  caf::error err;
  std::vector<object_id> unreachable;
  for (auto& [owner, ids] : todo) {
    auto e = register_now(owner, ports[owner], ids);
    if (!e || e == refs_errc::owner_died)
      continue;
    if (e == refs_errc::object_lost) // cannot connect: kept elsewhere?
      unreachable.insert(unreachable.end(), ids.begin(), ids.end());
    else if (!err)
      err = fail(ids.front(), std::move(e));
  }
  if (!unreachable.empty() && !err) {
    // Values a durable checkpoint keeps stay readable without their owner
    // ("Refs in durable state"); any other one is lost.
    caf::actor driver;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      driver = driver_;
    }
    auto kept = driver ? watched_request<std::vector<object_id>>(
                  sys_, driver, cfg_.fetch_timeout, "asking for kept copies",
                  kept_atom::value, unreachable)
                       : caf::expected<std::vector<object_id>>{
                         std::vector<object_id>{}};
    if (!kept || kept->size() < unreachable.size()) {
      // The first one no checkpoint keeps (any, if the driver is silent).
      auto lost = unreachable.front();
      for (auto& id : unreachable)
        if (kept && std::find(kept->begin(), kept->end(), id) == kept->end()) {
          lost = id;
          break;
        }
      err = fail(lost, make_error(refs_errc::object_lost,
                                  "cannot reach the owner of "
                                    + to_string(lost)
                                    + " and no durable checkpoint keeps it"));
    }
  }
  return err;
}

void worker_context::unhold(std::vector<object_id>& held) {
  for (auto& id : held)
    remove_local_ref(id);
  held.clear();
}

std::vector<ref_descriptor>
worker_context::store(const object_id& id, stored_object obj,
                      std::vector<ref_base>&& refs) {
  std::vector<ref_descriptor> result;
  result.reserve(refs.size());
  std::vector<object_id> inner;
  for (auto& r : refs) {
    if (r.context() != this)
      continue; // a ref of another runtime: not ours to hold
    ref_descriptor d;
    d.id = r.id();
    describe(d.id, d);
    result.push_back(std::move(d));
    inner.push_back(r.release()); // the stored copy keeps its count
  }
  store_->put(id, std::move(obj));
  if (!inner.empty()) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto& c = contained_[id];
    c.insert(c.end(), inner.begin(), inner.end());
  }
  return result;
}

void worker_context::store_error(const object_id& id, caf::error err) {
  store_->put(id, stored_object{nullptr, std::move(err)});
}

ref_base worker_context::put(const object_id& id, blob value,
                             std::vector<ref_base>&& refs, bool try_node) {
  stored_object obj;
  // 1. Above the inline limit: sealed once in the node store as this
  //    worker's primary copy (named by `id`, whose owner is this process);
  //    the slot keeps no bytes. A refusal (store full, store gone) keeps
  //    the bytes here instead.
  if (try_node && value.size() > cfg_.inline_limit && node_
      && !put_in_node(id, value)) {
    obj.in_node_store = true;
    obj.node_size = value.size();
  } else {
    obj.value = std::make_shared<const blob>(std::move(value));
  }
  return adopt_put(id, std::move(obj), std::move(refs));
}

ref_base worker_context::put_sealed(const object_id& id, uint64_t size,
                                    std::vector<ref_base>&& refs) {
  stored_object obj;
  obj.in_node_store = true;
  obj.node_size = size;
  return adopt_put(id, std::move(obj), std::move(refs));
}

ref_base worker_context::adopt_put(const object_id& id, stored_object obj,
                                   std::vector<ref_base>&& refs) {
  // 2. Owned here, ready, with the one local ref the returned ref adopts;
  //    the slot takes over the counts of the refs inside the value.
  {
    std::lock_guard<std::mutex> guard{mtx_};
    own_.add_ready(id, nullptr);
  }
  store(id, std::move(obj), std::move(refs));
  return ref_base{id, shared_from_this()};
}

caf::error worker_context::put_in_node(const object_id& id,
                                       const blob& bytes) {
  if (!node_)
    return make_error(actors_errc::invalid_argument, "no node store");
  auto w = node_->create(id, bytes.size());
  if (!w)
    return std::move(w.error());
  std::memcpy(w->data(), bytes.data(), bytes.size());
  return w->seal();
}

caf::expected<node_client::writer>
worker_context::create_in_node(const object_id& id, uint64_t size) {
  if (!node_)
    return make_error(actors_errc::invalid_argument, "no node store");
  return node_->create(id, size);
}

void worker_context::free_in_node(const object_id& id) {
  if (node_)
    node_->free(id);
}

caf::expected<buffer> worker_context::read_node(const object_id& id) {
  if (!node_)
    return make_error(actors_errc::invalid_argument, "no node store");
  return node_->get(id);
}

void worker_context::free_node_copies(std::vector<object_id>& ids) {
  if (!node_)
    return;
  for (auto& id : ids)
    node_->free(id); // not_found: freed already (e.g. the store closed)
  ids.clear();
}

caf::error worker_context::with_bytes(const object_id& id, value_msg& v) {
  if (!v.in_node_store)
    return caf::none;
  auto b = read_node(id);
  if (!b)
    return make_error(refs_errc::object_lost,
                      to_string(id) + " is not in the node store: "
                        + to_string(b.error()));
  v.bytes.assign(b->data(), b->data() + b->size());
  v.in_node_store = false;
  return caf::none;
}

std::optional<caf::expected<buffer>>
worker_context::read_local(const object_id& id) {
  auto obj = store_->get(id);
  if (!obj)
    return std::nullopt;
  if (obj->error)
    return caf::expected<buffer>{obj->error};
  if (obj->in_node_store)
    return read_node(id);
  return caf::expected<buffer>{view_of(std::move(obj->value))};
}

caf::expected<buffer>
worker_context::receive_value(const object_id& id,
                              caf::expected<value_msg> reply,
                              std::vector<object_id>& held,
                              const caf::actor& owner) {
  if (!reply)
    return std::move(reply.error());
  if (auto err = hold(reply->contained, held))
    return err;
  if (reply->in_node_store) {
    // The process asked says: in the node store. The caller's ref
    // (borrowed, so registered with the owner) keeps it there while we
    // map it.
    auto b = read_node(id);
    if (b)
      return b;
    // Gone although our ref keeps it: when its owner (a worker) dies, the
    // driver frees the objects it owned from the node store
    // (fate-sharing). Ask the owner once more to tell that apart from a
    // store failure: a dead owner's watched request ends in owner_died.
    if (owner && id.owner != process_) {
      auto again = watched_request<value_msg>(sys_, owner, cfg_.fetch_timeout,
                                              "checking the owner of "
                                                + to_string(id),
                                              get_atom::value, id);
      if (!again && again.error() == refs_errc::owner_died) {
        std::lock_guard<std::mutex> guard{mtx_};
        borrows_.owner_died(id.owner, again.error());
        return std::move(again.error());
      }
    }
    return make_error(refs_errc::object_lost,
                      to_string(id) + " is not in the node store: "
                        + to_string(b.error()));
  }
  return view_of(std::make_shared<const blob>(std::move(reply->bytes)));
}

caf::expected<buffer>
worker_context::get(const ref_base& x, caf::timespan timeout,
                    std::vector<object_id>& held) {
  if (x.context() != this)
    return make_error(actors_errc::invalid_argument,
                      x.valid() ? "a ref of another process context"
                                : "an empty ref");
  auto& id = x.id();
  if (id.owner == process_) {
    auto obj = read_local(id);
    if (!obj)
      return make_error(refs_errc::unknown_object, to_string(id));
    return std::move(*obj); // its contained refs are held by the stored copy
  }
  // A copy here (a result of a task that ran on this worker, perhaps not
  // even reported to its owner yet: asking the owner would then wait for
  // this very executor until the timeout). The borrow keeps it.
  if (auto local = read_local(id))
    return std::move(*local);
  auto res = get_from_owner(id, timeout, held);
  if (!res && is_fetch_failure(res.error()))
    if (auto kept = kept_copy(id))
      return view_of(std::make_shared<const blob>(std::move(kept->bytes)));
  return res;
}

caf::expected<buffer>
worker_context::get_from_owner(const object_id& id, caf::timespan timeout,
                               std::vector<object_id>& held) {
  caf::actor owner;
  uint16_t port = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto err = borrows_.owner_error(id))
      return err;
    if (auto o = borrows_.owner_of(id))
      port = o->port;
  }
  owner = connect(port);
  if (!owner)
    return make_error(refs_errc::object_lost,
                      "cannot reach the owner of " + to_string(id)
                        + " at port " + std::to_string(port));
  auto reply = watched_request<value_msg>(sys_, owner, timeout,
                                          "getting " + to_string(id),
                                          get_atom::value, id);
  if (!reply && reply.error() == refs_errc::owner_died) {
    std::lock_guard<std::mutex> guard{mtx_};
    borrows_.owner_died(id.owner, reply.error());
  }
  return receive_value(id, std::move(reply), held, owner);
}

caf::expected<buffer>
worker_context::fetch_from(worker_id w, uint16_t port, const object_id& id,
                           std::vector<object_id>& held) {
  auto res = fetch_once(w, port, id, held);
  if (!res && w == 0 && is_fetch_failure(res.error()))
    if (auto kept = kept_copy(id)) // its owner is gone: a durable copy?
      return view_of(std::make_shared<const blob>(std::move(kept->bytes)));
  return res;
}

caf::expected<buffer>
worker_context::fetch_once(worker_id w, uint16_t port, const object_id& id,
                           std::vector<object_id>& held) {
  auto peer = connect(port);
  if (!peer)
    return make_error(refs_errc::object_lost,
                      "cannot reach the process holding " + to_string(id)
                        + " at port " + std::to_string(port));
  auto reply = watched_request<value_msg>(
    sys_, peer, cfg_.fetch_timeout,
    "fetching " + to_string(id) + " from worker " + std::to_string(w),
    fetch_atom::value, id);
  if (!reply && reply.error() == refs_errc::owner_died && w != 0)
    return make_error(refs_errc::object_lost,
                      "worker " + std::to_string(w) + " holding "
                        + to_string(id) + " died");
  // w == 0: the process at `port` owns the object.
  return receive_value(id, std::move(reply), held,
                       w == 0 ? peer : caf::actor{});
}

caf::expected<value_msg> worker_context::kept_copy(const object_id& id) {
  caf::actor driver;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    driver = driver_;
  }
  if (!driver)
    return make_error(refs_errc::object_lost, "no driver to ask for a kept "
                                              "copy of " + to_string(id));
  return watched_request<value_msg>(sys_, driver, cfg_.fetch_timeout,
                                    "reading the kept copy of "
                                      + to_string(id),
                                    kept_atom::value, id);
}

caf::expected<value_msg> worker_context::value_to_keep(const object_id& id,
                                                       uint16_t port) {
  // Here first: objects this worker owns, and results of tasks that ran
  // here (perhaps not even reported to their owner yet: asking the owner
  // would wait for this very executor).
  if (auto here = serve(id); here || id.owner == process_) {
    // A checkpoint keeps bytes: copy a value sealed in the node store.
    if (here)
      if (auto err = with_bytes(id, *here))
        return err;
    return here;
  }
  if (port == 0) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto o = borrows_.owner_of(id))
      port = o->port;
  }
  caf::expected<value_msg> reply{caf::error{}};
  if (auto owner = port != 0 ? connect(port) : caf::actor{})
    reply = watched_request<value_msg>(sys_, owner, cfg_.fetch_timeout,
                                       "reading " + to_string(id)
                                         + " to keep it",
                                       get_atom::value, id);
  else
    reply = make_error(refs_errc::object_lost,
                       "cannot reach the owner of " + to_string(id));
  if (reply) {
    // The owner may say: in this node's store. Copy it for the checkpoint.
    if (auto err = with_bytes(id, *reply))
      return err;
  }
  if (!reply && is_fetch_failure(reply.error()))
    if (auto kept = kept_copy(id)) // kept by an earlier checkpoint
      return kept;
  return reply;
}

// -- server side --------------------------------------------------------------

caf::expected<value_msg> worker_context::serve(const object_id& id) {
  auto obj = store_->get(id);
  if (!obj)
    return make_error(store_errc::not_found, to_string(id));
  if (obj->error)
    return obj->error;
  value_msg result;
  if (obj->in_node_store)
    result.in_node_store = true; // the reader maps it: no bytes travel
  else if (obj->value)
    result.bytes.assign(obj->value->data(),
                        obj->value->data() + obj->value->size());
  std::vector<object_id> inner;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto i = contained_.find(id); i != contained_.end())
      inner = i->second;
  }
  for (auto& oid : inner) {
    ref_descriptor d;
    d.id = oid;
    describe(oid, d);
    result.contained.push_back(std::move(d));
  }
  return result;
}

std::vector<object_id>
worker_context::on_borrow(const std::vector<object_id>& ids, uint64_t borrower,
                          const caf::actor& handle, bool& monitor) {
  std::vector<object_id> unknown;
  std::lock_guard<std::mutex> guard{mtx_};
  monitor = handle && borrower_addrs_.emplace(handle.address(), borrower).second;
  for (auto& id : ids) {
    if (own_.find(id) == nullptr) {
      unknown.push_back(id);
      continue;
    }
    if (borrowers_.add(id, borrower))
      own_.add_borrower(id);
  }
  return unknown;
}

void worker_context::on_release(const std::vector<object_id>& ids,
                                uint64_t borrower) {
  std::vector<object_id> node_frees;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& id : ids)
      if (borrowers_.remove(id, borrower))
        own_.remove_borrower(id);
    node_frees.swap(node_frees_);
  }
  free_node_copies(node_frees);
}

void worker_context::on_down(const caf::actor_addr& who) {
  std::vector<object_id> node_frees;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = borrower_addrs_.find(who);
    if (i == borrower_addrs_.end())
      return;
    auto borrower = i->second;
    borrower_addrs_.erase(i);
    for (auto& id : borrowers_.remove_borrower(borrower))
      own_.remove_borrower(id);
    node_frees.swap(node_frees_);
  }
  free_node_copies(node_frees);
}

void worker_context::free_stored(const std::vector<object_id>& ids) {
  expire_holds();
  // Results of the driver's tasks: the driver frees their node-store
  // copies itself (its `node_frees_`); only the slots go here.
  for (auto& id : ids)
    store_->erase(id);
  std::vector<object_id> node_frees;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    // The refs inside them may have held the last ref to an object this
    // worker owns (whose node-store copy goes then).
    for (auto& id : ids)
      drop_contained(id);
    node_frees.swap(node_frees_);
  }
  free_node_copies(node_frees);
}

process_memory worker_context::memory(worker_id id) const {
  process_memory pm;
  pm.role = "worker";
  pm.pid = static_cast<int32_t>(getpid());
  pm.id = id;
  std::lock_guard<std::mutex> guard{mtx_};
  store_->for_each([&](const object_id& oid, const stored_object& obj) {
    memory_entry e;
    e.id = oid;
    e.size = obj.value ? obj.value->size() : obj.node_size;
    if (auto o = own_.find(oid)) {
      e.state = "owned";
      e.local_refs = o->local_refs;
      e.borrowers = o->borrowers;
    } else {
      e.state = obj.error           ? "failed"
                : obj.in_node_store ? "in node store"
                                    : "stored";
    }
    pm.objects.push_back(std::move(e));
  });
  borrows_.for_each([&](const object_id& oid, const borrow_entry& b) {
    memory_entry e;
    e.id = oid;
    e.state = "borrowed";
    e.local_refs = b.local_refs;
    pm.objects.push_back(std::move(e));
  });
  return pm;
}

size_t worker_context::refs() {
  expire_holds();
  auto holds = transit_.size();
  std::lock_guard<std::mutex> guard{mtx_};
  return own_.size() + borrows_.size() + holds;
}

// -- internals ----------------------------------------------------------------

void worker_context::on_free(const object_id& id, object_entry&&) {
  borrowers_.erase(id);
  // A value this worker sealed in the node store (`put`): its primary copy
  // goes too, after mtx_ is released (a request to the store).
  if (auto obj = store_->get(id); obj && obj->in_node_store)
    node_frees_.push_back(id);
  store_->erase(id);
  drop_contained(id);
}

void worker_context::drop_contained(const object_id& id) {
  auto i = contained_.find(id);
  if (i == contained_.end())
    return;
  auto inner = std::move(i->second);
  contained_.erase(i);
  for (auto& oid : inner) {
    if (oid.owner == process_)
      own_.remove_local_ref(oid);
    else
      drop_borrow(oid);
  }
}

void worker_context::drop_borrow(const object_id& id) {
  auto e = borrows_.find(id);
  bool registering = e != nullptr && e->registering && !e->registered;
  auto tell = borrows_.remove_local_ref(id);
  if (!tell || !*tell)
    return;
  if (registering) {
    // The release waits for the registration's answer (register_now).
    release_after_registration_.insert(id);
    return;
  }
  // Borrowing, step 4: the last local ref is gone; tell the owner.
  if (auto peer = peer_of(id.owner))
    caf::anon_send(peer, release_atom::value, std::vector<object_id>{id},
                   process_);
}

caf::actor worker_context::peer_of(uint64_t owner) const {
  auto o = borrows_.owner_of(object_id{owner, 1});
  if (o == nullptr)
    return {};
  auto i = peers_.find(o->port);
  return i != peers_.end() ? i->second : caf::actor{};
}

caf::actor worker_context::connect(uint16_t port) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto i = peers_.find(port); i != peers_.end())
      return i->second;
  }
  // Every ref server but the driver's is a worker's store actor.
  auto h = sys_.middleman().remote_actor<store_actor>("127.0.0.1", port);
  if (!h)
    return {};
  auto peer = caf::actor_cast<caf::actor>(*h);
  std::lock_guard<std::mutex> guard{mtx_};
  peers_[port] = peer;
  return peer;
}

} // namespace dref::internal
