// Reading a value in any process (docs/architecture.md, "Reading a
// value"): its own copy, the node store, its owner, or a process keeping a
// copy; each wait bounded.

#include "core/process_refs.hpp"

#include <algorithm>

#include "core/read_errors.hpp"
#include "core/blocking.hpp"
#include "core/watched_request.hpp"

#include "dref/actors/atoms.hpp"
#include "dref/actors/config.hpp"
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

} // namespace

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
      blocking_scope waiting; // a task thread hands its slot on meanwhile
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
  if (!peer) // no process listens there any more: it is gone
    return make_error(refs_errc::owner_died,
                      "the owner of " + to_string(id) + " at "
                        + to_string(owner) + " cannot be reached: it died");
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
    // No process listens there any more: the owner (or holder) is gone.
    res = owner ? make_error(refs_errc::owner_died,
                             "the owner of " + to_string(id) + " at "
                               + to_string(from)
                               + " cannot be reached: it died")
                : make_error(refs_errc::object_lost,
                             "cannot reach the process holding "
                               + to_string(id) + " at " + to_string(from));
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

std::vector<bool>
process_refs::wait_ready(const std::vector<const ref_base*>& xs, size_t n,
                         caf::timespan timeout) {
  n = std::min(n, xs.size());
  auto deadline = timeout == no_timeout ? clock_type::time_point::max()
                                        : deadline_of(timeout);
  std::vector<bool> ready(xs.size(), false);
  std::unique_lock<std::mutex> lk{mtx_};
  auto& owned = core_.owned();
  bool timed_out = false;
  for (;;) {
    size_t count = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!ready[i]) {
        auto e = owned.find(xs[i]->id());
        ready[i] = xs[i]->context() != this || e == nullptr
                   || e->state != object_state::pending;
      }
      count += ready[i] ? 1 : 0;
    }
    if (count >= n || stopped_ || timed_out)
      return ready;
    blocking_scope waiting; // a task thread hands its slot on meanwhile
    if (deadline == clock_type::time_point::max())
      cv_.wait(lk);
    else
      timed_out = cv_.wait_until(lk, deadline) == std::cv_status::timeout;
  }
}

} // namespace dref::internal
