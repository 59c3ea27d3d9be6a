#include "core/ref_server.hpp"

#include <cstdio>

#include "caf/all.hpp"

#include "core/caf_errors.hpp"
#include "core/process_refs.hpp"

#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"

namespace dref::internal {

namespace {

std::string incarnation_text(uint64_t process) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(process));
  return buf;
}

using clock_type = std::chrono::steady_clock;


void watch(ref_server_pointer self, const caf::actor& peer,
           uint64_t process) {
  auto [i, added] = self->state.monitored.emplace(peer.address(), process);
  if (added)
    self->monitor(peer);
  else if (i->second == 0)
    i->second = process;
}

void send_outbox(ref_server_pointer self);

// Sends what an update queued now if the barrier let something go (an
// answer, a death), else lets the delay batch it.
void after_update(ref_server_pointer self, bool now) {
  auto& refs = *self->state.refs;
  refs.changed().notify_all();
  if (now)
    send_outbox(self);
  else
    refs.settle();
}

void send_registration(ref_server_pointer self, const caf::actor& peer,
                       borrow_request r) {
  auto& refs = *self->state.refs;
  watch(self, peer, r.owner.process);
  auto token = r.token;
  self
    ->request(peer, refs.config().fetch_timeout, borrow_atom::value,
              std::move(r.ids), std::move(r.gens), refs.self())
    .then(
      [self, token](const std::vector<object_id>& unknown) {
        {
          std::lock_guard<std::mutex> guard{self->state.refs->mutex()};
          self->state.refs->core().on_borrow_answer(token, unknown);
        }
        after_update(self, true);
      },
      [self, token](caf::error&) {
        {
          std::lock_guard<std::mutex> guard{self->state.refs->mutex()};
          self->state.refs->core().on_borrow_failed(token);
        }
        after_update(self, true);
      });
}

// The peer `addr.process` is not connected: keep `f`'s message until it is.
template <class F>
void park(ref_server_pointer self, process_address addr, F f) {
  // (`addr` is a copy: `f` may move the message it belongs to.)
  auto& st = self->state;
  auto [i, added] = st.parked.try_emplace(addr.process);
  f(i->second);
  if (!added)
    return; // a connection is being made already
  caf::actor srv = caf::actor_cast<caf::actor>(self);
  st.refs->peers().connect_later(addr, [srv](uint64_t p, caf::actor h) {
    caf::anon_send(srv, peer_atom::value, p, std::move(h));
  });
}

void send_outbox(ref_server_pointer self) {
  auto& refs = *self->state.refs;
  ref_outbox out;
  refs.take(out);
  auto& peers = refs.peers();
  for (auto& r : out.registrations) {
    if (auto h = peers.find(r.owner.process))
      send_registration(self, h, std::move(r));
    else
      park(self, r.owner,
           [&](auto& p) { p.registrations.push_back(std::move(r)); });
  }
  for (auto& r : out.releases) {
    if (auto h = peers.find(r.owner.process))
      self->send(caf::actor_cast<ref_server_actor>(h), release_atom::value,
                 std::move(r.ids), std::move(r.gens), refs.self().process);
    else if (r.owner.valid())
      park(self, r.owner, [&](auto& p) { p.releases.push_back(std::move(r)); });
  }
  for (auto& h : out.hold_releases) {
    if (auto peer = peers.find(h.holder.process))
      self->send(caf::actor_cast<ref_server_actor>(peer),
                 release_hold_atom::value, std::move(h.tokens));
    else if (h.holder.valid())
      park(self, h.holder,
           [&](auto& p) { p.hold_releases.push_back(std::move(h)); });
  }
  for (auto& [w, ids] : out.frees)
    if (auto h = refs.location(w))
      self->send(caf::actor_cast<ref_server_actor>(h), free_atom::value,
                 std::move(ids));
  refs.free_in_node(out.node_frees);
}

// Asks `peer` (the object's owner, or a process keeping a copy) and answers
// `rp` with what it says; its death answers at once.
void forward(ref_server_pointer self, const caf::actor& peer, bool owner,
             const object_id& id, caf::typed_response_promise<value_msg> rp,
             bool node_ok) {
  auto& st = self->state;
  watch(self, peer, owner ? id.owner : 0);
  auto token = st.next_token++;
  st.forwarded.emplace(token, ref_server_state::forward{peer.address(), owner,
                                                        node_ok, id, rp});
  auto finish = [self, token](caf::expected<value_msg> x) {
    auto& fw = self->state.forwarded;
    auto i = fw.find(token);
    if (i == fw.end())
      return; // answered already (its peer went down)
    auto f = std::move(i->second);
    fw.erase(i);
    if (x && x->in_node_store && !f.node_ok)
      // In the node store, but the asker (this process) needs the bytes.
      if (auto err = self->state.refs->with_bytes(f.id, *x))
        x = std::move(err);
    if (x)
      f.rp.deliver(std::move(*x));
    else
      f.rp.deliver(std::move(x.error()));
  };
  auto what = (owner ? "getting " : "fetching ") + to_string(id);
  auto on_value = [finish](value_msg& v) { finish(std::move(v)); };
  // CAF's errors (the holder gone, a timeout) in dref's words: the reply
  // goes on to a `dref::then` or a worker's task, and so to a user.
  auto on_error = [finish, what, owner](caf::error& err) {
    finish(dref_error_of(std::move(err), what,
                         make_error(owner ? refs_errc::owner_died
                                          : refs_errc::object_lost)));
  };
  auto timeout = st.refs->config().fetch_timeout;
  if (owner)
    self->request(peer, timeout, get_atom::value, id).then(on_value, on_error);
  else
    self->request(peer, timeout, fetch_atom::value, id)
      .then(on_value, on_error);
}

// Answers a get of owned object `id` now, or once it is ready.
void serve_owned(ref_server_pointer self, const object_id& id,
                 caf::typed_response_promise<value_msg> rp, bool node_ok) {
  auto& st = self->state;
  auto& refs = *st.refs;
  // Counted before looking, so a `ready` that races with us is sent.
  ++refs.waiting_gets();
  auto plan = refs.plan_get(id, node_ok);
  if (plan.kind == process_refs::serve_plan::pending) {
    st.waiters[id].emplace_back(std::move(rp), node_ok);
    return;
  }
  --refs.waiting_gets();
  switch (plan.kind) {
    case process_refs::serve_plan::value:
      rp.deliver(std::move(plan.msg));
      break;
    case process_refs::serve_plan::at_location:
      forward(self, plan.location, false, id, std::move(rp), node_ok);
      break;
    default:
      rp.deliver(std::move(plan.err));
  }
}

// A get of an object owned elsewhere, from this process (`dref::then`):
// asked from its owner.
void serve_borrowed(ref_server_pointer self, const object_id& id,
                    caf::typed_response_promise<value_msg> rp) {
  auto& refs = *self->state.refs;
  process_address owner;
  caf::error dead;
  {
    std::lock_guard<std::mutex> guard{refs.mutex()};
    dead = refs.core().borrowed().owner_error(id);
    if (auto o = refs.core().borrowed().owner_of(id))
      owner = o->address;
  }
  if (dead) {
    rp.deliver(std::move(dead));
  } else if (auto h = refs.peers().find(id.owner)) {
    forward(self, h, true, id, std::move(rp), false);
  } else if (!owner.valid()) {
    rp.deliver(make_error(refs_errc::object_lost,
                          "the owner of " + to_string(id) + " is unknown"));
  } else {
    park(self, owner, [&](auto& p) { p.gets.emplace_back(id, std::move(rp)); });
  }
}

// A peer was connected in the background (or not): send what waited.
void on_peer(ref_server_pointer self, uint64_t process, caf::actor h) {
  auto& st = self->state;
  auto i = st.parked.find(process);
  if (i == st.parked.end())
    return;
  auto p = std::move(i->second);
  st.parked.erase(i);
  auto& refs = *st.refs;
  if (!h) {
    {
      std::lock_guard<std::mutex> guard{refs.mutex()};
      for (auto& r : p.registrations)
        refs.core().on_borrow_failed(r.token, false); // never sent
    }
    for (auto& [id, rp] : p.gets)
      rp.deliver(make_error(refs_errc::object_lost,
                            "cannot reach the owner of " + to_string(id)));
    after_update(self, true);
    return;
  }
  refs.peers().add(process, h);
  for (auto& r : p.registrations)
    send_registration(self, h, std::move(r));
  for (auto& r : p.releases)
    self->send(caf::actor_cast<ref_server_actor>(h), release_atom::value,
               std::move(r.ids), std::move(r.gens), refs.self().process);
  for (auto& r : p.hold_releases)
    self->send(caf::actor_cast<ref_server_actor>(h), release_hold_atom::value,
               std::move(r.tokens));
  for (auto& [id, rp] : p.gets)
    forward(self, h, true, id, std::move(rp), false);
}

// A monitored peer is gone.
void on_down(ref_server_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto& refs = *st.refs;
  uint64_t process = 0;
  if (auto i = st.monitored.find(dm.source); i != st.monitored.end()) {
    process = i->second;
    st.monitored.erase(i);
  }
  for (auto i = st.forwarded.begin(); i != st.forwarded.end();) {
    if (i->second.peer != dm.source) {
      ++i;
      continue;
    }
    auto& f = i->second;
    f.rp.deliver(f.owner ? make_error(refs_errc::owner_died,
                                      "the owner of " + to_string(f.id)
                                        + " died")
                         : make_error(refs_errc::object_lost,
                                      "the process holding " + to_string(f.id)
                                        + " died"));
    i = st.forwarded.erase(i);
  }
  if (process == 0)
    return;
  refs.peers().remove(process);
  refs.process_gone(process, make_error(refs_errc::owner_died,
                                        "the process owning the object ("
                                          + to_string(dm.source.node())
                                          + ") died"));
  after_update(self, true);
  refs.arm_timer();
}

} // namespace

ref_server_state::~ref_server_state() {
  // The actor ends (its state goes before its attached functors run, so
  // this is the place): nobody will answer what is still waiting.
  auto down = make_error(actors_errc::runtime_down, "the runtime stopped");
  for (auto& [id, rps] : waiters)
    for (auto& [rp, node_ok] : rps)
      rp.deliver(down);
  for (auto& [token, f] : forwarded)
    f.rp.deliver(down);
  for (auto& [p, parked_msgs] : parked)
    for (auto& [id, rp] : parked_msgs.gets)
      rp.deliver(down);
}

ref_server_actor::behavior_type ref_server_fn(ref_server_pointer self,
                                              std::shared_ptr<process_refs>
                                                refs) {
  self->state.refs = std::move(refs);
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  return {
    [self](get_atom, const object_id& id) {
      // Another process on this node maps the node store itself; this
      // process (`dref::then`) gets the bytes. (Read the sender first:
      // making the promise takes it from the message.)
      auto& sender = self->current_sender();
      bool remote = sender != nullptr && sender->node() != self->node();
      auto rp = self->make_response_promise<value_msg>();
      if (id.owner == self->state.refs->self().process)
        serve_owned(self, id, rp, remote);
      else if (remote) // asked as the owner by a descriptor of another run
        rp.deliver(make_error(refs_errc::unknown_object,
                              to_string(id)
                                + " is not owned by this process"));
      else
        serve_borrowed(self, id, rp);
      return rp;
    },
    [self](fetch_atom, const object_id& id) -> caf::result<value_msg> {
      auto v = self->state.refs->serve_copy(id);
      if (!v)
        return std::move(v.error());
      return std::move(*v);
    },
    [self](borrow_atom, const std::vector<object_id>& ids,
           const std::vector<uint64_t>& gens, const process_address& b) {
      auto& refs = *self->state.refs;
      auto sender = caf::actor_cast<caf::actor>(self->current_sender());
      std::vector<object_id> unknown;
      bool dead = false;
      {
        std::lock_guard<std::mutex> guard{refs.mutex()};
        unknown = refs.core().on_borrow(ids, gens, b);
        dead = refs.core().is_dead(b.process);
      }
      // Its death ends its borrows (they linger first).
      if (sender && !dead)
        watch(self, sender, b.process);
      return unknown;
    },
    [self](release_atom, const std::vector<object_id>& ids,
           const std::vector<uint64_t>& gens, uint64_t borrower) {
      auto& refs = *self->state.refs;
      {
        std::lock_guard<std::mutex> guard{refs.mutex()};
        refs.core().on_release(ids, gens, borrower);
      }
      refs.settle();
    },
    [self](release_hold_atom, const std::vector<uint64_t>& tokens) {
      auto& refs = *self->state.refs;
      {
        std::lock_guard<std::mutex> guard{refs.mutex()};
        refs.core().release_holds(tokens);
      }
      refs.settle();
    },
    [self](free_atom, const std::vector<object_id>& ids) {
      self->state.refs->drop_copies(ids);
    },
    [self](memory_atom) {
      auto& refs = *self->state.refs;
      return refs.memory(refs.config().id);
    },
    [self](flush_atom) { send_outbox(self); },
    [self](ready_atom, const std::vector<object_id>& ids) {
      auto& st = self->state;
      for (auto& id : ids) {
        auto i = st.waiters.find(id);
        if (i == st.waiters.end())
          continue;
        auto rps = std::move(i->second);
        st.waiters.erase(i);
        st.refs->waiting_gets() -= rps.size();
        for (auto& [rp, node_ok] : rps)
          serve_owned(self, id, std::move(rp), node_ok);
      }
    },
    [self](peer_atom, uint64_t process, caf::actor& h) {
      on_peer(self, process, std::move(h));
    },
    [self](gone_atom, uint64_t process) {
      auto& refs = *self->state.refs;
      refs.peers().remove(process);
      refs.process_gone(process,
                        make_error(refs_errc::owner_died,
                                   "the process owning the object (incarnation "
                                     + incarnation_text(process) + ") died"));
      after_update(self, true);
      refs.arm_timer();
    },
    [self](tick_atom) {
      auto& refs = *self->state.refs;
      {
        std::lock_guard<std::mutex> guard{refs.mutex()};
        refs.core().expire(clock_type::now());
      }
      refs.settle();
      refs.arm_timer();
    },
  };
}

} // namespace dref::internal
