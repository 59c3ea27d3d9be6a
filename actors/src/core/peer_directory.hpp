#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
#include "caf/timespan.hpp"

#include "dref/refs/process_address.hpp"

namespace dref::internal {

/// The ref servers of the other processes this process talks to, by
/// incarnation: handles it was given (a worker's registration) or made by
/// connecting to a descriptor's address.
///
/// Connecting (`remote_actor`) blocks, so it is never done on an actor's
/// thread: a caller that may block connects itself (`connect`); the others
/// ask for a connection in the background (`connect_later`), which a
/// helper thread makes and reports through a callback.
///
/// Thread safety: every member locks `mtx_` (never held while connecting).
/// Lifetime: owned by `process_refs`; `stop` ends the helper thread before
/// the actor system goes.
class peer_directory {
public:
  /// Called with the incarnation and the new handle (null: no connection).
  using on_connect = std::function<void(uint64_t, caf::actor)>;

  peer_directory(caf::actor_system& sys, caf::timespan timeout);
  ~peer_directory();

  /// The handle of `process`, or null if not connected.
  caf::actor find(uint64_t process) const;

  /// Records the handle of `process` (false if it had one).
  bool add(uint64_t process, caf::actor handle);

  /// Forgets `process` (it died).
  void remove(uint64_t process);

  /// The handle of `addr.process`, connecting now if needed (blocking,
  /// bounded by the middleman's connection timeout). Null on failure.
  caf::actor connect(const process_address& addr);

  /// Connects to `addr` on the helper thread; `done` runs there with the
  /// result (at most one connection attempt per process at a time).
  void connect_later(const process_address& addr, on_connect done);

  /// Ends the helper thread; later requests are dropped.
  void stop();

private:
  void run();

  caf::actor_system& sys_;
  caf::timespan timeout_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::unordered_map<uint64_t, caf::actor> handles_;      // guarded by mtx_
  std::deque<std::pair<process_address, on_connect>> todo_; // mtx_
  std::unordered_map<uint64_t, bool> connecting_;          // guarded by mtx_
  bool stopped_ = false;                                    // guarded by mtx_
  std::thread helper_;
};

} // namespace dref::internal
