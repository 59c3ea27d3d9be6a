#include "core/process_refs.hpp"

#include <algorithm>
#include <unistd.h>

#include "caf/send.hpp"

#include "core/read_errors.hpp"
#include "core/ref_server.hpp"
#include "core/blocking.hpp"
#include "core/watched_request.hpp"
#include "core/call_site.hpp"

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
  int send = -1; // -1: nothing to send, 0: soon, 1: at once
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.remove_local_ref(id);
    if (!core_.take_dirty())
      return; // the common case: nothing was freed or released
    core_.take_node_frees(node_frees);
    if (core_.has_sendable())
      send = urgent_locked() ? 1 : 0;
  }
  free_in_node(node_frees);
  if (send >= 0)
    request_send(send == 1);
}

void process_refs::describe(const object_id& id, ref_descriptor& out) const {
  std::lock_guard<std::mutex> guard{mtx_};
  core_.describe(id, out);
}

void process_refs::adopt(const ref_descriptor& d) noexcept {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.adopt(d);
    if (!core_.take_dirty() || !core_.has_sendable())
      return; // an owned ref, or a borrow already registered
  }
  request_send(true); // a registration (or a transit hold's release)
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

bool process_refs::urgent_locked() const {
  return core_.has_open_registrations()
         || core_.releases_pending() >= max_queued;
}

void process_refs::schedule_send(bool now) {
  if (stopped_ || !server_)
    return;
  if (!now) {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.take_dirty();
    now = urgent_locked();
  }
  request_send(now);
}

void process_refs::request_send(bool now) {
  if (stopped_ || !server_)
    return;
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
  int send = -1;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.take_dirty();
    core_.take_node_frees(node_frees);
    if (core_.has_sendable())
      send = urgent_locked() ? 1 : 0;
  }
  free_in_node(node_frees);
  if (send >= 0)
    request_send(send == 1);
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
  if (refs.empty()) { // the common case: no ref inside, no lock
    copies_->put(id, std::move(obj));
    return {};
  }
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

void process_refs::process_gone(uint64_t process, caf::error why) {
  if (process == 0 || process == self().process)
    return;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    core_.on_process_down(process, std::move(why),
                          std::chrono::steady_clock::now());
  }
  std::vector<object_id> orphans;
  copies_->for_each([&](const object_id& id, const stored_object&) {
    if (id.owner == process)
      orphans.push_back(id);
  });
  drop_copies(orphans); // settles too
}

void process_refs::drop_copies(const std::vector<object_id>& ids) {
  if (ids.empty())
    return;
  for (auto& id : ids)
    copies_->erase(id);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& id : ids)
      core_.drop_copy(id);
  }
  settle();
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
  blocking_scope waiting; // a task thread hands its slot on meanwhile
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
