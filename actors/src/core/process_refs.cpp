#include "core/process_refs.hpp"

#include <algorithm>
#include <unistd.h>

#include "caf/send.hpp"

#include "core/read_errors.hpp"
#include "core/ref_server.hpp"
#include "core/watched_request.hpp"
#include "introspection/call_site.hpp"

#include "dref/actors/atoms.hpp"
#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

namespace dref::internal {

namespace {

using clock_type = std::chrono::steady_clock;

clock_type::time_point deadline_of(caf::timespan timeout) {
  if (timeout == no_timeout)
    return clock_type::time_point::max();
  return clock_type::now()
         + std::chrono::duration_cast<clock_type::duration>(timeout);
}

std::string ms_text(caf::timespan t) {
  return std::to_string(
           std::chrono::duration_cast<std::chrono::milliseconds>(t).count())
         + " ms";
}

// At most this many protection-ending messages wait for a batch.
constexpr size_t max_queued = 4096;

} // namespace

process_refs::process_refs(caf::actor_system& sys, settings cfg)
  : sys_(sys),
    cfg_(std::move(cfg)),
    core_(cfg_.core),
    copies_(std::make_shared<local_store>()),
    peers_(sys, cfg_.fetch_timeout) {
  // nop
}

process_refs::~process_refs() {
  stop();
}

// -- set-up -------------------------------------------------------------------

void process_refs::start() {
  server_ = caf::actor_cast<caf::actor>(
    sys_.spawn(ref_server_fn, shared_from_this()));
}

void process_refs::set_node(std::shared_ptr<node_access> node) {
  std::atomic_store(&node_, std::move(node));
}

void process_refs::set_kept_copies(kept_copy_fn copy, kept_ids_fn ids) {
  kept_copy_ = std::move(copy);
  kept_ids_ = std::move(ids);
}

void process_refs::set_locations(location_fn f) {
  locations_ = std::move(f);
}

void process_refs::set_port(uint16_t port) {
  std::lock_guard<std::mutex> guard{mtx_};
  cfg_.core.self.port = port;
  core_.set_port(port);
}

void process_refs::stop() {
  if (stopped_.exchange(true))
    return;
  peers_.stop();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.clear_holds();
  }
  cv_.notify_all();
  if (server_)
    caf::anon_send_exit(server_, caf::exit_reason::user_shutdown);
}

caf::actor process_refs::server() const {
  return server_;
}

std::shared_ptr<node_access> process_refs::node() const {
  return std::atomic_load(&node_);
}

// -- ref_context --------------------------------------------------------------

void process_refs::add_local_ref(const object_id& id) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  core_.add_local_ref(id);
}

void process_refs::remove_local_ref(const object_id& id) noexcept {
  std::vector<object_id> node_frees;
  bool send = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.remove_local_ref(id);
    core_.take_node_frees(node_frees);
    send = core_.has_sendable();
  }
  free_in_node(node_frees);
  if (send)
    schedule_send();
}

void process_refs::describe(const object_id& id, ref_descriptor& out) const {
  std::lock_guard<std::mutex> guard{mtx_};
  core_.describe(id, out);
}

void process_refs::adopt(const ref_descriptor& d) noexcept {
  bool send = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.adopt(d);
    send = core_.has_sendable();
  }
  if (send)
    schedule_send(true);
}

void process_refs::hold_for_transit(const ref_base& x, ref_descriptor& out) {
  std::lock_guard<std::mutex> guard{mtx_};
  core_.hold_for_transit(x.id(), out, clock_type::now());
  // The ref server expires it (its tick is armed when it sends).
  if (server_)
    caf::delayed_anon_send(server_,
                           std::chrono::duration_cast<caf::timespan>(
                             cfg_.core.transit_timeout)
                             + std::chrono::milliseconds{100},
                           tick_atom::value);
}

// -- sending ------------------------------------------------------------------

void process_refs::ready(std::vector<object_id> ids) {
  cv_.notify_all();
  if (!ids.empty() && waiting_gets_ > 0 && server_)
    caf::anon_send(server_, ready_atom::value, std::move(ids));
}

void process_refs::schedule_send(bool now) {
  if (stopped_ || !server_)
    return;
  if (!now) {
    std::lock_guard<std::mutex> guard{mtx_};
    now = core_.has_open_registrations()
          || core_.releases_pending() >= max_queued;
  }
  if (now) {
    if (!send_pending_.exchange(true))
      caf::anon_send(server_, flush_atom::value);
  } else if (!send_soon_.exchange(true)) {
    caf::delayed_anon_send(server_, cfg_.send_delay, flush_atom::value);
  }
}

void process_refs::take(ref_outbox& out) {
  send_pending_ = false;
  send_soon_ = false;
  std::lock_guard<std::mutex> guard{mtx_};
  core_.take(out);
}

void process_refs::settle() {
  std::vector<object_id> node_frees;
  bool send = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.take_node_frees(node_frees);
    send = core_.has_sendable();
  }
  free_in_node(node_frees);
  if (send)
    schedule_send();
}

void process_refs::arm_timer() {
  std::optional<clock_type::time_point> due;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    due = core_.next_deadline();
  }
  if (!due || !server_ || stopped_)
    return;
  auto wait = std::max(*due - clock_type::now(), clock_type::duration{0});
  caf::delayed_anon_send(server_,
                         std::chrono::duration_cast<caf::timespan>(wait)
                           + std::chrono::milliseconds{1},
                         tick_atom::value);
}

caf::actor process_refs::location(worker_id w) {
  std::lock_guard<std::mutex> guard{mtx_};
  return locations_ ? locations_(w) : caf::actor{};
}

void process_refs::free_in_node(std::vector<object_id>& ids) {
  if (ids.empty())
    return;
  if (auto n = node())
    for (auto& id : ids)
      n->free(id);
  ids.clear();
}

// -- copies -------------------------------------------------------------------

std::vector<ref_descriptor>
process_refs::keep_copy(const object_id& id, stored_object obj,
                        std::vector<ref_base>&& refs) {
  std::vector<object_id> inner;
  inner.reserve(refs.size());
  for (auto& r : refs)
    if (r.context() == this)
      inner.push_back(r.release()); // the copy keeps its count
  copies_->put(id, std::move(obj));
  std::lock_guard<std::mutex> guard{mtx_};
  core_.adopt_in_copy(id, inner);
  return core_.copy_contained(id);
}

void process_refs::drop_copies(const std::vector<object_id>& ids) {
  for (auto& id : ids)
    copies_->erase(id);
  std::vector<object_id> node_frees;
  bool send = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& id : ids)
      core_.drop_copy(id);
    core_.take_node_frees(node_frees);
    send = core_.has_sendable();
  }
  free_in_node(node_frees);
  if (send)
    schedule_send();
}

std::optional<caf::expected<buffer>>
process_refs::read_copy(const object_id& id) {
  auto obj = copies_->get(id);
  if (!obj)
    return std::nullopt;
  if (obj->error)
    return caf::expected<buffer>{obj->error};
  if (obj->in_node_store)
    return read_node(id);
  return caf::expected<buffer>{view_of(std::move(obj->value))};
}

caf::expected<buffer> process_refs::read_node(const object_id& id) {
  auto n = node();
  if (!n)
    return make_error(store_errc::not_found,
                      "this process has no node store");
  return n->get(id);
}

// -- holding ------------------------------------------------------------------

caf::error process_refs::hold(const std::vector<ref_descriptor>& ds,
                              std::vector<object_id>& held,
                              object_id* failed) {
  if (ds.empty())
    return caf::none;
  std::vector<uint64_t> tokens;
  std::vector<object_id> borrowed;
  caf::error err;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& d : ds) {
      if (core_.owns(d.id) && core_.owned().find(d.id) == nullptr) {
        if (!err) {
          err = make_error(refs_errc::unknown_object, to_string(d.id));
          if (failed != nullptr)
            *failed = d.id;
        }
        continue;
      }
      auto token = core_.adopt(d);
      if (token != 0
          && std::find(tokens.begin(), tokens.end(), token) == tokens.end())
        tokens.push_back(token);
      if (!core_.owns(d.id))
        borrowed.push_back(d.id);
      held.push_back(d.id);
    }
  }
  if (!tokens.empty())
    schedule_send(true);
  if (err || !cfg_.wait_for_registrations)
    return err;
  // Borrowing, step 2: wait for the owners' answers, so that no release of
  // whoever handed us the refs can overtake the registrations.
  wait_registered(tokens);
  return check_held(borrowed, failed);
}

void process_refs::wait_registered(const std::vector<uint64_t>& tokens) {
  if (tokens.empty())
    return;
  auto deadline = deadline_of(cfg_.fetch_timeout + std::chrono::seconds{1});
  std::unique_lock<std::mutex> lk{mtx_};
  cv_.wait_until(lk, deadline, [&] {
    return stopped_
           || std::none_of(tokens.begin(), tokens.end(), [&](uint64_t t) {
                return core_.registration_pending(t);
              });
  });
}

caf::error process_refs::check_held(const std::vector<object_id>& ids,
                                    object_id* failed) {
  auto fail = [failed](const object_id& id, caf::error err) {
    if (failed != nullptr)
      *failed = id;
    return err;
  };
  // An owner proven dead is no error (a read says so, or finds a durable
  // copy); one that refused the registration is; one that could not be
  // reached is, unless a durable checkpoint keeps the value.
  std::vector<object_id> unreachable;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& id : ids) {
      auto e = core_.borrowed().find(id);
      if (e == nullptr || e->registered || core_.borrowed().owner_error(id))
        continue;
      if (e->refused)
        return fail(id, make_error(refs_errc::unknown_object,
                                   to_string(id) + " is no longer owned"));
      if (e->registering != 0)
        return fail(id, make_error(actors_errc::timeout,
                                   "the owner of " + to_string(id)
                                     + " did not answer the borrow "
                                       "registration"));
      unreachable.push_back(id);
    }
  }
  if (unreachable.empty())
    return caf::none;
  // Values a durable checkpoint keeps stay readable without their owner
  // ("Refs in durable state"); any other one is lost.
  auto kept = kept_ids_ ? kept_ids_(unreachable) : std::vector<object_id>{};
  for (auto& id : unreachable)
    if (std::find(kept.begin(), kept.end(), id) == kept.end())
      return fail(id, make_error(refs_errc::object_lost,
                                 "cannot reach the owner of " + to_string(id)
                                   + " and no durable checkpoint keeps it"));
  return caf::none;
}

void process_refs::unhold(std::vector<object_id>& held) {
  for (auto& id : held)
    remove_local_ref(id);
  held.clear();
}

// -- reading ------------------------------------------------------------------

caf::expected<buffer> process_refs::read(const ref_base& x,
                                         caf::timespan timeout,
                                         std::vector<object_id>& held) {
  if (x.context() != this)
    return make_error(actors_errc::invalid_argument,
                      x.valid() ? "a ref of another runtime or process"
                                : "an empty ref");
  auto& id = x.id();
  if (core_.owns(id))
    return read_own(id, timeout); // the entry holds the refs inside
  // A copy here (a result of a task that ran in this process, perhaps not
  // even reported to its owner yet: asking the owner would then wait for
  // this very process). The caller's borrow keeps it.
  if (auto local = read_copy(id))
    return std::move(*local);
  auto res = read_borrowed(id, timeout, held);
  if (!res && is_fetch_failure(res.error()))
    if (auto kept = kept_copy(id))
      return view_of(std::make_shared<const blob>(std::move(kept->bytes)));
  return res;
}

caf::expected<buffer> process_refs::read_own(const object_id& id,
                                               caf::timespan timeout) {
  auto deadline = deadline_of(timeout);
  caf::actor from;
  bool in_node = false;
  {
    std::unique_lock<std::mutex> lk{mtx_};
    for (;;) {
      auto e = core_.owned().find(id);
      if (e == nullptr)
        return make_error(refs_errc::unknown_object, to_string(id));
      if (e->state == object_state::failed)
        return e->error;
      if (e->state == object_state::ready) {
        if (e->value)
          return view_of(e->value);
        in_node = std::find(e->locations.begin(), e->locations.end(),
                            node_location)
                  != e->locations.end();
        if (!in_node && locations_)
          for (auto w : e->locations)
            if (auto h = locations_(w)) {
              from = std::move(h);
              break;
            }
        if (!in_node && !from)
          return make_error(refs_errc::object_lost, to_string(id));
        break;
      }
      if (stopped_)
        return make_error(actors_errc::runtime_down, "the runtime stopped");
      if (deadline == clock_type::time_point::max())
        cv_.wait(lk);
      else if (cv_.wait_until(lk, deadline) == std::cv_status::timeout) {
        auto again = core_.owned().find(id);
        if (again != nullptr && again->state == object_state::pending)
          return make_error(actors_errc::timeout,
                            "object " + to_string(id) + " not ready after "
                              + ms_text(timeout));
      }
    }
  }
  if (in_node) // read in place: the caller's ref keeps it from being freed
    return read_node(id);
  // The value stays at a worker: fetch it (watched: a holder that dies
  // mid-transfer ends the read at once, not at the timeout).
  auto limit = timeout == no_timeout ? cfg_.fetch_timeout
                                     : std::min(timeout, cfg_.fetch_timeout);
  auto reply = watched_request<value_msg>(sys_, from, limit,
                                          "fetching " + to_string(id),
                                          fetch_atom::value, id);
  if (!reply) {
    if (reply.error() == refs_errc::owner_died)
      return make_error(refs_errc::object_lost,
                        "the worker holding " + to_string(id)
                          + " died during the transfer");
    return std::move(reply.error());
  }
  if (reply->in_node_store)
    return read_node(id);
  return view_of(std::make_shared<const blob>(std::move(reply->bytes)));
}

caf::expected<buffer>
process_refs::read_borrowed(const object_id& id, caf::timespan timeout,
                            std::vector<object_id>& held) {
  process_address owner;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (core_.borrowed().find(id) == nullptr)
      return make_error(refs_errc::unknown_object, to_string(id));
    if (auto dead = core_.borrowed().owner_error(id))
      return dead;
    if (auto o = core_.borrowed().owner_of(id))
      owner = o->address;
  }
  auto limit = timeout == no_timeout ? cfg_.fetch_timeout : timeout;
  auto peer = peers_.connect(owner);
  if (!peer)
    return make_error(refs_errc::object_lost,
                      "cannot reach the owner of " + to_string(id) + " at "
                        + to_string(owner));
  auto reply = watched_request<value_msg>(sys_, peer, limit,
                                          "getting " + to_string(id),
                                          get_atom::value, id);
  if (!reply && reply.error() == refs_errc::owner_died) {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.on_process_down(id.owner, reply.error(), clock_type::now());
  }
  return receive_value(id, std::move(reply), held, peer);
}

caf::expected<buffer>
process_refs::fetch_from(const process_address& from, bool owner,
                         const object_id& id, std::vector<object_id>& held) {
  auto peer = peers_.connect(from);
  caf::expected<buffer> res{caf::error{}};
  if (!peer) {
    res = make_error(refs_errc::object_lost,
                     "cannot reach the process holding " + to_string(id)
                       + " at " + to_string(from));
  } else {
    auto what = "fetching " + to_string(id);
    auto reply = owner ? watched_request<value_msg>(sys_, peer,
                                                    cfg_.fetch_timeout, what,
                                                    get_atom::value, id)
                       : watched_request<value_msg>(sys_, peer,
                                                    cfg_.fetch_timeout, what,
                                                    fetch_atom::value, id);
    if (!reply && reply.error() == refs_errc::owner_died && !owner)
      reply = make_error(refs_errc::object_lost,
                         "the process holding " + to_string(id) + " ("
                           + to_string(from) + ") died");
    res = receive_value(id, std::move(reply), held,
                        owner ? peer : caf::actor{});
  }
  if (!res && owner && is_fetch_failure(res.error()))
    if (auto kept = kept_copy(id)) // its owner is gone: a durable copy?
      return view_of(std::make_shared<const blob>(std::move(kept->bytes)));
  return res;
}

caf::expected<buffer>
process_refs::receive_value(const object_id& id,
                            caf::expected<value_msg> reply,
                            std::vector<object_id>& held,
                            const caf::actor& owner) {
  if (!reply)
    return std::move(reply.error());
  if (auto err = hold(reply->contained, held))
    return err;
  if (!reply->in_node_store)
    return view_of(std::make_shared<const blob>(std::move(reply->bytes)));
  // The process asked says: in the node store. The caller's ref keeps it
  // there while we map it.
  auto b = read_node(id);
  if (b)
    return b;
  // Gone although our ref keeps it: only its owner's death frees it early
  // (the node frees a dead process's objects: fate-sharing). Tell that
  // apart from a store failure.
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (auto dead = core_.borrowed().owner_error(id))
      return dead;
  }
  if (owner && !core_.owns(id)) {
    auto again = watched_request<value_msg>(sys_, owner, cfg_.fetch_timeout,
                                            "checking the owner of "
                                              + to_string(id),
                                            get_atom::value, id);
    if (!again && again.error() == refs_errc::owner_died) {
      std::lock_guard<std::mutex> guard{mtx_};
      core_.on_process_down(id.owner, again.error(), clock_type::now());
      return std::move(again.error());
    }
  }
  return make_error(refs_errc::object_lost,
                    to_string(id) + " is not in the node store: "
                      + to_string(b.error()));
}

caf::expected<value_msg> process_refs::kept_copy(const object_id& id) {
  if (!kept_copy_)
    return make_error(refs_errc::object_lost,
                      "no durable checkpoint keeps " + to_string(id));
  return kept_copy_(id);
}

caf::error process_refs::with_bytes(const object_id& id, value_msg& v) {
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

// -- serving ------------------------------------------------------------------

process_refs::serve_plan process_refs::plan_get(const object_id& id,
                                                bool node_ok) {
  serve_plan plan;
  bool copy_from_node = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto e = core_.owned().find(id);
    if (e == nullptr) {
      plan.err = make_error(refs_errc::unknown_object, to_string(id));
      return plan;
    }
    if (e->state == object_state::failed) {
      plan.err = e->error;
      return plan;
    }
    if (e->state == object_state::pending) {
      plan.kind = serve_plan::pending;
      return plan;
    }
    if (e->value) {
      plan.kind = serve_plan::value;
      plan.msg = value_msg{*e->value, core_.owned_contained(id)};
      return plan;
    }
    if (std::find(e->locations.begin(), e->locations.end(), node_location)
        != e->locations.end()) {
      plan.kind = serve_plan::value;
      plan.msg.contained = core_.owned_contained(id);
      plan.msg.in_node_store = true; // the reader maps it itself
      copy_from_node = !node_ok;     // a CAF message needs its own copy
    } else if (locations_) {
      for (auto w : e->locations)
        if (auto h = locations_(w)) {
          plan.kind = serve_plan::at_location;
          plan.location = std::move(h);
          break;
        }
    }
    if (plan.kind == serve_plan::error) {
      plan.err = make_error(refs_errc::object_lost, to_string(id));
      return plan;
    }
  }
  if (copy_from_node)
    if (auto err = with_bytes(id, plan.msg)) {
      plan.kind = serve_plan::error;
      plan.err = std::move(err);
    }
  return plan;
}

caf::expected<value_msg> process_refs::serve_copy(const object_id& id) {
  auto obj = copies_->get(id);
  if (!obj)
    return make_error(store_errc::not_found, to_string(id));
  if (obj->error)
    return obj->error;
  value_msg result;
  if (obj->in_node_store)
    result.in_node_store = true; // every asker is on this node
  else if (obj->value)
    result.bytes.assign(obj->value->data(),
                        obj->value->data() + obj->value->size());
  std::lock_guard<std::mutex> guard{mtx_};
  result.contained = core_.copy_contained(id);
  return result;
}

// -- introspection ------------------------------------------------------------

process_memory process_refs::memory(worker_id id) const {
  process_memory pm;
  pm.role = cfg_.role;
  pm.pid = static_cast<int32_t>(::getpid());
  pm.id = id;
  std::vector<const void*> sites;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.owned().for_each([&](const object_id& oid, const object_entry& e) {
      memory_entry m;
      m.id = oid;
      m.state = to_string(e.state);
      m.size = e.size;
      m.local_refs = e.local_refs;
      m.submitted_refs = e.submitted_refs;
      m.borrowers = e.borrowers;
      m.locations = e.locations.to_vector();
      m.owner_copy = e.value != nullptr;
      if (e.value)
        m.size = e.value->size();
      if (e.made_by)
        m.made_by = e.made_by->function;
      pm.objects.push_back(std::move(m));
      sites.push_back(e.call_site);
    });
    core_.borrowed().for_each([&](const object_id& oid,
                                  const borrow_entry& b) {
      memory_entry m;
      m.id = oid;
      m.state = "borrowed";
      m.local_refs = b.local_refs;
      pm.objects.push_back(std::move(m));
      sites.push_back(nullptr);
    });
  }
  copies_->for_each([&](const object_id& oid, const stored_object& obj) {
    memory_entry m;
    m.id = oid;
    m.size = obj.value ? obj.value->size() : obj.node_size;
    m.state = obj.error           ? "failed copy"
              : obj.in_node_store ? "copy in node store"
                                  : "copy";
    pm.objects.push_back(std::move(m));
    sites.push_back(nullptr);
  });
  // Symbolize outside the lock.
  auto names = describe_call_sites(sites);
  for (size_t i = 0; i < names.size(); ++i)
    pm.objects[i].call_site = std::move(names[i]);
  return pm;
}

size_t process_refs::refs() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return core_.owned().size() + core_.borrowed().size()
         + core_.transit_holds() + core_.lingering_holds();
}

std::pair<uint64_t, uint64_t> process_refs::values() const {
  uint64_t count = copies_->count();
  uint64_t bytes = copies_->bytes();
  std::lock_guard<std::mutex> guard{mtx_};
  core_.owned().for_each([&](const object_id&, const object_entry& e) {
    ++count;
    if (e.value)
      bytes += e.value->size();
  });
  return {count, bytes};
}

size_t process_refs::pending_registrations() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return core_.registrations_pending();
}

size_t process_refs::pending_releases() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return core_.releases_pending();
}

size_t process_refs::transit_holds() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return core_.transit_holds();
}

} // namespace dref::internal
