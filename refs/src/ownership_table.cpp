#include "dref/refs/ownership_table.hpp"

#include <algorithm>
#include <cassert>

#include "dref/refs/error.hpp"

namespace dref {

std::string to_string(object_state x) {
  switch (x) {
    case object_state::pending:
      return "pending";
    case object_state::ready:
      return "ready";
    case object_state::failed:
      return "failed";
  }
  return "?";
}

ownership_table::ownership_table(free_handler on_free)
  : on_free_(std::move(on_free)) {
  // nop
}

void ownership_table::add_pending(const object_id& id,
                                  std::shared_ptr<const lineage> made_by,
                                  const void* call_site) {
  auto [i, added] = entries_.try_emplace(id);
  assert(added);
  static_cast<void>(added);
  i->second.local_refs = 1;
  i->second.made_by = std::move(made_by);
  i->second.call_site = call_site;
}

void ownership_table::add_ready(const object_id& id,
                                std::shared_ptr<const blob> value,
                                const void* call_site) {
  auto [i, added] = entries_.try_emplace(id);
  assert(added);
  static_cast<void>(added);
  auto& e = i->second;
  e.call_site = call_site;
  e.state = object_state::ready;
  e.local_refs = 1;
  e.size = value ? value->size() : 0;
  e.value = std::move(value);
}

void ownership_table::add_ready_at(const object_id& id, uint64_t size,
                                   worker_id where, const void* call_site) {
  add_ready(id, nullptr, call_site);
  auto& e = entries_.find(id)->second;
  e.size = size;
  e.locations.push_back(where);
}

bool ownership_table::add_local_ref(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  ++i->second.local_refs;
  return true;
}

bool ownership_table::remove_local_ref(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  assert(i->second.local_refs > 0);
  --i->second.local_refs;
  maybe_free(i);
  return true;
}

bool ownership_table::add_submitted_ref(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  ++i->second.submitted_refs;
  return true;
}

bool ownership_table::remove_submitted_ref(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  assert(i->second.submitted_refs > 0);
  --i->second.submitted_refs;
  maybe_free(i);
  return true;
}

bool ownership_table::add_borrower(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  ++i->second.borrowers;
  return true;
}

bool ownership_table::remove_borrower(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.borrowers == 0)
    return false;
  --i->second.borrowers;
  maybe_free(i);
  return true;
}

bool ownership_table::set_ready(const object_id& id,
                                std::shared_ptr<const blob> value,
                                uint64_t size, worker_id where,
                                worker_id also) {
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.state != object_state::pending)
    return false;
  auto& e = i->second;
  e.state = object_state::ready;
  e.value = std::move(value);
  e.size = size;
  if (where != owner_location)
    e.locations.push_back(where);
  if (also != owner_location && also != where)
    e.locations.push_back(also);
  maybe_free(i);
  return true;
}

bool ownership_table::set_failed(const object_id& id, caf::error err) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  auto& e = i->second;
  e.state = object_state::failed;
  e.error = std::move(err);
  e.value.reset();
  maybe_free(i);
  return true;
}

bool ownership_table::add_location(const object_id& id, worker_id w) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return false;
  auto& locs = i->second.locations;
  if (std::find(locs.begin(), locs.end(), w) == locs.end())
    locs.push_back(w);
  return true;
}

std::vector<object_id> ownership_table::drop_location(worker_id w) {
  std::vector<object_id> lost;
  for (auto& [id, e] : entries_) {
    auto i = std::find(e.locations.begin(), e.locations.end(), w);
    if (i == e.locations.end())
      continue;
    e.locations.erase(i);
    if (e.state == object_state::ready && !e.value && e.locations.empty()) {
      e.state = object_state::failed;
      e.error = make_error(refs_errc::object_lost,
                           "the only copy was on worker " + std::to_string(w));
      lost.push_back(id);
    }
  }
  return lost;
}

const object_entry* ownership_table::find(const object_id& id) const {
  auto i = entries_.find(id);
  return i != entries_.end() ? &i->second : nullptr;
}

void ownership_table::maybe_free(map_type::iterator i) {
  auto& e = i->second;
  if (e.local_refs > 0 || e.submitted_refs > 0 || e.borrowers > 0
      || e.state == object_state::pending)
    return;
  auto id = i->first;
  auto entry = std::move(e);
  entries_.erase(i);
  if (on_free_)
    on_free_(id, std::move(entry));
}

} // namespace dref
