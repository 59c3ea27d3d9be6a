#include "core/peer_directory.hpp"

#include "caf/actor_cast.hpp"
#include "caf/io/middleman.hpp"

#include "wire/interfaces.hpp"

namespace dref::internal {

peer_directory::peer_directory(caf::actor_system& sys, caf::timespan timeout)
  : sys_(sys), timeout_(timeout) {
  helper_ = std::thread{[this] { run(); }};
}

peer_directory::~peer_directory() {
  stop();
}

caf::actor peer_directory::find(uint64_t process) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = handles_.find(process);
  return i != handles_.end() ? i->second : caf::actor{};
}

bool peer_directory::add(uint64_t process, caf::actor handle) {
  if (!handle)
    return false;
  std::lock_guard<std::mutex> guard{mtx_};
  return handles_.emplace(process, std::move(handle)).second;
}

void peer_directory::remove(uint64_t process) {
  std::lock_guard<std::mutex> guard{mtx_};
  handles_.erase(process);
}

caf::actor peer_directory::connect(const process_address& addr) {
  if (auto h = find(addr.process))
    return h;
  if (!addr.valid())
    return {};
  auto h = sys_.middleman().remote_actor<ref_server_actor>(addr.host,
                                                           addr.port);
  if (!h)
    return {};
  auto handle = caf::actor_cast<caf::actor>(*h);
  add(addr.process, handle);
  return find(addr.process);
}

void peer_directory::connect_later(const process_address& addr,
                                   on_connect done) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopped_)
      return;
    todo_.emplace_back(addr, std::move(done));
  }
  cv_.notify_one();
}

void peer_directory::run() {
  for (;;) {
    std::pair<process_address, on_connect> item;
    {
      std::unique_lock<std::mutex> lk{mtx_};
      cv_.wait(lk, [this] { return stopped_ || !todo_.empty(); });
      if (stopped_)
        return;
      item = std::move(todo_.front());
      todo_.pop_front();
    }
    auto handle = connect(item.first);
    item.second(item.first.process, std::move(handle));
  }
}

void peer_directory::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopped_ = true;
    todo_.clear();
  }
  cv_.notify_all();
  if (helper_.joinable())
    helper_.join();
  std::lock_guard<std::mutex> guard{mtx_};
  handles_.clear();
}

} // namespace dref::internal
