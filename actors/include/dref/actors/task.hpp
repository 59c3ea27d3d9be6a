#pragma once

// The free functions of dref's API, the same in every process: in the
// driver, in tasks (a DREF_REMOTE function or a DREF_ACTOR method, in a
// worker) and in CAF actors: `call`, `get`, `wait`, `put` (and `then`,
// in then.hpp). See docs/api.md.

#include <chrono>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "caf/expected.hpp"
#include "caf/fwd.hpp"
#include "caf/timespan.hpp"

#include "dref/actors/registry.hpp"
#include "dref/actors/runtime.hpp"
#include "dref/actors/serialization.hpp"
#include "dref/refs/ref.hpp"

namespace dref {

namespace internal {

/// Serializes the value at `value` (of the type the caller knows) with
/// `write_value`: into `out`, or straight into the current result sink.
using put_writer = caf::error (*)(const void* value, blob& out);

// The entry points of the free functions below, valid in every process:
// in a worker they act on the worker (its tasks' calls, its own objects),
// in a driver on its runtime (the newest one running), elsewhere they fail
// (`api/task_api.cpp`).

/// `dref::put`: serializes with `write`, collecting the refs inside; above
/// the inline limit the bytes go straight into the node store (in a
/// worker, a `buffer` filled in place by a `buffer_writer` is sealed as it
/// is), else into a blob kept by the owner.
caf::expected<ref_base> api_put(const void* value, put_writer write,
                                 const void* call_site);
caf::expected<buffer>
api_get(const ref_base& x, caf::timespan timeout,
           std::vector<object_id>& held);
void api_unhold(std::vector<object_id>& held);
caf::actor_system* worker_system();
/// The refs of this process (null outside a worker or driver).
const ref_context* api_refs();
/// A call of a task (null ref outside a worker or driver).
ref_base api_submit(task_spec spec, const void* call_site);
ref_base api_failed(caf::error err);
std::vector<bool> api_wait(const std::vector<const ref_base*>& xs,
                              size_t n, caf::timespan timeout);

} // namespace internal

/// Inside a task: the worker's CAF actor system (to spawn or reach plain
/// CAF actors in this worker), or null outside a worker. Refs may travel
/// in plain CAF messages between processes of the cluster (types
/// registered with DREF_MESSAGE_TYPE); the receiver becomes a borrower.
inline caf::actor_system* worker_system() {
  return internal::worker_system();
}

/// Stores `x` as an object owned by this process (the worker whose task
/// calls it, or the driver: then as `runtime::put`) and returns a ref to
/// it, which may be returned or passed on. The object lives while any ref
/// to it exists anywhere; when its owner dies, every ref to it fails with
/// `owner_died` (fate-sharing, as in Ray). A value of more than
/// `inline_limit` serialized bytes is written once into the node store
/// (in a task, a `dref::buffer` from `make_buffer_writer` is sealed there
/// without a copy), and every worker on the node reads it in place.
/// Without a worker or running runtime in this process: `runtime_down`.
template <class T>
[[gnu::noinline, nodiscard]] caf::expected<ref<std::decay_t<T>>> put(T&& x) {
  using value_type = std::decay_t<T>;
  auto r = internal::api_put(
    &x,
    [](const void* p, blob& out) {
      return write_value(*static_cast<const value_type*>(p), out);
    },
    __builtin_return_address(0));
  if (!r)
    return std::move(r.error());
  return ref<std::decay_t<T>>{std::move(*r)};
}

/// The value of `x`, fetched from its owner when this process does not
/// hold it, waiting at most `timeout` (the same default in every process;
/// `runtime::get` waits without a bound unless told). In a handler of a
/// CAF actor on the runtime's scheduler: `would_block` at once (use
/// `dref::then`). Errors: the object's own,
/// `owner_died` as soon as the owner is known to be gone, `timeout`,
/// `type_mismatch` when `x` names a value of another type (`check_type`).
template <class T>
caf::expected<T> get(const ref<T>& x,
                     caf::timespan timeout = std::chrono::seconds(30)) {
  if (auto err = check_type(x))
    return err;
  std::vector<object_id> held;
  auto bytes = internal::api_get(x, timeout, held);
  if (!bytes) {
    internal::api_unhold(held);
    return std::move(bytes.error());
  }
  T value;
  caf::error err;
  {
    ref_read_scope reading{x.shared_context()}; // refs inside: ours now
    std::vector<buffer> sources{*bytes}; // a dref::buffer inside: no copy
    zero_copy_scope zero_copy{sources};
    err = from_bytes(bytes->data(), bytes->size(), value);
  }
  internal::api_unhold(held);
  if (err)
    return err;
  return value;
}

/// Calls the DREF_REMOTE function `fn` and returns at once: in the driver
/// as `runtime::call` (on the newest running runtime), inside a task from
/// the task's worker. The calling process owns the result
/// ("an owner per task tree"): it serves the value to whoever reads it,
/// frees it when the last ref anywhere is gone, and when this worker dies
/// every ref to it fails with `owner_died`. A task waiting for the results
/// of its calls (`get`, `wait`) hands its thread's slot to the worker's
/// next task, so recursive task trees do not starve the worker (up to
/// `max_task_threads` waiting tasks per worker). With neither a worker nor
/// a running runtime in this process it returns an empty ref.
template <class F, class... Ts>
[[gnu::noinline]] auto call(F fn, Ts&&... xs) {
  using traits = detail::fn_traits<F>;
  using result = result_type_t<typename traits::result>;
  static_assert(traits::arity == sizeof...(Ts),
                "wrong number of arguments for this function");
  auto ctx = internal::api_refs();
  if (ctx == nullptr)
    return ref<result>{};
  auto name = registry::instance().function_name(detail::fn_address(fn));
  if (name == nullptr)
    return ref<result>{internal::api_failed(internal::unregistered_function())};
  task_spec spec;
  std::vector<ref_base> keep; // the arguments' refs, until submitted
  if (auto err = internal::make_task<typename traits::args>(
        spec, task_kind::function, *name, 0, 0, type_tag<result>(), ctx, keep,
        std::forward<Ts>(xs)...))
    return ref<result>{internal::api_failed(std::move(err))};
  return ref<result>{
    internal::api_submit(std::move(spec), __builtin_return_address(0))};
}

/// Waits until at least `n` of `xs` are ready (have a value or an error)
/// or `timeout` passes, as `runtime::wait` does, in any process (on the
/// runtime's scheduler threads it only looks).
template <class T>
wait_result<T> wait(const std::vector<ref<T>>& xs, size_t n,
                    caf::timespan timeout = std::chrono::seconds(30)) {
  std::vector<const ref_base*> ptrs;
  ptrs.reserve(xs.size());
  for (auto& x : xs)
    ptrs.push_back(&x);
  auto ready = internal::api_wait(ptrs, n, timeout);
  wait_result<T> result;
  for (size_t i = 0; i < xs.size(); ++i)
    (ready[i] ? result.ready : result.not_ready).push_back(xs[i]);
  return result;
}

} // namespace dref
