#include "dref/refs/timed_holds.hpp"

namespace dref {

uint64_t timed_holds::hold(const object_id& id, time_point deadline) {
  auto token = next_++;
  holds_.emplace(token, held{id, deadline});
  by_deadline_.emplace(deadline, token);
  return token;
}

std::optional<object_id> timed_holds::release(uint64_t token) {
  auto i = holds_.find(token);
  if (i == holds_.end())
    return std::nullopt;
  auto id = i->second.id;
  auto range = by_deadline_.equal_range(i->second.deadline);
  for (auto j = range.first; j != range.second; ++j)
    if (j->second == token) {
      by_deadline_.erase(j);
      break;
    }
  holds_.erase(i);
  return id;
}

std::vector<object_id> timed_holds::expire(time_point now) {
  std::vector<object_id> result;
  while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
    auto token = by_deadline_.begin()->second;
    by_deadline_.erase(by_deadline_.begin());
    if (auto i = holds_.find(token); i != holds_.end()) {
      result.push_back(i->second.id);
      holds_.erase(i);
    }
  }
  return result;
}

std::vector<object_id> timed_holds::clear() {
  std::vector<object_id> result;
  result.reserve(holds_.size());
  for (auto& [token, h] : holds_)
    result.push_back(h.id);
  holds_.clear();
  by_deadline_.clear();
  return result;
}

std::optional<timed_holds::time_point> timed_holds::next_deadline() const {
  if (by_deadline_.empty())
    return std::nullopt;
  return by_deadline_.begin()->first;
}

} // namespace dref
