#include "dref/store/store_index.hpp"

#include <cassert>
#include <string>

#include "dref/store/error.hpp"

namespace dref {

store_index::store_index(uint64_t capacity) : capacity_(capacity) {
  // nop
}

caf::expected<store_index::plan>
store_index::make_room(uint64_t bytes, bool may_spill) const {
  plan result;
  if (bytes > capacity_)
    return make_error(store_errc::store_full,
                      "value of " + std::to_string(bytes)
                        + " bytes exceeds the capacity of "
                        + std::to_string(capacity_));
  if (memory_used_ + bytes <= capacity_)
    return result;
  uint64_t need = memory_used_ + bytes - capacity_;
  auto candidate = [&](const entry& e) {
    return e.sealed && e.in_memory && e.pins == 0;
  };
  // Three passes over the LRU list, each least recently used first.
  for (auto& id : lru_) {
    if (result.bytes >= need)
      break;
    auto& e = entries_.at(id);
    if (candidate(e) && e.kind == copy_kind::secondary) {
      result.evict.push_back(id);
      result.bytes += e.size;
    }
  }
  for (auto& id : lru_) {
    if (result.bytes >= need)
      break;
    auto& e = entries_.at(id);
    if (candidate(e) && e.kind == copy_kind::primary && e.on_disk) {
      result.drop.push_back(id);
      result.bytes += e.size;
    }
  }
  if (may_spill) {
    for (auto& id : lru_) {
      if (result.bytes >= need)
        break;
      auto& e = entries_.at(id);
      if (candidate(e) && e.kind == copy_kind::primary && !e.on_disk) {
        result.spill.push_back(id);
        result.bytes += e.size;
      }
    }
  }
  if (result.bytes < need)
    return make_error(store_errc::store_full,
                      "need " + std::to_string(need) + " more bytes, "
                        + std::to_string(result.bytes)
                        + " can be freed (the rest is pinned, being written"
                        + (may_spill ? "" : ", or needs spilling, which is off")
                        + ")");
  return result;
}

uint64_t store_index::insert(const object_id& id, uint64_t size,
                             copy_kind kind) {
  assert(entries_.count(id) == 0);
  assert(memory_used_ + size <= capacity_);
  auto& e = entries_[id];
  e.size = size;
  e.kind = kind;
  e.pins = 1;
  e.generation = next_generation_++;
  e.lru = lru_.insert(lru_.end(), id);
  memory_used_ += size;
  return e.generation;
}

const store_index::entry* store_index::find(const object_id& id) const {
  auto i = entries_.find(id);
  return i == entries_.end() ? nullptr : &i->second;
}

store_index::entry& store_index::at(const object_id& id) {
  auto i = entries_.find(id);
  assert(i != entries_.end());
  return i->second;
}

void store_index::seal(const object_id& id) {
  auto& e = at(id);
  assert(!e.sealed && e.pins > 0);
  e.sealed = true;
  --e.pins;
  touch(id);
}

void store_index::rekey(const object_id& from, const object_id& to) {
  assert(entries_.count(to) == 0);
  auto i = entries_.find(from);
  assert(i != entries_.end() && !i->second.sealed);
  auto e = i->second;
  entries_.erase(i);
  *e.lru = to;
  entries_.emplace(to, e);
}

void store_index::touch(const object_id& id) {
  auto& e = at(id);
  lru_.splice(lru_.end(), lru_, e.lru);
}

void store_index::pin(const object_id& id) {
  ++at(id).pins;
}

bool store_index::unpin(const object_id& id, uint64_t generation) {
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.generation != generation
      || i->second.pins == 0)
    return false;
  --i->second.pins;
  return true;
}

void store_index::set_on_disk(const object_id& id) {
  auto& e = at(id);
  assert(e.kind == copy_kind::primary);
  e.on_disk = true;
}

void store_index::spilled(const object_id& id) {
  auto& e = at(id);
  assert(e.in_memory && e.on_disk && e.pins == 0);
  e.in_memory = false;
  memory_used_ -= e.size;
}

void store_index::restored(const object_id& id) {
  auto& e = at(id);
  assert(!e.in_memory && memory_used_ + e.size <= capacity_);
  e.in_memory = true;
  memory_used_ += e.size;
  touch(id);
}

void store_index::erase(const object_id& id) {
  auto i = entries_.find(id);
  if (i == entries_.end())
    return;
  if (i->second.in_memory)
    memory_used_ -= i->second.size;
  lru_.erase(i->second.lru);
  entries_.erase(i);
}

std::vector<object_id> store_index::lru_order() const {
  return {lru_.begin(), lru_.end()};
}

} // namespace dref
