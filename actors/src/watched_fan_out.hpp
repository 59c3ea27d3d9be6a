#pragma once

// One request to each of several peers at once, each watched like
// `watched_request`: CAF 0.17 never fails a request to a peer that died, so
// each peer is monitored and its death ends its request at once. Used by
// the runtime's introspection (`stats`, `memory`), which must answer for
// the live workers while another has just died.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/sec.hpp"

namespace dref::internal {

/// One peer's outcome in a fan-out.
template <class R>
struct peer_answer {
  /// The peer's reply, if it answered.
  std::optional<R> reply;
  /// The peer went down (or was gone already) before answering.
  bool down = false;
  /// Otherwise, why there is no reply: CAF's `request_timeout` when the
  /// time limit passed, or the peer's (or CAF's) error. Map it with
  /// `dref_error_of` before it reaches a user.
  caf::error error;
};

/// Sends `xs...` to every one of `peers` concurrently and waits, at most
/// `timeout` (plus one second should the scheduler stop), until each
/// answered, failed or went down. Returns one outcome per peer, in order.
/// Steps: 1. one helper actor monitors every peer and sends the requests
/// (each with `timeout`); 2. each reply, error or down message settles its
/// peer once; 3. when none is left the helper quits and the caller wakes.
/// Ends in bounded time: every request ends by its own timeout at the
/// latest. Blocks the calling thread; never call it from inside a handler.
template <class R, class... Ts>
std::vector<peer_answer<R>> watched_fan_out(caf::actor_system& sys,
                                            const std::vector<caf::actor>& peers,
                                            caf::timespan timeout, Ts... xs) {
  struct shared {
    std::mutex mtx;
    std::condition_variable cv;
    std::vector<peer_answer<R>> answers; // guarded by mtx
    std::vector<bool> settled;           // guarded by mtx
    size_t left = 0;                     // guarded by mtx
  };
  auto st = std::make_shared<shared>();
  st->answers.resize(peers.size());
  st->settled.resize(peers.size(), false);
  st->left = peers.size();
  // Settles peer `i` once; the last one wakes the caller.
  auto settle = [st](size_t i, peer_answer<R> a) {
    std::lock_guard<std::mutex> guard{st->mtx};
    if (st->settled[i])
      return false;
    st->settled[i] = true;
    st->answers[i] = std::move(a);
    if (--st->left == 0)
      st->cv.notify_all();
    return st->left == 0;
  };
  for (size_t i = 0; i < peers.size(); ++i)
    if (!peers[i]) {
      peer_answer<R> a;
      a.down = true;
      settle(i, std::move(a));
    }
  std::unique_lock<std::mutex> lk{st->mtx};
  if (st->left == 0)
    return std::move(st->answers);
  lk.unlock();
  sys.spawn([=](caf::event_based_actor* self) {
    std::map<caf::actor_addr, std::vector<size_t>> by_addr;
    for (size_t i = 0; i < peers.size(); ++i)
      if (peers[i])
        by_addr[peers[i].address()].push_back(i);
    self->set_down_handler([=](caf::down_msg& dm) {
      auto j = by_addr.find(dm.source);
      if (j == by_addr.end())
        return;
      for (auto i : j->second) {
        peer_answer<R> a;
        a.down = true;
        if (settle(i, std::move(a)))
          self->quit();
      }
    });
    for (size_t i = 0; i < peers.size(); ++i) {
      if (!peers[i])
        continue;
      self->monitor(peers[i]);
      self->request(peers[i], timeout, xs...)
        .then(
          [=](R& reply) {
            peer_answer<R> a;
            a.reply = std::move(reply);
            if (settle(i, std::move(a)))
              self->quit();
          },
          [=](caf::error& err) {
            peer_answer<R> a;
            // A request to a proxy already known dead: the peer is down.
            a.down = err == caf::sec::request_receiver_down;
            a.error = std::move(err);
            if (settle(i, std::move(a)))
              self->quit();
          });
    }
  });
  lk.lock();
  st->cv.wait_for(lk, timeout + std::chrono::seconds(1),
                  [&] { return st->left == 0; });
  auto result = st->answers;
  for (size_t i = 0; i < peers.size(); ++i)
    if (!st->settled[i])
      result[i].error = caf::make_error(caf::sec::request_timeout);
  return result;
}

} // namespace dref::internal
