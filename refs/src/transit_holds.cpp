#include "dref/refs/transit_holds.hpp"

namespace dref {

uint64_t transit_holds::hold(ref_base x, clock_type::time_point deadline) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto token = next_++;
  holds_.emplace(token, std::make_pair(std::move(x), deadline));
  return token;
}

void transit_holds::release(const std::vector<uint64_t>& tokens) {
  std::vector<ref_base> dropped; // destroyed after the guard below
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto token : tokens)
    if (auto i = holds_.find(token); i != holds_.end()) {
      dropped.push_back(std::move(i->second.first));
      holds_.erase(i);
    }
}

void transit_holds::expire(clock_type::time_point now) {
  std::vector<ref_base> dropped; // destroyed after the guard below
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto i = holds_.begin(); i != holds_.end();) {
    if (i->second.second <= now) {
      dropped.push_back(std::move(i->second.first));
      i = holds_.erase(i);
    } else {
      ++i;
    }
  }
}

void transit_holds::clear() {
  std::vector<ref_base> dropped; // destroyed after the guard below
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [token, held] : holds_)
    dropped.push_back(std::move(held.first));
  holds_.clear();
}

size_t transit_holds::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return holds_.size();
}

} // namespace dref
