#include "dref/store/local_store.hpp"

namespace dref {

namespace {

uint64_t size_of(const stored_object& x) {
  return x.value ? x.value->size() : 0;
}

} // namespace

void local_store::put(const object_id& id, stored_object obj) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& slot = objects_[id];
  bytes_ -= size_of(slot);
  bytes_ += size_of(obj);
  slot = std::move(obj);
}

std::optional<stored_object> local_store::get(const object_id& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = objects_.find(id);
  if (i == objects_.end())
    return std::nullopt;
  return i->second;
}

bool local_store::erase(const object_id& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = objects_.find(id);
  if (i == objects_.end())
    return false;
  bytes_ -= size_of(i->second);
  objects_.erase(i);
  return true;
}

size_t local_store::count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return objects_.size();
}

uint64_t local_store::bytes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return bytes_;
}

} // namespace dref
