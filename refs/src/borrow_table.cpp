#include "dref/refs/borrow_table.hpp"

#include <algorithm>

namespace dref {

bool borrow_table::add(const ref_descriptor& d) {
  auto [i, added] = entries_.try_emplace(d.id);
  ++i->second.local_refs;
  if (added) {
    auto& o = owners_[d.id.owner];
    if (o.port == 0 && d.port != 0) {
      o.host = d.host;
      o.port = d.port;
    }
  }
  return added;
}

bool borrow_table::add_local_ref(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  ++i->second.local_refs;
  return true;
}

std::optional<bool> borrow_table::remove_local_ref(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.local_refs == 0)
    return std::nullopt;
  if (--i->second.local_refs > 0)
    return std::nullopt;
  bool tell = i->second.registered || i->second.registering;
  entries_.erase(i);
  return tell;
}

std::vector<object_id>
borrow_table::start_registration(const std::vector<object_id>& ids) {
  std::vector<object_id> result;
  for (auto& id : ids) {
    auto i = entries_.find(id);
    if (i == entries_.end() || i->second.registered || i->second.registering)
      continue;
    i->second.registering = true;
    result.push_back(id);
  }
  return result;
}

void borrow_table::registered(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return;
  i->second.registering = false;
  i->second.registered = true;
}

void borrow_table::registration_failed(const object_id& id) {
  auto i = entries_.find(id);
  if (i != entries_.end())
    i->second.registering = false;
}

std::vector<object_id> borrow_table::owner_died(uint64_t owner,
                                                caf::error why) {
  owners_[owner].dead = std::move(why);
  std::vector<object_id> result;
  for (auto& [id, e] : entries_)
    if (id.owner == owner) {
      e.registering = false;
      result.push_back(id);
    }
  return result;
}

const borrow_entry* borrow_table::find(const object_id& id) const {
  auto i = entries_.find(id);
  return i != entries_.end() ? &i->second : nullptr;
}

const owner_record* borrow_table::owner_of(const object_id& id) const {
  auto i = owners_.find(id.owner);
  return i != owners_.end() ? &i->second : nullptr;
}

caf::error borrow_table::owner_error(const object_id& id) const {
  auto o = owner_of(id);
  return o != nullptr ? o->dead : caf::error{};
}

bool borrower_set::add(const object_id& id, uint64_t borrower) {
  auto& v = map_[id];
  if (std::find(v.begin(), v.end(), borrower) != v.end())
    return false;
  v.push_back(borrower);
  return true;
}

bool borrower_set::remove(const object_id& id, uint64_t borrower) {
  auto i = map_.find(id);
  if (i == map_.end())
    return false;
  auto& v = i->second;
  auto j = std::find(v.begin(), v.end(), borrower);
  if (j == v.end())
    return false;
  v.erase(j);
  if (v.empty())
    map_.erase(i);
  return true;
}

std::vector<object_id> borrower_set::remove_borrower(uint64_t borrower) {
  std::vector<object_id> result;
  for (auto i = map_.begin(); i != map_.end();) {
    auto& v = i->second;
    auto j = std::find(v.begin(), v.end(), borrower);
    if (j != v.end()) {
      v.erase(j);
      result.push_back(i->first);
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
  return i != map_.end() ? i->second.size() : 0;
}

} // namespace dref
