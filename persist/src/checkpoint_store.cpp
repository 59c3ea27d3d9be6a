#include "dref/persist/checkpoint_store.hpp"

namespace dref {

checkpoint_store::~checkpoint_store() {
  // nop
}

caf::error memory_checkpoint_store::write(const write_batch& batch) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& key : batch.erases)
    data_.erase(key);
  for (auto& [key, value] : batch.puts)
    data_[key] = value;
  return caf::none;
}

caf::expected<std::optional<std::string>>
memory_checkpoint_store::read(const std::string& key) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = data_.find(key);
  if (i == data_.end())
    return std::optional<std::string>{};
  return std::optional<std::string>{i->second};
}

} // namespace dref
