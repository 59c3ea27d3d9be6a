#include "dref/refs/ref_core.hpp"

#include <algorithm>

#include "dref/refs/error.hpp"

namespace dref {

ref_core::ref_core(settings cfg)
  : cfg_(std::move(cfg)),
    owned_([this](const object_id& id, object_entry&& e) {
      on_free(id, std::move(e));
    }) {
  // nop
}

// -- local refs ---------------------------------------------------------------

void ref_core::add_local_ref(const object_id& id) {
  if (owns(id))
    owned_.add_local_ref(id);
  else
    borrowed_.add_local_ref(id);
}

void ref_core::remove_local_ref(const object_id& id) {
  drop(id);
  drain();
}

void ref_core::drop(const object_id& id) {
  if (owns(id)) {
    owned_.remove_local_ref(id); // a free queues more drops (on_free)
    return;
  }
  auto gone = borrowed_.remove_local_ref(id);
  if (!gone
      || (!gone->registered && gone->registering == 0 && !gone->maybe_counted))
    return; // still held, or the owner never counted this process
  if (dead_.count(id.owner) > 0)
    return;
  // Step 4: behind the barrier, so it cannot overtake a registration that
  // a protection it ends still covers (its own included).
  releases_.push_back(queued_release{barrier(), id.owner, id, gone->gen});
  dirty_ = true;
}

void ref_core::drain() {
  if (draining_)
    return; // the loop below picks the new drops up
  draining_ = true;
  while (!to_drop_.empty()) {
    auto id = to_drop_.back();
    to_drop_.pop_back();
    drop(id);
  }
  draining_ = false;
}

void ref_core::on_free(const object_id& id, object_entry&& e) {
  if (!e.locations.empty())
    dirty_ = true;
  for (auto w : e.locations) {
    if (w == node_location)
      node_frees_.push_back(id); // bytes only: the refs inside are counted
    else                         // where the copies are, so no barrier
      frees_.push_back(queued_free{barrier(), w, id});
  }
  borrowers_.erase(id);
  if (auto i = owned_contained_.find(id); i != owned_contained_.end()) {
    // Nested refs: the value is gone, so are the refs inside it.
    to_drop_.insert(to_drop_.end(), i->second.begin(), i->second.end());
    owned_contained_.erase(i);
  }
  drain();
}

// -- counting arrivals --------------------------------------------------------

std::pair<bool, uint64_t> ref_core::count(const ref_descriptor& d) {
  if (owns(d.id))
    return {owned_.add_local_ref(d.id), 0}; // false: freed already
  if (d.owner.process == d.id.owner)
    borrowed_.learn(d.owner);
  borrowed_.add(d);
  auto e = borrowed_.find(d.id);
  if (e->registered)
    return {true, 0};
  if (e->registering != 0)
    return {true, e->registering};
  if (dead_.count(d.id.owner) > 0 || borrowed_.owner_error(d.id))
    return {true, 0}; // nothing left to keep alive: a read says owner_died
  auto token = open_registration(d.id.owner);
  borrowed_.start_registration(d.id, token);
  auto& r = tokens_[token];
  r.ids.push_back(d.id);
  r.gens.push_back(e->gen);
  return {true, token};
}

uint64_t ref_core::open_registration(uint64_t owner) {
  auto [i, added] = open_.try_emplace(owner, 0);
  if (added) {
    i->second = next_token_++;
    dirty_ = true;
    tokens_[i->second].owner = owner;
  }
  return i->second;
}

uint64_t ref_core::adopt(const ref_descriptor& d) {
  auto token = count(d).second;
  if (d.hold != 0) {
    if (d.holder.process == cfg_.self.process) {
      // Our own message came back: the new ref is counted, let go.
      release_holds({d.hold});
    } else if (dead_.count(d.holder.process) == 0) {
      // Step 3: once this process is registered (the barrier).
      learn(d.holder);
      hold_releases_.push_back(
        queued_hold_release{barrier(), d.holder, d.hold});
      dirty_ = true;
    }
  }
  return token;
}

uint64_t ref_core::registration_of(const object_id& id) const {
  auto e = borrowed_.find(id);
  return e != nullptr ? e->registering : 0;
}

bool ref_core::registration_pending(uint64_t token) const {
  return token != 0 && tokens_.count(token) > 0;
}

// -- values held here ---------------------------------------------------------

void ref_core::adopt_in_owned(const object_id& outer,
                              std::vector<object_id> inner) {
  if (inner.empty())
    return;
  auto& v = owned_contained_[outer];
  v.insert(v.end(), inner.begin(), inner.end());
}

void ref_core::hold_in_owned(const object_id& outer,
                             const std::vector<ref_descriptor>& ds) {
  if (ds.empty())
    return;
  auto& v = owned_contained_[outer];
  for (auto& d : ds)
    if (count(d).first)
      v.push_back(d.id);
  if (v.empty())
    owned_contained_.erase(outer);
}

void ref_core::adopt_in_copy(const object_id& outer,
                             std::vector<object_id> inner) {
  if (inner.empty())
    return;
  auto& v = copy_contained_[outer];
  v.insert(v.end(), inner.begin(), inner.end());
}

std::vector<uint64_t>
ref_core::hold_in_copy(const object_id& outer,
                       const std::vector<ref_descriptor>& ds) {
  std::vector<uint64_t> tokens;
  if (ds.empty())
    return tokens;
  auto& v = copy_contained_[outer];
  for (auto& d : ds) {
    auto [counted, token] = count(d);
    if (counted)
      v.push_back(d.id);
    if (token != 0
        && std::find(tokens.begin(), tokens.end(), token) == tokens.end())
      tokens.push_back(token);
  }
  if (v.empty())
    copy_contained_.erase(outer);
  return tokens;
}

void ref_core::drop_copy(const object_id& outer) {
  auto i = copy_contained_.find(outer);
  if (i == copy_contained_.end())
    return;
  to_drop_.insert(to_drop_.end(), i->second.begin(), i->second.end());
  copy_contained_.erase(i);
  drain();
}

namespace {

template <class Map>
std::vector<ref_descriptor> describe_all(const ref_core& core, const Map& m,
                                         const object_id& id) {
  std::vector<ref_descriptor> result;
  auto i = m.find(id);
  if (i == m.end())
    return result;
  result.reserve(i->second.size());
  for (auto& inner : i->second) {
    ref_descriptor d;
    core.describe(inner, d);
    result.push_back(std::move(d));
  }
  return result;
}

} // namespace

std::vector<ref_descriptor>
ref_core::owned_contained(const object_id& id) const {
  return describe_all(*this, owned_contained_, id);
}

std::vector<ref_descriptor>
ref_core::copy_contained(const object_id& id) const {
  return describe_all(*this, copy_contained_, id);
}

// -- borrowing ----------------------------------------------------------------

void ref_core::describe(const object_id& id, ref_descriptor& out) const {
  out.id = id;
  if (owns(id)) {
    out.owner = cfg_.self;
  } else if (auto o = borrowed_.owner_of(id); o != nullptr) {
    out.owner = o->address;
  } else {
    out.owner = process_address{};
    out.owner.process = id.owner;
  }
}

void ref_core::hold_for_transit(const object_id& id, ref_descriptor& out,
                                time_point now) {
  add_local_ref(id);
  out.hold = transit_.hold(id, now + cfg_.transit_timeout);
  out.holder = cfg_.self;
}

void ref_core::release_holds(const std::vector<uint64_t>& tokens) {
  for (auto token : tokens)
    if (auto id = transit_.release(token))
      drop(*id);
  drain();
}

std::vector<object_id>
ref_core::on_borrow(const std::vector<object_id>& ids,
                    const std::vector<uint64_t>& gens,
                    const process_address& borrower) {
  std::vector<object_id> unknown;
  // A dead incarnation is fenced: counting it would never end.
  bool dead = dead_.count(borrower.process) > 0
              || borrower.process == cfg_.self.process;
  if (!dead)
    learn(borrower);
  for (size_t i = 0; i < ids.size(); ++i) {
    auto& id = ids[i];
    if (dead || i >= gens.size() || !owns(id) || owned_.find(id) == nullptr) {
      unknown.push_back(id);
      continue;
    }
    if (borrowers_.add(id, borrower.process, gens[i]))
      owned_.add_borrower(id);
  }
  return unknown;
}

void ref_core::on_release(const std::vector<object_id>& ids,
                          const std::vector<uint64_t>& gens,
                          uint64_t borrower) {
  for (size_t i = 0; i < ids.size() && i < gens.size(); ++i)
    if (borrowers_.remove(ids[i], borrower, gens[i]))
      owned_.remove_borrower(ids[i]);
  drain();
}

void ref_core::on_borrow_answer(uint64_t token,
                                const std::vector<object_id>& unknown) {
  auto i = tokens_.find(token);
  if (i == tokens_.end())
    return; // failed already (a timeout, the owner's death)
  for (auto& id : i->second.ids) {
    if (std::find(unknown.begin(), unknown.end(), id) != unknown.end())
      borrowed_.registration_failed(id, token, true);
    else
      borrowed_.registered(id, token);
  }
  close_registration(token);
}

void ref_core::on_borrow_failed(uint64_t token, bool maybe_counted) {
  auto i = tokens_.find(token);
  if (i == tokens_.end())
    return;
  for (auto& id : i->second.ids)
    borrowed_.registration_failed(id, token, false, maybe_counted);
  close_registration(token);
}

void ref_core::close_registration(uint64_t token) {
  auto i = tokens_.find(token);
  if (i == tokens_.end())
    return;
  if (auto o = open_.find(i->second.owner);
      o != open_.end() && o->second == token)
    open_.erase(o);
  tokens_.erase(i);
}

// -- deaths and time ----------------------------------------------------------

void ref_core::on_process_down(uint64_t process, const caf::error& why,
                               time_point now) {
  if (process == cfg_.self.process || !dead_.insert(process).second)
    return;
  // As owner: the dead borrower's borrows linger (step 5).
  for (auto& id : borrowers_.remove_borrower(process)) {
    linger(id, now);
    owned_.remove_borrower(id);
  }
  // As borrower: its objects fail; its answers will never come.
  borrowed_.owner_died(process, why);
  std::vector<uint64_t> moot;
  for (auto& [token, r] : tokens_)
    if (r.owner == process)
      moot.push_back(token);
  for (auto token : moot)
    on_borrow_failed(token, false); // the owner is gone
  // Nothing more goes to it.
  auto to_dead = [process](auto& q) {
    q.erase(std::remove_if(q.begin(), q.end(),
                           [process](auto& x) { return x.owner == process; }),
            q.end());
  };
  to_dead(releases_);
  hold_releases_.erase(
    std::remove_if(hold_releases_.begin(), hold_releases_.end(),
                   [process](auto& x) { return x.holder.process == process; }),
    hold_releases_.end());
  peers_.erase(process);
  drain();
}

void ref_core::linger(const object_id& id, time_point now) {
  add_local_ref(id);
  lingering_.hold(id, now + cfg_.death_grace);
}

void ref_core::expire(time_point now) {
  for (auto& id : transit_.expire(now))
    drop(id);
  for (auto& id : lingering_.expire(now))
    drop(id);
  drain();
}

std::optional<ref_core::time_point> ref_core::next_deadline() const {
  auto a = transit_.next_deadline();
  auto b = lingering_.next_deadline();
  if (a && b)
    return std::min(*a, *b);
  return a ? a : b;
}

void ref_core::clear_holds() {
  for (auto& id : transit_.clear())
    drop(id);
  for (auto& id : lingering_.clear())
    drop(id);
  drain();
}

// -- the outbox ---------------------------------------------------------------

void ref_core::take(ref_outbox& out) {
  // Registrations leave at once; one whose owner has no known address
  // (a descriptor without one, e.g. from a kept copy) fails here.
  std::vector<uint64_t> unreachable;
  for (auto& [owner, token] : open_) {
    auto& r = tokens_[token];
    r.sent = true;
    auto addr = address_of(owner);
    if (addr == nullptr || !addr->valid()) {
      unreachable.push_back(token);
      continue;
    }
    out.registrations.push_back(borrow_request{token, *addr, r.ids, r.gens});
  }
  open_.clear();
  for (auto token : unreachable)
    on_borrow_failed(token, false); // never sent: nobody counts us
  // Protection-ending messages: the prefix the barrier lets go, grouped
  // per destination.
  std::map<uint64_t, size_t> rel_index;
  while (!releases_.empty() && open_for(releases_.front().barrier)) {
    auto& q = releases_.front();
    auto [i, added] = rel_index.try_emplace(q.owner, out.releases.size());
    if (added) {
      auto addr = address_of(q.owner);
      out.releases.push_back(
        release_request{addr != nullptr ? *addr : process_address{}, {}, {}});
    }
    out.releases[i->second].ids.push_back(q.id);
    out.releases[i->second].gens.push_back(q.gen);
    releases_.pop_front();
  }
  std::map<uint64_t, size_t> hold_index;
  while (!hold_releases_.empty()
         && open_for(hold_releases_.front().barrier)) {
    auto& q = hold_releases_.front();
    auto [i, added] = hold_index.try_emplace(q.holder.process,
                                             out.hold_releases.size());
    if (added)
      out.hold_releases.push_back(hold_release_request{q.holder, {}});
    out.hold_releases[i->second].tokens.push_back(q.token);
    hold_releases_.pop_front();
  }
  while (!frees_.empty() && open_for(frees_.front().barrier)) {
    out.frees[frees_.front().where].push_back(frees_.front().id);
    frees_.pop_front();
  }
  out.node_frees.insert(out.node_frees.end(), node_frees_.begin(),
                        node_frees_.end());
  node_frees_.clear();
}

void ref_core::free_copy(worker_id w, const object_id& id, bool in_node) {
  dirty_ = true;
  if (w != node_location)
    frees_.push_back(queued_free{barrier(), w, id});
  if (in_node)
    node_frees_.push_back(id);
}

void ref_core::take_node_frees(std::vector<object_id>& out) {
  out.insert(out.end(), node_frees_.begin(), node_frees_.end());
  node_frees_.clear();
}

void ref_core::take_frees(worker_id w, std::vector<object_id>& out) {
  // Frees for `w` among the prefix the barrier lets go; the others stay in
  // their order.
  auto end = std::find_if(frees_.begin(), frees_.end(),
                          [this](auto& q) { return !open_for(q.barrier); });
  auto keep = std::stable_partition(frees_.begin(), end, [w](auto& q) {
    return q.where != w;
  });
  for (auto i = keep; i != end; ++i)
    out.push_back(i->id);
  frees_.erase(keep, end);
}

void ref_core::drop_frees(worker_id w) {
  frees_.erase(std::remove_if(frees_.begin(), frees_.end(),
                              [w](auto& q) { return q.where == w; }),
               frees_.end());
}

bool ref_core::has_sendable() const {
  return !open_.empty() || !node_frees_.empty()
         || (!releases_.empty() && open_for(releases_.front().barrier))
         || (!hold_releases_.empty()
             && open_for(hold_releases_.front().barrier))
         || (!frees_.empty() && open_for(frees_.front().barrier));
}

// -- introspection ------------------------------------------------------------

const process_address* ref_core::address_of(uint64_t process) const {
  if (process == cfg_.self.process)
    return &cfg_.self;
  if (auto o = borrowed_.owner(process); o != nullptr && o->address.valid())
    return &o->address;
  if (auto i = peers_.find(process); i != peers_.end())
    return &i->second;
  return nullptr;
}

void ref_core::learn(const process_address& addr) {
  if (!addr.valid() || addr.process == cfg_.self.process)
    return;
  peers_.emplace(addr.process, addr);
}

bool ref_core::empty() const noexcept {
  return owned_.size() == 0 && borrowed_.size() == 0
         && owned_contained_.empty() && copy_contained_.empty()
         && transit_.size() == 0 && lingering_.size() == 0 && tokens_.empty()
         && !has_queued();
}

} // namespace dref
