#include "dref/refs/borrow_table.hpp"

#include <algorithm>

namespace dref {

bool borrow_table::add(const ref_descriptor& d) {
  auto [i, added] = entries_.try_emplace(d.id);
  ++i->second.local_refs;
  if (added) {
    i->second.gen = next_gen_++;
    if (d.owner.process == d.id.owner)
      learn(d.owner);
  }
  return added;
}

void borrow_table::learn(const process_address& addr) {
  if (!addr.valid())
    return;
  auto& o = owners_[addr.process];
  if (!o.address.valid())
    o.address = addr;
}

bool borrow_table::add_local_ref(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  ++i->second.local_refs;
  return true;
}

std::optional<borrow_entry>
borrow_table::remove_local_ref(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.local_refs == 0)
    return std::nullopt;
  if (--i->second.local_refs > 0)
    return std::nullopt;
  auto result = i->second;
  entries_.erase(i);
  return result;
}

bool borrow_table::start_registration(const object_id& id, uint64_t token) {
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.registered
      || i->second.registering != 0)
    return false;
  i->second.registering = token;
  return true;
}

void borrow_table::registered(const object_id& id, uint64_t token) {
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.registering != token)
    return;
  i->second.registering = 0;
  i->second.registered = true;
}

void borrow_table::registration_failed(const object_id& id, uint64_t token,
                                       bool refused, bool maybe_counted) {
  auto i = entries_.find(id);
  if (i != entries_.end() && i->second.registering == token) {
    i->second.registering = 0;
    i->second.refused = refused;
    i->second.maybe_counted = i->second.maybe_counted || maybe_counted;
  }
}

std::vector<object_id> borrow_table::owner_died(uint64_t owner,
                                                caf::error why) {
  owners_[owner].dead = std::move(why);
  std::vector<object_id> result;
  for (auto& [id, e] : entries_)
    if (id.owner == owner) {
      e.registering = 0;
      result.push_back(id);
    }
  return result;
}

const borrow_entry* borrow_table::find(const object_id& id) const {
  auto i = entries_.find(id);
  return i != entries_.end() ? &i->second : nullptr;
}

const owner_record* borrow_table::owner_of(const object_id& id) const {
  return owner(id.owner);
}

const owner_record* borrow_table::owner(uint64_t process) const {
  auto i = owners_.find(process);
  return i != owners_.end() ? &i->second : nullptr;
}

caf::error borrow_table::owner_error(const object_id& id) const {
  auto o = owner_of(id);
  return o != nullptr ? o->dead : caf::error{};
}

bool borrower_set::add(const object_id& id, uint64_t borrower, uint64_t gen) {
  auto& v = map_[id];
  auto i = std::find_if(v.begin(), v.end(),
                        [&](auto& r) { return r.borrower == borrower; });
  if (i == v.end()) {
    v.push_back(record{borrower, gen, true});
    return true;
  }
  if (gen <= i->gen)
    return false; // a duplicate, or overtaken by a newer borrow
  i->gen = gen;
  if (i->counted)
    return false; // the newer borrow takes over the count
  i->counted = true;
  return true;
}

bool borrower_set::remove(const object_id& id, uint64_t borrower,
                          uint64_t gen) {
  auto i = map_.find(id);
  if (i == map_.end())
    return false;
  for (auto& r : i->second)
    if (r.borrower == borrower) {
      if (r.gen != gen || !r.counted)
        return false; // of an earlier borrow, or a duplicate
      r.counted = false;
      return true;
    }
  return false;
}

std::vector<object_id> borrower_set::remove_borrower(uint64_t borrower) {
  std::vector<object_id> result;
  for (auto i = map_.begin(); i != map_.end();) {
    auto& v = i->second;
    auto j = std::find_if(v.begin(), v.end(),
                          [&](auto& r) { return r.borrower == borrower; });
    if (j != v.end()) {
      if (j->counted)
        result.push_back(i->first);
      v.erase(j);
    }
    if (v.empty())
      i = map_.erase(i);
    else
      ++i;
  }
  return result;
}

void borrower_set::erase(const object_id& id) {
  map_.erase(id);
}

size_t borrower_set::count(const object_id& id) const {
  auto i = map_.find(id);
  if (i == map_.end())
    return 0;
  return static_cast<size_t>(std::count_if(
    i->second.begin(), i->second.end(), [](auto& r) { return r.counted; }));
}

} // namespace dref
