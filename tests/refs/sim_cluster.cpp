#include "sim_cluster.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <sstream>

#include "dref/refs/error.hpp"

namespace dref::sim {

namespace {

const char* name_of(message::kind k) {
  switch (k) {
    case message::kind::borrow:
      return "borrow";
    case message::kind::answer:
      return "answer";
    case message::kind::release:
      return "release";
    case message::kind::hold_release:
      return "hold_release";
    case message::kind::free_copy:
      return "free_copy";
    case message::kind::carry:
      return "carry";
    case message::kind::task:
      return "task";
    case message::kind::done:
      return "done";
    case message::kind::result:
      return "result";
    case message::kind::down:
      return "down";
  }
  return "?";
}

std::string ids_text(const std::vector<object_id>& ids) {
  std::string s;
  for (auto& id : ids)
    s += (s.empty() ? "" : ",") + std::to_string(id.owner) + ":"
         + std::to_string(id.seq);
  return s;
}

} // namespace

std::string message::describe() const {
  std::ostringstream out;
  out << name_of(what) << " " << from << "->" << to;
  std::vector<object_id> all = ids;
  for (auto& d : refs)
    all.push_back(d.id);
  if (!all.empty())
    out << " [" << ids_text(all) << "]";
  if (token != 0)
    out << " token " << token;
  return out.str();
}

cluster::cluster(size_t n, options opts)
  : opts_(opts), now_(ref_core::time_point{} + std::chrono::hours{1}) {
  procs_.resize(n);
  for (size_t p = 0; p < n; ++p) {
    ref_core::settings s;
    // Incarnations 1..n; ports 1000+p on host "sim".
    s.self = process_address{p + 1, "sim", static_cast<uint16_t>(1000 + p)};
    s.death_grace = opts.death_grace;
    s.transit_timeout = opts.transit_timeout;
    procs_[p].core = std::make_unique<ref_core>(s);
  }
}

void cluster::log(const std::string& line) {
  trace_ += line;
  trace_ += '\n';
}

size_t cluster::index_of(uint64_t process) const {
  return static_cast<size_t>(process - 1);
}

void cluster::user_add(size_t p, const object_id& id) {
  ++procs_[p].user[id];
}

bool cluster::holds(size_t p, const object_id& id) const {
  auto i = procs_[p].user.find(id);
  return i != procs_[p].user.end() && i->second > 0;
}

object_id cluster::put(size_t p) {
  auto& pr = procs_[p];
  object_id id{pr.core->self().process, pr.next_seq++};
  pr.core->owned().add_ready(id, nullptr);
  user_add(p, id);
  log("put " + ids_text({id}) + " at " + std::to_string(p));
  flush_all();
  return id;
}

void cluster::copy(size_t p, const object_id& id) {
  REQUIRE(holds(p, id));
  core(p).add_local_ref(id);
  user_add(p, id);
  flush_all();
}

void cluster::drop(size_t p, const object_id& id) {
  REQUIRE(holds(p, id));
  auto& u = procs_[p].user;
  if (--u[id] == 0)
    u.erase(id);
  log("drop " + ids_text({id}) + " at " + std::to_string(p));
  core(p).remove_local_ref(id);
  flush_all();
}

void cluster::send_ref(size_t from, size_t to, const object_id& id) {
  REQUIRE(holds(from, id));
  ref_descriptor d;
  core(from).describe(id, d);
  core(from).hold_for_transit(id, d, now_);
  message m{message::kind::carry};
  m.to = to;
  m.refs.push_back(d);
  log("send_ref " + ids_text({id}) + " " + std::to_string(from) + "->"
      + std::to_string(to));
  send(from, std::move(m));
  flush_all();
}

void cluster::submit(size_t from, size_t to, const object_id& arg,
                     bool keep) {
  REQUIRE(holds(from, arg));
  auto& c = core(from);
  // The submitted task protects its argument until it is over.
  if (c.owns(arg))
    c.owned().add_submitted_ref(arg);
  else
    c.add_local_ref(arg);
  message m{message::kind::task};
  m.to = to;
  ref_descriptor d;
  c.describe(arg, d);
  m.refs.push_back(d);
  m.token = keep ? 1 : 0;
  outstanding_.push_back(outstanding{from, to, arg});
  log("submit " + ids_text({arg}) + " " + std::to_string(from) + "->"
      + std::to_string(to));
  send(from, std::move(m));
  flush_all();
}

object_id cluster::produce(size_t w, size_t owner, const object_id& inner) {
  REQUIRE(holds(w, inner));
  auto& o = procs_[owner];
  object_id id{o.core->self().process, o.next_seq++};
  o.core->owned().add_pending(id, nullptr);
  user_add(owner, id);
  made_at_[id] = w;
  // The copy kept at `w` takes over its user's ref to `inner`.
  auto& u = procs_[w].user;
  if (--u[inner] == 0)
    u.erase(inner);
  core(w).adopt_in_copy(id, {inner});
  message m{message::kind::result};
  m.to = owner;
  m.ids.push_back(id);
  m.refs = core(w).copy_contained(id);
  log("produce " + ids_text({id}) + " at " + std::to_string(w) + " for "
      + std::to_string(owner));
  send(w, std::move(m));
  flush_all();
  return id;
}

void cluster::read_contained(size_t p, const object_id& outer) {
  for (auto& d : core(p).owned_contained(outer)) {
    core(p).adopt(d);
    user_add(p, d.id);
  }
  log("read " + ids_text({outer}) + " at " + std::to_string(p));
  flush_all();
}

void cluster::kill(size_t p, bool lose_outgoing) {
  auto& pr = procs_[p];
  if (!pr.alive)
    return;
  pr.alive = false;
  log("kill " + std::to_string(p) + (lose_outgoing ? " (losing messages)"
                                                   : ""));
  if (lose_outgoing)
    net_.erase(std::remove_if(net_.begin(), net_.end(),
                              [p](auto& m) { return m.from == p; }),
               net_.end());
  tasks_.erase(std::remove_if(tasks_.begin(), tasks_.end(),
                              [p](auto& t) { return t.at == p; }),
               tasks_.end());
  for (size_t q = 0; q < procs_.size(); ++q)
    if (q != p && procs_[q].alive) {
      message m{message::kind::down};
      m.serial = next_serial_++;
      m.from = p;
      m.to = q;
      net_.push_back(std::move(m));
    }
}

void cluster::send(size_t from, message m) {
  m.from = from;
  m.serial = next_serial_++;
  m.sender = core(from).self();
  if (m.to == from) {
    on_message(from, m); // to itself: at once
    return;
  }
  net_.push_back(std::move(m));
}

void cluster::flush(size_t p) {
  if (!procs_[p].alive)
    return;
  ref_outbox out;
  core(p).take(out);
  for (auto& r : out.registrations) {
    message m{message::kind::borrow};
    m.to = index_of(r.owner.process);
    m.token = r.token;
    m.ids = r.ids;
    m.gens = r.gens;
    send(p, std::move(m));
  }
  for (auto& r : out.releases) {
    message m{message::kind::release};
    m.to = index_of(r.owner.process);
    m.ids = r.ids;
    m.gens = r.gens;
    send(p, std::move(m));
  }
  for (auto& h : out.hold_releases) {
    message m{message::kind::hold_release};
    m.to = index_of(h.holder.process);
    m.tokens = h.tokens;
    send(p, std::move(m));
  }
  for (auto& [w, ids] : out.frees) {
    message m{message::kind::free_copy};
    m.to = static_cast<size_t>(w);
    m.ids = ids;
    send(p, std::move(m));
  }
}

void cluster::flush_all() {
  // A message to itself is handled at once and may queue more: repeat.
  for (int round = 0; round < 8; ++round) {
    bool any = false;
    for (size_t p = 0; p < procs_.size(); ++p)
      if (procs_[p].alive && core(p).has_sendable()) {
        flush(p);
        any = true;
      }
    if (!any)
      return;
  }
}

bool cluster::deliverable(size_t i) const {
  auto& m = net_[i];
  if (m.what != message::kind::down)
    return true;
  for (size_t j = 0; j < net_.size(); ++j)
    if (j != i && net_[j].from == m.from && net_[j].to == m.to
        && net_[j].what != message::kind::down)
      return false;
  return true;
}

void cluster::deliver(size_t i) {
  auto m = net_[i];
  net_.erase(net_.begin() + static_cast<std::ptrdiff_t>(i));
  log("deliver " + m.describe());
  if (procs_[m.to].alive)
    on_message(m.to, m);
  flush_all();
}

void cluster::duplicate(size_t i) {
  auto m = net_[i];
  log("duplicate " + m.describe());
  if (procs_[m.to].alive)
    on_message(m.to, m);
  flush_all();
}

void cluster::on_message(size_t p, const message& m) {
  auto& c = core(p);
  switch (m.what) {
    case message::kind::borrow: {
      message a{message::kind::answer};
      a.to = m.from;
      a.token = m.token;
      a.ids = c.on_borrow(m.ids, m.gens, m.sender);
      send(p, std::move(a));
      break;
    }
    case message::kind::answer:
      c.on_borrow_answer(m.token, m.ids);
      break;
    case message::kind::release:
      c.on_release(m.ids, m.gens, m.sender.process);
      break;
    case message::kind::hold_release:
      c.release_holds(m.tokens);
      break;
    case message::kind::free_copy:
      for (auto& id : m.ids)
        c.drop_copy(id);
      break;
    case message::kind::carry:
      for (auto& d : m.refs) {
        c.adopt(d);
        user_add(p, d.id);
      }
      break;
    case message::kind::task: {
      sim_task t;
      t.at = p;
      t.submitter = m.from;
      t.arg = m.refs.front().id;
      t.token = c.adopt(m.refs.front()); // the task's hold
      t.keep = m.token != 0;
      tasks_.push_back(t);
      break;
    }
    case message::kind::done: {
      // The submitter's protection of the argument ends with the task.
      auto& arg = m.ids.front();
      auto o = std::find_if(outstanding_.begin(), outstanding_.end(),
                            [&](auto& x) {
                              return x.from == p && x.to == m.from
                                     && x.arg == arg;
                            });
      if (o == outstanding_.end())
        break; // its worker's death was handled already
      outstanding_.erase(o);
      if (c.owns(arg))
        c.owned().remove_submitted_ref(arg);
      else
        c.remove_local_ref(arg);
      break;
    }
    case message::kind::result: {
      auto& id = m.ids.front();
      if (c.owned().set_ready(id, nullptr, 1, static_cast<worker_id>(m.from)))
        c.hold_in_owned(id, m.refs);
      break;
    }
    case message::kind::down: {
      auto why = make_error(refs_errc::owner_died, "process died");
      // The submit layer: tasks that ran at the dead process are over, and
      // their arguments' protection lingers; its results fail.
      for (auto i = outstanding_.begin(); i != outstanding_.end();) {
        if (i->from != p || i->to != m.from) {
          ++i;
          continue;
        }
        c.linger(i->arg, now_);
        if (c.owns(i->arg))
          c.owned().remove_submitted_ref(i->arg);
        else
          c.remove_local_ref(i->arg);
        i = outstanding_.erase(i);
      }
      for (auto i = made_at_.begin(); i != made_at_.end();) {
        if (i->second == m.from && c.owns(i->first)) {
          auto e = c.owned().find(i->first);
          if (e != nullptr && e->state == object_state::pending)
            c.owned().set_failed(i->first, why);
          i = made_at_.erase(i);
        } else {
          ++i;
        }
      }
      c.drop_frees(static_cast<worker_id>(m.from));
      c.on_process_down(m.from + 1, why, now_);
      break;
    }
  }
}

std::vector<size_t> cluster::finishable() const {
  std::vector<size_t> result;
  for (size_t i = 0; i < tasks_.size(); ++i)
    if (!procs_[tasks_[i].at].core->registration_pending(tasks_[i].token))
      result.push_back(i);
  return result;
}

void cluster::finish(size_t i) {
  auto t = tasks_[i];
  tasks_.erase(tasks_.begin() + static_cast<std::ptrdiff_t>(i));
  log("finish task on " + ids_text({t.arg}) + " at " + std::to_string(t.at));
  if (t.keep)
    user_add(t.at, t.arg);
  else
    core(t.at).remove_local_ref(t.arg);
  message m{message::kind::done};
  m.to = t.submitter;
  m.ids.push_back(t.arg);
  send(t.at, std::move(m));
  flush_all();
}

bool cluster::can_advance() const {
  if (!net_.empty())
    return false;
  for (auto& pr : procs_)
    if (pr.alive && pr.core->next_deadline())
      return true;
  return false;
}

void cluster::advance() {
  std::optional<ref_core::time_point> next;
  for (auto& pr : procs_)
    if (pr.alive)
      if (auto d = pr.core->next_deadline())
        next = next ? std::min(*next, *d) : *d;
  if (!next)
    return;
  now_ = *next;
  log("advance the clock");
  for (auto& pr : procs_)
    if (pr.alive)
      pr.core->expire(now_);
  flush_all();
}

std::string cluster::unreadable() const {
  for (size_t p = 0; p < procs_.size(); ++p) {
    if (!procs_[p].alive)
      continue;
    std::string bad;
    procs_[p].core->borrowed().for_each([&](const object_id& id,
                                            const borrow_entry&) {
      auto o = index_of(id.owner);
      if (!bad.empty() || o >= procs_.size() || !procs_[o].alive)
        return; // a dead owner: reads fail with owner_died, as they must
      if (procs_[o].core->owned().find(id) == nullptr)
        bad = "process " + std::to_string(p) + " holds a ref to "
              + ids_text({id}) + ", which its owner " + std::to_string(o)
              + " freed";
    });
    if (!bad.empty())
      return bad;
  }
  return {};
}

std::string cluster::leftovers() const {
  std::string result;
  for (size_t p = 0; p < procs_.size(); ++p) {
    auto& c = *procs_[p].core;
    if (!procs_[p].alive || c.empty())
      continue;
    result += "process " + std::to_string(p) + ": owned "
              + std::to_string(c.owned().size()) + ", borrowed "
              + std::to_string(c.borrowed().size()) + ", transit "
              + std::to_string(c.transit_holds()) + ", lingering "
              + std::to_string(c.lingering_holds()) + ", registrations "
              + std::to_string(c.registrations_pending()) + ", queued "
              + std::to_string(c.releases_pending()) + "; ";
  }
  if (!net_.empty())
    result += std::to_string(net_.size()) + " messages in flight";
  return result;
}

// -- explorer -----------------------------------------------------------------

namespace {

// Picks among the events enabled at each point of one run: replaying a
// recorded prefix, then the first option (depth-first), or at random.
class chooser {
public:
  explicit chooser(std::mt19937_64* rng = nullptr) : rng_(rng) {
    // nop
  }

  size_t pick(size_t n) {
    if (rng_ != nullptr)
      return static_cast<size_t>((*rng_)() % n);
    if (depth_ < path_.size())
      return path_[depth_++].first;
    path_.emplace_back(0, n);
    ++depth_;
    return 0;
  }

  // The next order to try; false once every order was tried.
  bool next() {
    depth_ = 0;
    while (!path_.empty()) {
      auto& [c, n] = path_.back();
      if (c + 1 < n) {
        ++c;
        return true;
      }
      path_.pop_back();
    }
    return false;
  }

private:
  std::mt19937_64* rng_;
  std::vector<std::pair<size_t, size_t>> path_;
  size_t depth_ = 0;
};

// Runs the scenario once along `ch`; returns why it failed, or "".
std::string run_once(size_t procs, const explorer::scenario& f,
                     const explorer::options& opts, chooser& ch) {
  constexpr size_t max_events = 400;
  cluster c{procs};
  auto steps = f(c);
  size_t next_step = 0;
  std::vector<uint64_t> duplicated;
  enum class ev { step, deliver, duplicate, finish, advance };
  for (size_t n = 0; n < max_events; ++n) {
    std::vector<std::pair<ev, size_t>> events;
    if (next_step < steps.size()
        && (!steps[next_step].ready || steps[next_step].ready(c)))
      events.emplace_back(ev::step, next_step);
    auto& net = c.in_flight();
    for (size_t i = 0; i < net.size(); ++i) {
      if (!c.deliverable(i))
        continue;
      events.emplace_back(ev::deliver, i);
      auto k = net[i].what;
      bool protocol = k == message::kind::borrow || k == message::kind::answer
                      || k == message::kind::release
                      || k == message::kind::hold_release
                      || k == message::kind::free_copy;
      if (opts.duplicates && protocol
          && std::find(duplicated.begin(), duplicated.end(), net[i].serial)
               == duplicated.end())
        events.emplace_back(ev::duplicate, i);
    }
    for (auto i : c.finishable())
      events.emplace_back(ev::finish, i);
    if (c.can_advance())
      events.emplace_back(ev::advance, 0);
    if (events.empty())
      break;
    auto [kind, i] = events[ch.pick(events.size())];
    switch (kind) {
      case ev::step:
        c.log("step: " + steps[i].name);
        steps[i].run(c);
        ++next_step;
        break;
      case ev::deliver:
        c.deliver(i);
        break;
      case ev::duplicate:
        duplicated.push_back(net[i].serial);
        c.duplicate(i);
        break;
      case ev::finish:
        c.finish(i);
        break;
      case ev::advance:
        c.advance();
        break;
    }
    if (auto bad = c.unreadable(); !bad.empty())
      return bad + "\norder:\n" + c.trace();
  }
  if (next_step < steps.size())
    return "the scenario could not go on at step '" + steps[next_step].name
           + "'\norder:\n" + c.trace();
  if (auto left = c.leftovers(); !left.empty())
    return "left behind: " + left + "\norder:\n" + c.trace();
  return {};
}

} // namespace

explorer::outcome explorer::all(size_t procs, const scenario& f,
                                options opts) {
  outcome result;
  chooser ch;
  do {
    result.failure = run_once(procs, f, opts, ch);
    ++result.orders;
    if (!result.failure.empty())
      return result;
  } while (result.orders < opts.max_orders && ch.next());
  result.exhaustive = result.orders < opts.max_orders || !ch.next();
  return result;
}

explorer::outcome explorer::random(size_t procs, const scenario& f,
                                   uint64_t seed, size_t rounds,
                                   options opts) {
  outcome result;
  std::mt19937_64 rng{seed};
  for (size_t r = 0; r < rounds; ++r) {
    chooser ch{&rng};
    result.failure = run_once(procs, f, opts, ch);
    ++result.orders;
    if (!result.failure.empty())
      return result;
  }
  return result;
}

uint64_t explorer::seed(uint64_t fallback) {
  if (auto text = std::getenv("DREF_SEED"))
    return std::strtoull(text, nullptr, 10);
  return fallback;
}

} // namespace dref::sim
