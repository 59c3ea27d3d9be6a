#include "dref/persist/checkpoint_store.hpp"

namespace dref {

std::string to_string(column_family cf) {
  // These strings are column-family names on disk: never change them.
  switch (cf) {
    case column_family::actor_state:
      return "actor_state";
    case column_family::actor_meta:
      return "actor_meta";
    case column_family::actor_state_alt:
      return "actor_state_alt";
    case column_family::ref_values:
      return "ref_values";
  }
  return "column_family(" + std::to_string(static_cast<int>(cf)) + ")";
}

std::string key_name(column_family cf, const std::string& key) {
  auto result = to_string(cf);
  result += '/';
  result += key;
  return result;
}

void write_batch::put(column_family cf, std::string key, std::string value) {
  ops.push_back(write_op{write_op::put, cf, std::move(key), std::move(value)});
}

void write_batch::erase(column_family cf, std::string key) {
  ops.push_back(write_op{write_op::erase, cf, std::move(key), std::string{}});
}

void write_batch::append(const write_batch& other) {
  ops.insert(ops.end(), other.ops.begin(), other.ops.end());
}

size_t write_batch::byte_size() const noexcept {
  size_t result = 0;
  for (auto& op : ops)
    result += op.key.size() + op.value.size();
  return result;
}

checkpoint_store::~checkpoint_store() {
  // nop
}

caf::error memory_checkpoint_store::write(const write_batch& batch) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& op : batch.ops) {
    if (op.kind == write_op::put)
      data_[{op.cf, op.key}] = op.value;
    else
      data_.erase({op.cf, op.key});
  }
  return caf::none;
}

caf::expected<std::optional<std::string>>
memory_checkpoint_store::read(column_family cf, const std::string& key) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = data_.find({cf, key});
  if (i == data_.end())
    return std::optional<std::string>{};
  return std::optional<std::string>{i->second};
}

caf::expected<std::vector<std::string>>
memory_checkpoint_store::keys(column_family cf,
                              const std::string& prefix) const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::vector<std::string> result;
  for (auto i = data_.lower_bound({cf, prefix}); i != data_.end(); ++i) {
    if (i->first.first != cf
        || i->first.second.compare(0, prefix.size(), prefix) != 0)
      break;
    result.push_back(i->first.second);
  }
  return result;
}

} // namespace dref
