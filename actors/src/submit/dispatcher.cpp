#include "submit/dispatcher.hpp"

#include <algorithm>
#include <string>

#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"

namespace dref::internal {

namespace {

bool has_location(const object_entry& e, worker_id w) {
  return std::find(e.locations.begin(), e.locations.end(), w)
         != e.locations.end();
}

} // namespace

void dispatcher::set_caller(std::string caller, bool resend_durable_calls) {
  caller_ = std::move(caller);
  resend_ = resend_durable_calls;
}

std::shared_ptr<const task_spec>
dispatcher::numbered(const std::shared_ptr<const task_spec>& t,
                     const actor_state& a) {
  if (a.durable.empty()
      || t->kind != static_cast<uint8_t>(task_kind::actor_call))
    return t;
  auto c = std::make_shared<task_spec>(*t);
  c->caller = caller_;
  c->seq = ++durable_calls_[a.durable];
  return c;
}

void dispatcher::add_worker(worker_id w, process_address address) {
  workers_[w].address = std::move(address);
  unavailable_ = caf::error{};
  // Durable actors whose worker died when no other was left go here.
  for (auto& [id, a] : actors_)
    if (a.worker == no_worker)
      a.worker = w;
}

void dispatcher::set_unavailable(caf::error err) {
  unavailable_ = std::move(err);
}

void dispatcher::fail_held(const caf::error& err, dispatch_result& out) {
  for (auto& t : held_)
    fail(t, err, out);
  held_.clear();
  // Durable actors waiting for a worker: none is coming.
  for (auto i = actors_.begin(); i != actors_.end();) {
    if (i->second.worker != no_worker) {
      ++i;
      continue;
    }
    for (auto& t : i->second.queue)
      fail(t, err, out);
    blocked_actors_.erase(i->first);
    dead_actors_.emplace(i->first, err);
    i = actors_.erase(i);
  }
}

void dispatcher::remove_worker(
  worker_id w, dispatch_result& out,
  const std::map<uint64_t, std::shared_ptr<const task_spec>>& restores) {
  if (workers_.erase(w) == 0)
    return;
  for (auto i = stale_.begin(); i != stale_.end();)
    i = i->first.second == w ? stale_.erase(i) : std::next(i);
  auto died = [w] {
    return make_error(actors_errc::worker_died,
                      "worker " + std::to_string(w) + " died");
  };
  // Durable actors that move: take their in-flight calls back, in order.
  std::map<uint64_t, std::vector<std::pair<uint64_t,
                                           std::shared_ptr<const task_spec>>>>
    resend;
  for (auto& [id, a] : actors_)
    if (a.worker == w && (restores.count(id) > 0 || !a.durable.empty()))
      resend[id];
  for (auto i = in_flight_.begin(); i != in_flight_.end();) {
    if (i->second.worker != w) {
      ++i;
      continue;
    }
    auto spec = std::move(i->second.spec);
    auto seq = i->second.seq;
    i = in_flight_.erase(i);
    auto r = resend.find(spec->actor);
    if (spec->kind != static_cast<uint8_t>(task_kind::function)
        && r != resend.end()) {
      r->second.emplace_back(seq, std::move(spec));
      continue;
    }
    if (spec->result.valid())
      out.failures.emplace_back(spec->result, died());
    out.finished.push_back(std::move(spec));
  }
  for (auto i = actors_.begin(); i != actors_.end();) {
    if (i->second.worker != w) {
      ++i;
      continue;
    }
    auto r = resend.find(i->first);
    auto restore = restores.find(i->first);
    auto is_spawn = [](const auto& x) {
      return x.second->kind == static_cast<uint8_t>(task_kind::actor_create)
             || x.second->kind
                  == static_cast<uint8_t>(task_kind::actor_restore);
    };
    // A durable actor without a checkpoint moves only if its spawn task
    // was in flight (nothing of it reached the disk: the spawn runs again).
    if (r != resend.end() && restore == restores.end()
        && std::none_of(r->second.begin(), r->second.end(), is_spawn)) {
      for (auto& [seq, spec] : r->second)
        fail(spec, died(), out);
      resend.erase(r);
      r = resend.end();
    }
    if (r != resend.end()) {
      auto& a = i->second;
      std::sort(r->second.begin(), r->second.end(),
                [](auto& x, auto& y) { return x.first < y.first; });
      std::deque<std::shared_ptr<const task_spec>> q;
      if (restore != restores.end())
        q.push_back(restore->second);
      for (auto& [seq, spec] : r->second)
        if (spec->kind != static_cast<uint8_t>(task_kind::actor_create)
            || restore == restores.end())
          q.push_back(std::move(spec));
        else if (spec->result.valid()) // a create replaced by the restore
          out.failures.emplace_back(spec->result, died());
      for (auto& t : a.queue)
        q.push_back(std::move(t));
      a.queue = std::move(q);
      // No worker left: the actor waits (held) for the next one to
      // register, unless none is coming (`fail_held`).
      a.worker = workers_.empty() ? no_worker : least_loaded();
      blocked_actors_.insert(i->first);
      ++i;
      continue;
    }
    auto err = make_error(actors_errc::worker_died,
                          "actor " + std::to_string(i->first)
                            + " died with worker " + std::to_string(w));
    for (auto& t : i->second.queue)
      fail(t, err, out);
    blocked_actors_.erase(i->first);
    dead_actors_.emplace(i->first, std::move(err));
    i = actors_.erase(i);
  }
}

void dispatcher::rollback(uint64_t actor,
                          std::shared_ptr<const task_spec> restore,
                          const caf::error& err, dispatch_result& out) {
  auto a = actors_.find(actor);
  if (a == actors_.end())
    return;
  auto w = a->second.worker;
  // Take the actor's in-flight calls back, in send order.
  std::vector<std::pair<uint64_t, std::shared_ptr<const task_spec>>> back;
  for (auto i = in_flight_.begin(); i != in_flight_.end();) {
    auto& f = i->second;
    if (f.spec->actor != actor
        || f.spec->kind == static_cast<uint8_t>(task_kind::function)) {
      ++i;
      continue;
    }
    if (auto ws = workers_.find(f.worker);
        ws != workers_.end() && ws->second.load > 0)
      --ws->second.load;
    back.emplace_back(f.seq, std::move(f.spec));
    i = in_flight_.erase(i);
  }
  std::sort(back.begin(), back.end(),
            [](auto& x, auto& y) { return x.first < y.first; });
  if (!restore) {
    // No good state to go back to: the actor dies. Results the worker
    // still reports for these calls are `unknown` and freed there.
    for (auto& [seq, spec] : back)
      fail(spec, err, out);
    for (auto& t : a->second.queue)
      fail(t, err, out);
    if (workers_.count(w) > 0) {
      task_spec drop;
      drop.kind = static_cast<uint8_t>(task_kind::actor_destroy);
      drop.name = a->second.cls;
      drop.actor = actor;
      out.sends.emplace_back(w, std::move(drop));
    }
    blocked_actors_.erase(actor);
    dead_actors_.emplace(actor, err);
    actors_.erase(a);
    return;
  }
  std::deque<std::shared_ptr<const task_spec>> q;
  q.push_back(std::move(restore));
  for (auto& [seq, spec] : back) {
    ++stale_[{spec->result, w}];
    q.push_back(std::move(spec));
  }
  for (auto& t : a->second.queue)
    q.push_back(std::move(t));
  a->second.queue = std::move(q);
  blocked_actors_.insert(actor);
}

dispatcher::report dispatcher::classify(const object_id& id, worker_id w) {
  if (auto s = stale_.find({id, w}); s != stale_.end()) {
    if (--s->second == 0)
      stale_.erase(s);
    return report::stale;
  }
  auto i = in_flight_.find(id);
  if (i == in_flight_.end() || i->second.worker != w)
    return report::unknown;
  return report::current;
}

bool dispatcher::durable_busy(const std::string& name) {
  for (auto& [id, a] : actors_)
    if (a.durable == name)
      return true;
  bool busy = false;
  for (auto i = destroyed_durable_.begin(); i != destroyed_durable_.end();) {
    auto id = i->first;
    bool flying = std::any_of(in_flight_.begin(), in_flight_.end(),
                              [id](auto& f) { return f.second.spec->actor == id; });
    if (!flying) {
      i = destroyed_durable_.erase(i);
      continue;
    }
    busy = busy || i->second == name;
    ++i;
  }
  return busy;
}

const task_spec* dispatcher::in_flight_task(const object_id& id) const {
  auto i = in_flight_.find(id);
  return i != in_flight_.end() ? i->second.spec.get() : nullptr;
}

std::vector<std::tuple<uint64_t, std::string, std::string>>
dispatcher::durable_actors_on(worker_id w) const {
  std::vector<std::tuple<uint64_t, std::string, std::string>> result;
  for (auto& [id, a] : actors_)
    if (a.worker == w && !a.durable.empty())
      result.emplace_back(id, a.cls, a.durable);
  return result;
}

void dispatcher::submit(std::shared_ptr<const task_spec> t,
                        const ownership_table& table, dispatch_result& out) {
  auto kind = static_cast<task_kind>(t->kind);
  if (kind == task_kind::function) {
    if (try_function(t, table, out) == verdict::hold)
      held_.push_back(std::move(t));
    return;
  }
  try_actor(t, table, out);
}

bool dispatcher::completed(const object_id& result, dispatch_result& out) {
  auto i = in_flight_.find(result);
  if (i == in_flight_.end())
    return false;
  auto w = workers_.find(i->second.worker);
  if (w != workers_.end() && w->second.load > 0)
    --w->second.load;
  out.finished.push_back(std::move(i->second.spec));
  in_flight_.erase(i);
  return true;
}

void dispatcher::retry_held(const ownership_table& table,
                            dispatch_result& out) {
  auto n = held_.size();
  for (size_t i = 0; i < n; ++i) {
    auto t = std::move(held_.front());
    held_.pop_front();
    if (try_function(t, table, out) == verdict::hold)
      held_.push_back(std::move(t));
  }
  std::vector<uint64_t> blocked{blocked_actors_.begin(),
                                blocked_actors_.end()};
  for (auto a : blocked)
    drain_actor(a, table, out);
}

const worker_id* dispatcher::producer(const object_id& id) const {
  auto i = in_flight_.find(id);
  return i != in_flight_.end() ? &i->second.worker : nullptr;
}

size_t dispatcher::held() const noexcept {
  auto n = held_.size();
  for (auto& [id, a] : actors_)
    n += a.queue.size();
  return n;
}

size_t dispatcher::load(worker_id w) const {
  auto i = workers_.find(w);
  return i != workers_.end() ? i->second.load : 0;
}

dispatcher::verdict
dispatcher::try_function(const std::shared_ptr<const task_spec>& t,
                         const ownership_table& table, dispatch_result& out) {
  if (workers_.empty()) {
    if (unavailable_) {
      fail(t, unavailable_, out);
      return verdict::failed;
    }
    return verdict::hold;
  }
  // Pick the target: the producer of a pending argument, else the holder of
  // the largest stored argument, else the least-loaded worker.
  const worker_id* pending_at = nullptr;
  const worker_id* stored_at = nullptr;
  uint64_t stored_size = 0;
  for (auto& arg : t->args) {
    if (arg.kind != arg_kind::owned_ref)
      continue;
    auto e = table.find(arg.ref);
    if (e == nullptr) {
      fail(t, make_error(refs_errc::unknown_object, to_string(arg.ref)), out);
      return verdict::failed;
    }
    if (e->state == object_state::failed) {
      fail(t, e->error, out);
      return verdict::failed;
    }
    if (e->state == object_state::pending) {
      if (pending_at == nullptr)
        pending_at = producer(arg.ref);
    } else if (!e->value && !e->locations.empty() && e->size >= stored_size) {
      stored_at = &e->locations.front();
      stored_size = e->size;
    }
  }
  worker_id target;
  if (pending_at != nullptr)
    target = *pending_at;
  else if (stored_at != nullptr && workers_.count(*stored_at) > 0)
    target = *stored_at;
  else
    target = least_loaded();
  if (pending_at == nullptr && stored_at == nullptr && starting_ > 0
      && workers_[target].load > 0)
    return verdict::hold; // a replacement is coming: not behind a busy one
  return try_send(t, target, table, out);
}

dispatcher::verdict
dispatcher::try_actor(const std::shared_ptr<const task_spec>& t,
                      const ownership_table& table, dispatch_result& out) {
  auto kind = static_cast<task_kind>(t->kind);
  if (kind == task_kind::actor_create || kind == task_kind::actor_restore) {
    if (workers_.empty()) {
      fail(t, make_error(actors_errc::runtime_down, "no workers"), out);
      return verdict::failed;
    }
    auto& a = actors_[t->actor];
    a.worker = least_loaded();
    a.cls = t->name;
    a.durable = t->durable;
    a.queue.push_back(t);
    blocked_actors_.insert(t->actor);
    drain_actor(t->actor, table, out);
    return verdict::sent;
  }
  auto i = actors_.find(t->actor);
  if (i == actors_.end()) {
    auto d = dead_actors_.find(t->actor);
    if (kind == task_kind::actor_destroy) {
      if (d != dead_actors_.end())
        dead_actors_.erase(d);
      out.finished.push_back(t);
      return verdict::failed;
    }
    fail(t,
         d != dead_actors_.end()
           ? d->second
           : make_error(actors_errc::invalid_argument,
                        "unknown actor " + std::to_string(t->actor)),
         out);
    return verdict::failed;
  }
  i->second.queue.push_back(numbered(t, i->second));
  blocked_actors_.insert(t->actor);
  drain_actor(t->actor, table, out);
  return verdict::sent;
}

void dispatcher::drain_actor(uint64_t actor, const ownership_table& table,
                             dispatch_result& out) {
  auto i = actors_.find(actor);
  if (i == actors_.end()) {
    blocked_actors_.erase(actor);
    return;
  }
  auto& q = i->second.queue;
  auto target = i->second.worker;
  while (!q.empty()) {
    auto t = q.front();
    auto kind = static_cast<task_kind>(t->kind);
    if (kind == task_kind::actor_destroy) {
      // Sent like a call so it runs after the calls before it.
      q.pop_front();
      out.sends.emplace_back(target, *t);
      out.finished.push_back(t);
      if (!i->second.durable.empty())
        destroyed_durable_.emplace(actor, i->second.durable);
      actors_.erase(i);
      blocked_actors_.erase(actor);
      return;
    }
    if (try_send(t, target, table, out) == verdict::hold)
      return;
    q.pop_front();
  }
  blocked_actors_.erase(actor);
}

dispatcher::verdict
dispatcher::try_send(const std::shared_ptr<const task_spec>& t,
                     worker_id target, const ownership_table& table,
                     dispatch_result& out) {
  auto tw = workers_.find(target);
  if (tw == workers_.end())
    return verdict::hold;
  task_spec sent = *t;
  for (auto& arg : sent.args) {
    if (arg.kind != arg_kind::owned_ref)
      continue;
    auto e = table.find(arg.ref);
    if (e == nullptr) {
      fail(t, make_error(refs_errc::unknown_object, to_string(arg.ref)), out);
      return verdict::failed;
    }
    switch (e->state) {
      case object_state::failed:
        fail(t, e->error, out);
        return verdict::failed;
      case object_state::pending: {
        auto p = producer(arg.ref);
        if (p == nullptr || *p != target)
          return verdict::hold;
        arg.location = target;
        arg.from = tw->second.address;
        break;
      }
      case object_state::ready:
        if (has_location(*e, target) || has_location(*e, node_location)) {
          // Held by the target, or in the node store, which every worker
          // reads without copying: the target resolves it itself.
          arg.location = target;
          arg.from = tw->second.address;
        } else if (e->value) {
          arg.kind = arg_kind::value;
          arg.value = *e->value;
        } else {
          auto holder = std::find_if(e->locations.begin(), e->locations.end(),
                                     [this](worker_id w) {
                                       return workers_.count(w) > 0;
                                     });
          if (holder == e->locations.end()) {
            fail(t, make_error(refs_errc::object_lost, to_string(arg.ref)),
                 out);
            return verdict::failed;
          }
          arg.location = *holder;
          arg.from = workers_[*holder].address;
        }
        break;
    }
  }
  if (sent.result.valid()) {
    ++tw->second.load;
    in_flight_.emplace(sent.result, flight{target, t, next_seq_++});
  } else {
    out.finished.push_back(t);
  }
  if (resend_ && sent.seq != 0) {
    // Test hook: a retry right behind the call; the call's own report is
    // dropped, so the owner takes the retry's answer.
    ++stale_[{sent.result, target}];
    out.sends.emplace_back(target, sent);
  }
  out.sends.emplace_back(target, std::move(sent));
  return verdict::sent;
}

void dispatcher::fail(const std::shared_ptr<const task_spec>& t,
                      caf::error err, dispatch_result& out) {
  if (t->result.valid())
    out.failures.emplace_back(t->result, std::move(err));
  out.finished.push_back(t);
}

worker_id dispatcher::least_loaded() {
  // Scan from a rotating start so equal loads alternate between workers.
  auto n = workers_.size();
  auto start = next_++ % n;
  auto i = workers_.begin();
  std::advance(i, start);
  auto best = i;
  for (size_t k = 0; k < n; ++k) {
    if (i->second.load < best->second.load)
      best = i;
    if (++i == workers_.end())
      i = workers_.begin();
  }
  return best->first;
}

} // namespace dref::internal
