#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "caf/atom.hpp"
#include "caf/error.hpp"
#include "caf/fwd.hpp"

namespace dref {

/// Errors of calls, tasks and the runtime. Values are frozen: they cross
/// processes. The comment on each says what the caller should do.
enum class actors_errc : uint8_t {
  /// The task (or actor method) threw; the context names the function and
  /// carries the exception's message. Stop, or retry higher up.
  task_failed = 1,
  /// No function or actor class of that name is registered (DREF_REMOTE /
  /// DREF_ACTOR) in the worker. A bug: stop.
  unknown_function = 2,
  /// The caller's time limit passed before the value was ready. The task goes
  /// on; retry the wait.
  timeout = 3,
  /// The worker process running the task (or hosting the actor) died. Retry
  /// the call.
  worker_died = 4,
  /// The runtime is not running (failed to start, or stopped). Stop.
  runtime_down = 5,
  /// An argument was not acceptable (e.g. a ref of another runtime). A bug:
  /// stop.
  invalid_argument = 6,
  /// A retried call on a durable actor (same caller and sequence number)
  /// was applied before and its reply is no longer kept (only the last
  /// call's reply per caller is). Stop: do not retry it again.
  already_applied = 7,
  /// No durable actor of that name exists (it has no checkpoint). Stop, or
  /// spawn it.
  unknown_actor = 8,
  /// A blocking `get` (or a `wait` that would wait) was called on a thread
  /// of the runtime's own actor scheduler, i.e. inside a CAF actor's
  /// handler, where waiting starves the actors the value may depend on. A
  /// bug: use `dref::then` there, or read from a task or your own thread.
  would_block = 9,
};

constexpr caf::atom_value actors_category = caf::atom("dref_act");

std::string to_string(actors_errc x);
caf::error make_error(actors_errc x);
caf::error make_error(actors_errc x, std::string context);
void add_actors_error_category(caf::actor_system_config& cfg);

/// Registers the error categories of every dref folder with `cfg`.
void add_dref_error_categories(caf::actor_system_config& cfg);

/// `err` in words, without an actor system: an error of any dref category
/// (`refs_errc`, `store_errc`, `persist_errc`, `actors_errc`) as its
/// category, its code's name and its context, "dref_refs: type_mismatch
/// (a ref<int64> names a value of type std::string)", the same text as
/// `system().render(err)`; any other error as CAF renders it
/// (`caf::to_string`). An empty error (no error) renders as "none".
std::string render(const caf::error& err);

/// `render(err)`, as `dref::to_string(err)`. A template only so that an
/// unqualified `to_string(err)` (which also finds `caf::to_string` by
/// argument-dependent lookup) stays unambiguous and keeps meaning CAF's.
template <class Error,
          class = std::enable_if_t<std::is_same_v<Error, caf::error>>>
std::string to_string(const Error& err) {
  return render(err);
}

} // namespace dref
