#pragma once

// A blocking request that also ends when the peer dies. CAF 0.17 never
// fails a request to a peer that died (its proxy is killed, the request is
// just never answered), so a plain `scoped_actor::request(...).receive(...)`
// would wait for its whole timeout; this one watches the peer and ends with
// `refs_errc::owner_died` as soon as CAF reports it down.

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/expected.hpp"
#include "caf/sec.hpp"

#include "core/blocking.hpp"
#include "core/caf_errors.hpp"

#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"

namespace dref::internal {

/// Sends `xs...` to `peer` as a request and waits for a reply of type `R`
/// for at most `timeout`. Errors: the peer's own, `actors_errc::timeout`,
/// or `refs_errc::owner_died` (naming `what`) when the peer goes down first
/// (also for CAF's other errors: never one outside dref's categories).
/// Blocks the calling thread; never call it from inside an actor's handler.
template <class R, class... Ts>
caf::expected<R> watched_request(caf::actor_system& sys, const caf::actor& peer,
                                 caf::timespan timeout,
                                 const std::string& what, Ts... xs) {
  if (!peer)
    return make_error(refs_errc::owner_died, what + ": owner unreachable");
  auto done = std::make_shared<std::promise<caf::expected<R>>>();
  auto result = done->get_future();
  sys.spawn([=](caf::event_based_actor* self) {
    auto finished = std::make_shared<bool>(false);
    auto finish = [=](caf::expected<R> x) {
      if (*finished)
        return;
      *finished = true;
      done->set_value(std::move(x));
      self->quit();
    };
    self->monitor(peer);
    self->set_down_handler([=](caf::down_msg&) {
      finish(make_error(refs_errc::owner_died, what + ": owner process died"));
    });
    self->request(peer, timeout, xs...)
      .then([=](R& reply) { finish(std::move(reply)); },
            [=](caf::error& err) {
              if (err == caf::sec::request_timeout)
                finish(make_error(actors_errc::timeout, what));
              else // CAF's own errors (receiver down, ...) in dref's words
                finish(dref_error_of(std::move(err), what,
                                     make_error(refs_errc::owner_died)));
            });
  });
  // The actor always answers: reply, error, down, or its request timeout.
  // The extra second only guards against a scheduler that stopped.
  blocking_scope waiting; // a task thread hands its slot on meanwhile
  if (result.wait_for(timeout + std::chrono::seconds(1))
      != std::future_status::ready)
    return make_error(actors_errc::timeout, what);
  return result.get();
}

} // namespace dref::internal
