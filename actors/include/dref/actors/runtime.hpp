#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "caf/actor.hpp"
#include "caf/error.hpp"
#include "caf/expected.hpp"
#include "caf/fwd.hpp"
#include "caf/timespan.hpp"

#include "dref/actors/config.hpp"
#include "dref/actors/error.hpp"
#include "dref/actors/memory.hpp"
#include "dref/actors/registry.hpp"
#include "dref/actors/serialization.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/refs/ref.hpp"

namespace dref {

namespace internal {

class runtime_impl;

// Non-template entry points behind the templates below (runtime.cpp).
ref_base submit(runtime_impl& rt, task_spec spec,
                const void* call_site = nullptr);
ref_base failed_ref(runtime_impl& rt, caf::error err);
ref_base put_blob(runtime_impl& rt, blob value, const void* call_site,
                  std::vector<ref_base>&& refs);
caf::expected<buffer> get_blob(runtime_impl& rt, const ref_base& x,
                               caf::timespan timeout,
                               std::vector<object_id>& held);
void unhold(runtime_impl& rt, std::vector<object_id>& held);
std::string node_store_prefix(const runtime_impl& rt);
std::vector<bool> wait_ids(runtime_impl& rt,
                           const std::vector<const ref_base*>& xs, size_t n,
                           caf::timespan timeout);
uint64_t next_actor_id(runtime_impl& rt);
/// Submits the creation of a durable actor: a restore from its checkpoint
/// when one exists, else `create` as given.
ref_base submit_durable(runtime_impl& rt, task_spec create,
                        const void* call_site,
                        const checkpoint_policy& policy);
void destroy_actor(runtime_impl& rt, uint64_t actor, const std::string& cls);
/// Submits the restore of the stored durable actor named by `create`
/// (`unknown_actor` when it has no checkpoint).
caf::expected<ref_base> recover_durable(runtime_impl& rt, task_spec create,
                                        const void* call_site,
                                        const checkpoint_policy& policy);
/// The handle state of the durable actor `name`: the live one (which must
/// be of class `type`), or a new one from `make`, remembered while alive.
caf::expected<std::shared_ptr<void>>
durable_actor(runtime_impl& rt, const std::string& name,
              const std::type_info& type,
              const std::function<caf::expected<std::shared_ptr<void>>()>& make);
const ref_context* context_of(const runtime_impl& rt);
/// The runtime the free functions of task.hpp use in a driver: the newest
/// one running in this process (api/task_api.cpp).
void set_current_driver(const std::shared_ptr<runtime_impl>& rt);
void clear_current_driver(const runtime_impl* rt);
std::shared_ptr<runtime_impl> current_driver();
/// The ref server of the process `x` is counted in: it answers `get_atom`
/// requests for `x` (asking its owner when another process owns it).
caf::actor ref_server_of(const ref_base& x);
/// An error of a request to a ref server (`dref::then`) in dref's
/// categories: CAF's timeout becomes `timeout`, its other errors (the
/// server gone) `runtime_down`; dref's own errors stay as they are.
caf::error owner_request_error(caf::error err, const object_id& id);

template <class T>
struct is_ref : std::false_type {};

template <class T>
struct is_ref<ref<T>> : std::true_type {};

template <class T>
struct value_type_of {
  using type = T;
};

template <class T>
struct value_type_of<ref<T>> {
  using type = T;
};

// The parameter type a dynamically named call infers from an argument.
template <class X, class D = std::decay_t<X>>
using inferred_arg_t = std::conditional_t<
  std::is_same_v<D, const char*> || std::is_same_v<D, char*>, std::string,
  typename value_type_of<D>::type>;

// Serializes `x` into `out.value`, recording the refs inside it (which
// must all belong to `ctx`) in `out.contained`. The collected refs go to
// `keep`, which the caller holds until the task is submitted (and so holds
// them): a temporary argument may own the only refs.
template <class P>
caf::error write_arg(const P& x, const ref_context* ctx, task_arg& out,
                     std::vector<ref_base>& keep) {
  std::vector<ref_base> refs;
  {
    ref_collect_scope scope{refs};
    if (auto err = to_blob(x, out.value))
      return err;
  }
  for (auto& r : refs) {
    if (r.context() != ctx)
      return make_error(actors_errc::invalid_argument,
                        "a value holds a ref owned by another runtime");
    ref_descriptor d;
    d.id = r.id();
    r.context()->describe(r.id(), d);
    out.contained.push_back(std::move(d));
    keep.push_back(std::move(r));
  }
  return caf::none;
}

template <class To, class From, class = void>
struct brace_convertible : std::false_type {};

template <class To, class From>
struct brace_convertible<To, From,
                         std::void_t<decltype(To{std::declval<From>()})>>
  : std::true_type {};

// True when a `D` converts to a `P` only by narrowing (as C++ defines it
// for braced initialization, by type: `double` to `int32_t`, `int` to
// `uint64_t`, `int64_t` to `int32_t`, `int` to `double`).
template <class P, class D>
constexpr bool is_narrowing_v
  = (std::is_arithmetic_v<P> || std::is_enum_v<P>)
    && (std::is_arithmetic_v<D> || std::is_enum_v<D>)
    && !brace_convertible<P, D>::value;

// Turns one argument into a task_arg for a parameter of type P. An
// argument converts as in a direct call of the function, except that a
// narrowing conversion is refused (the worker would compute with another
// value than the caller wrote); a ref<T> passes for a parameter of type T
// or ref<T> only.
template <class P, class X>
caf::error make_arg(X&& x, const ref_context* ctx, task_arg& out,
                    std::vector<ref_base>& keep) {
  using D = std::decay_t<X>;
  out.type = type_tag<P>();
  if constexpr (is_ref<D>::value && !is_ref<P>::value) {
    static_assert(std::is_same_v<typename D::value_type, P>,
                  "a ref<T> may only be passed for a parameter of type T");
    if (!x.valid())
      return make_error(actors_errc::invalid_argument, "an empty ref");
    if (x.context() != ctx)
      return make_error(actors_errc::invalid_argument,
                        "a ref owned by another runtime");
    if (auto err = check_type(x))
      return err;
    out.kind = arg_kind::owned_ref;
    out.ref = x.id(); // `x` outlives the submission (a full-expression)
    return caf::none;
  } else if constexpr (is_ref<D>::value && !std::is_same_v<D, P>) {
    static_assert(std::is_same_v<D, P>,
                  "a ref<U> may only be passed for a parameter of type "
                  "ref<U> or U, never for a ref<T> of another type T");
    return caf::none; // not reached: refused above
  } else if constexpr (std::is_same_v<D, P>) {
    return write_arg<P>(x, ctx, out, keep);
  } else {
    static_assert(!is_narrowing_v<P, D>,
                  "narrowing argument: it does not fit the parameter's type "
                  "in every case (e.g. 1.5 for an int32_t, an int for a "
                  "uint64_t or a double); pass a value of the parameter's "
                  "type, e.g. int32_t{2} or static_cast<int32_t>(x)");
    static_assert(std::is_convertible_v<X&&, P>,
                  "this argument does not convert implicitly to the "
                  "parameter's type");
    if constexpr (std::is_convertible_v<X&&, P> && !is_narrowing_v<P, D>) {
      P tmp(std::forward<X>(x));
      return write_arg<P>(tmp, ctx, out, keep);
    } else {
      return caf::none; // not reached: refused above
    }
  }
}

template <class Params, size_t... Is, class... Xs>
caf::error make_args([[maybe_unused]] const ref_context* ctx,
                     std::vector<task_arg>& out,
                     [[maybe_unused]] std::vector<ref_base>& keep,
                     std::index_sequence<Is...>, Xs&&... xs) {
  out.resize(sizeof...(Xs));
  caf::error err;
  static_cast<void>(
    ((err = make_arg<std::tuple_element_t<Is, Params>>(std::forward<Xs>(xs),
                                                       ctx, out[Is], keep),
      !err)
     && ...));
  return err;
}

/// The error of a call of a function not registered with DREF_REMOTE.
inline caf::error unregistered_function() {
  return make_error(actors_errc::unknown_function,
                    "function not registered with DREF_REMOTE");
}

// Fills `spec` for a call of `name` (a function, or a method `method` of
// actor `actor`) with result type `result_type` and arguments `xs` for
// parameters `Params`, serialized against `ctx`; the refs the arguments
// hold go to `keep` until the task is submitted. The one place every call
// path (`runtime::call`, `dref::call`, by name) builds its task.
template <class Params, class... Xs>
caf::error make_task(task_spec& spec, task_kind kind, const std::string& name,
                     uint64_t actor, uint32_t method,
                     const std::string& result_type, const ref_context* ctx,
                     std::vector<ref_base>& keep, Xs&&... xs) {
  spec.kind = static_cast<uint8_t>(kind);
  spec.name = name;
  spec.actor = actor;
  spec.method = method;
  spec.result_type = result_type;
  return make_args<Params>(ctx, spec.args, keep,
                           std::make_index_sequence<sizeof...(Xs)>{},
                           std::forward<Xs>(xs)...);
}

} // namespace internal

/// Result of `runtime::wait`: the refs whose value (or error) is known, and
/// the others, each in the order they were passed.
template <class T>
struct wait_result {
  std::vector<ref<T>> ready;
  std::vector<ref<T>> not_ready;
};

/// One worker process of the local cluster.
struct worker_info {
  worker_id id = 0;
  int pid = 0;
  /// Port of the worker's published store actor on 127.0.0.1.
  uint16_t port = 0;
  /// A plain CAF actor in the worker that answers `echo_atom, int32_t` with
  /// the same number: the baseline for benchmarks.
  caf::actor echo;
};

/// What one worker holds (see `runtime::stats`).
struct worker_stats {
  worker_id id = 0;
  int pid = 0;
  uint64_t objects = 0;
  uint64_t bytes = 0;
  uint64_t actors = 0;
  /// Refs the worker holds in its own tables: objects its tasks `put` plus
  /// objects it borrows.
  uint64_t refs = 0;
  /// False for a worker that died before it answered (the driver had not
  /// dropped it yet): its counts are zero, its tables went with it, and
  /// the runtime drops it (and starts a replacement) once it notices.
  bool alive = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_stats& x) {
  return f(caf::meta::type_name("dref.worker_stats"), x.id, x.pid, x.objects,
           x.bytes, x.actors, x.refs, x.alive);
}

/// The whole cluster's bookkeeping at one moment (see `runtime::stats`).
struct runtime_stats {
  /// Objects in the owner's table.
  uint64_t owned_objects = 0;
  /// Objects owned by other processes that the driver borrows.
  uint64_t borrowed_objects = 0;
  /// Refs the driver sent in plain CAF messages, held until the receiver
  /// registered (transit holds).
  uint64_t transit_holds = 0;
  /// Protections a process that died held (its borrows, its tasks'
  /// arguments), kept for a short grace so that refs it sent just before
  /// dying can still be registered (docs/architecture.md, "Borrowing").
  uint64_t lingering_holds = 0;
  /// Borrow registrations sent and not answered, plus releases and frees
  /// waiting to be sent.
  uint64_t pending_registrations = 0;
  uint64_t pending_releases = 0;
  /// Tasks sent to workers whose results have not come back.
  uint64_t in_flight_tasks = 0;
  /// Tasks the owner holds back until their arguments are ready.
  uint64_t held_tasks = 0;
  /// Live actor instances the owner knows of.
  uint64_t actors = 0;
  /// Writes of durable actors' checkpoints to the store since the start
  /// (each may hold many actors' states).
  uint64_t checkpoint_writes = 0;
  /// Values that durable actors' checkpoints keep on disk because their
  /// states hold refs to them ("Refs in durable state").
  uint64_t kept_values = 0;
  /// The node store (hosted by the driver): objects it holds (in memory or
  /// spilled), their bytes in shared memory, and spilled objects.
  uint64_t node_objects = 0;
  uint64_t node_bytes = 0;
  uint64_t node_on_disk = 0;
  std::vector<worker_stats> workers;
};

template <class C>
class actor_handle;

/// Spawn option: the actor is durable under `name`. Its state (through the
/// class's `inspect`) is written to the checkpoint store after each call and
/// before the call's result is acknowledged; a spawn of the same name finds
/// it again, also after the whole cluster restarted, and an actor whose
/// worker dies comes back on another worker with its calls that were in
/// flight applied once. See docs/architecture.md ("Durable actors").
struct durable {
  explicit durable(std::string actor_name) : name(std::move(actor_name)) {
  }

  /// Weaker policy: write the state every `n` calls (n >= 1) instead of
  /// after each; calls are acknowledged at once. See `checkpoint_policy`.
  durable& checkpoint_every(uint64_t n) {
    policy.calls = n == 0 ? 1 : n;
    policy.interval = caf::timespan{0};
    return *this;
  }

  /// Weaker policy: write the state once `t` passed since the last write
  /// (if it changed); calls are acknowledged at once.
  durable& checkpoint_every(caf::timespan t) {
    policy.calls = 0;
    policy.interval = t;
    return *this;
  }

  std::string name;
  checkpoint_policy policy;
};

/// Entry point of dref: starts (or, in a later stage, joins) a cluster and
/// submits work to it.
///
/// With no cluster address the runtime starts an embedded local cluster:
/// `config::num_workers` worker processes, each this same program started
/// again (see `run_worker_if_requested`), connected to this process over
/// loopback TCP through CAF's middleman. This process owns every object its
/// calls create (the ownership table lives here).
///
/// Who may touch it: any thread; every member function is thread-safe.
/// Lifetime: destroying the runtime stops and reaps every worker process;
/// refs that outlive it stay valid objects but resolve to `runtime_down`.
class runtime {
public:
  /// Starts the local cluster. Check `running()`; on failure `status()`
  /// says why and every call returns `runtime_down`.
  explicit runtime(config cfg = {});

  ~runtime();

  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// True once every worker registered, until the runtime stops.
  bool running() const;

  /// Why the runtime is not running (none while it runs).
  caf::error status() const;

  /// Calls a DREF_REMOTE function in a worker; returns at once. Arguments
  /// are values (serialized now) or refs (the task waits for them).
  template <class F, class... Ts>
  [[gnu::noinline]] auto call(F fn, Ts&&... xs) {
    using traits = detail::fn_traits<F>;
    using result = result_type_t<typename traits::result>;
    static_assert(traits::arity == sizeof...(Ts),
                  "wrong number of arguments for this function");
    auto name = registry::instance().function_name(detail::fn_address(fn));
    if (name == nullptr)
      return ref<result>{
        internal::failed_ref(*impl_, internal::unregistered_function())};
    return ref<result>{submit_call<typename traits::args>(
      __builtin_return_address(0), task_kind::function, *name, 0, 0,
      type_tag<result>(), std::forward<Ts>(xs)...)};
  }

  /// Calls the function registered as `name`, expecting a result of type
  /// `R`; parameter types are inferred from the arguments (a `ref<T>` passes
  /// a `T`, a string literal a `std::string`). Mismatches give
  /// `type_mismatch`, unknown names `unknown_function`, at `get`.
  template <class R, class... Ts>
  [[gnu::noinline]] ref<R> call_by_name(const std::string& name, Ts&&... xs) {
    using params = std::tuple<internal::inferred_arg_t<Ts>...>;
    return ref<R>{submit_call<params>(__builtin_return_address(0),
                                      task_kind::function, name, 0, 0,
                                      type_tag<R>(), std::forward<Ts>(xs)...)};
  }

  /// Waits at most `timeout` for the value of `x`. Errors: the task's own
  /// (`task_failed`, `worker_died`, ...), `actors_errc::timeout`, or
  /// `type_mismatch` when `x` was read from bytes naming a value of
  /// another type (`check_type`).
  template <class T>
  caf::expected<T> get(const ref<T>& x, caf::timespan timeout = no_timeout) {
    if (auto err = check_type(x))
      return err;
    std::vector<object_id> held; // the refs inside, until they are read
    auto bytes = internal::get_blob(*impl_, x, timeout, held);
    if (!bytes) {
      internal::unhold(*impl_, held);
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
    internal::unhold(*impl_, held);
    if (err)
      return err;
    return value;
  }

  /// Waits until at least `n` of `xs` are ready (have a value or an error)
  /// or `timeout` passes, whichever is first.
  template <class T>
  wait_result<T> wait(const std::vector<ref<T>>& xs, size_t n,
                      caf::timespan timeout = no_timeout) {
    std::vector<const ref_base*> ptrs;
    ptrs.reserve(xs.size());
    for (auto& x : xs)
      ptrs.push_back(&x);
    auto ready = internal::wait_ids(*impl_, ptrs, n, timeout);
    wait_result<T> result;
    for (size_t i = 0; i < xs.size(); ++i)
      (ready[i] ? result.ready : result.not_ready).push_back(xs[i]);
    return result;
  }

  /// Stores `x` as an object owned by this process. Refs inside `x` (nested
  /// refs) stay alive as long as the new object does.
  template <class T>
  [[gnu::noinline]] ref<std::decay_t<T>> put(T&& x) {
    blob bytes;
    std::vector<ref_base> refs;
    {
      ref_collect_scope scope{refs};
      if (auto err = to_blob(x, bytes))
        return ref<std::decay_t<T>>{internal::failed_ref(*impl_, err)};
    }
    return ref<std::decay_t<T>>{
      internal::put_blob(*impl_, std::move(bytes),
                         __builtin_return_address(0), std::move(refs))};
  }

  /// Creates an instance of the DREF_ACTOR class `C` in a worker, passing
  /// `xs` to its constructor; returns at once. With `durable("name")`
  /// first: a durable actor (see `durable`); a live handle of that name in
  /// this runtime is returned as it is, and a stored one is restored
  /// (constructor arguments then are ignored). Errors, at `created()`:
  /// `type_mismatch` when the name belongs to another class,
  /// `incompatible_state` when the stored state does not load into `C`,
  /// `checkpoint_corrupt` naming the actor when no good checkpoint is left.
  template <class C, class... Ts>
  actor_handle<C> spawn(Ts&&... xs);

  /// The durable actor `name` of class `C`: the live one in this runtime,
  /// or the one stored in the checkpoint store (e.g. after a full restart),
  /// restored from its newest good checkpoint. Errors: `unknown_actor` when
  /// no actor of that name was ever stored, `type_mismatch` when it is of
  /// another class, the store's errors (`checkpoint_corrupt` naming the
  /// actor, `io_error`); `incompatible_state` at `created()` when the
  /// stored state does not load into `C`.
  template <class C>
  caf::expected<actor_handle<C>> actor(const std::string& name) {
    return actor<C>(durable{name});
  }

  /// The same with a checkpoint policy (`durable(name).checkpoint_every`).
  template <class C>
  caf::expected<actor_handle<C>> actor(const durable& d);

  /// The worker processes, alive now.
  std::vector<worker_info> workers() const;

  /// Asks the owner and every worker what they hold.
  caf::expected<runtime_stats>
  stats(caf::timespan timeout = std::chrono::seconds(5));

  /// Lists, per process, the objects this runtime owns and the copies its
  /// workers hold (what `dref memory` prints; see `to_text`).
  caf::expected<memory_report>
  memory(caf::timespan timeout = std::chrono::seconds(5));

  /// The driver's CAF actor system.
  caf::actor_system& system();

  /// Path prefix of every file of this runtime's node store in its shm
  /// directory (`/dev/shm/dref.<uid>.<name>.<pid>.`); empty if the store
  /// is not open. After the runtime stops, no such file remains.
  std::string node_store_prefix() const;

  /// For the runtime's own helpers.
  const std::shared_ptr<internal::runtime_impl>& impl() const {
    return impl_;
  }

private:
  template <class C>
  friend class actor_handle;

  template <class Params, class... Ts>
  ref_base submit_call(const void* call_site, task_kind kind,
                       const std::string& name, uint64_t actor,
                       uint32_t method, const std::string& result_type,
                       Ts&&... xs) {
    task_spec spec;
    std::vector<ref_base> keep; // the argument's refs, until submitted
    if (auto err = internal::make_task<Params>(
          spec, kind, name, actor, method, result_type,
          internal::context_of(*impl_), keep, std::forward<Ts>(xs)...))
      return internal::failed_ref(*impl_, std::move(err));
    return internal::submit(*impl_, std::move(spec), call_site);
  }

  std::shared_ptr<internal::runtime_impl> impl_;
};

/// A handle to an actor instance living in a worker. Calls run one at a
/// time in the order they were submitted (through any copy of the handle).
///
/// Who may touch it: any thread. Lifetime: the instance is destroyed (after
/// its pending calls) when the last copy of the handle is gone.
template <class C>
class actor_handle {
public:
  actor_handle() = default;

  /// Calls `method` on the instance with `xs`; returns at once (an empty
  /// ref for a default-constructed handle).
  template <class M, class... Ts>
  [[gnu::noinline]] auto call(M method, Ts&&... xs) {
    using traits = detail::method_traits<M>;
    using result = result_type_t<typename traits::result>;
    static_assert(std::is_base_of_v<typename traits::cls, C>,
                  "method of another class");
    static_assert(traits::arity == sizeof...(Ts),
                  "wrong number of arguments for this method");
    if (!state_ || !state_->rt)
      return ref<result>{};
    auto& rt = *state_->rt;
    auto cls = registry::instance().actor_class(typeid(C));
    if (cls == nullptr)
      return ref<result>{internal::failed_ref(
        rt, make_error(actors_errc::unknown_function,
                       "class not registered with DREF_ACTOR"))};
    auto key = detail::method_key(method);
    uint32_t index = 0;
    while (index < cls->methods.size() && cls->methods[index].key != key)
      ++index;
    if (index == cls->methods.size())
      return ref<result>{internal::failed_ref(
        rt, make_error(actors_errc::unknown_function,
                       "method not listed in DREF_ACTOR(" + cls->name
                         + ", ...)"))};
    task_spec spec;
    spec.kind = static_cast<uint8_t>(task_kind::actor_call);
    spec.name = cls->name;
    spec.actor = state_->id;
    spec.method = index;
    spec.result_type = type_tag<result>();
    std::vector<ref_base> keep; // the argument's refs, until submitted
    if (auto err = internal::make_args<typename traits::args>(
          internal::context_of(rt), spec.args, keep,
          std::make_index_sequence<sizeof...(Ts)>{}, std::forward<Ts>(xs)...))
      return ref<result>{internal::failed_ref(rt, std::move(err))};
    return ref<result>{
      internal::submit(rt, std::move(spec), __builtin_return_address(0))};
  }

  /// Resolves once the instance is constructed, or to the error that
  /// prevented it.
  const ref<unit_t>& created() const {
    return state_->created;
  }

  /// The instance's id, unique within the runtime.
  uint64_t id() const {
    return state_ ? state_->id : 0;
  }

  explicit operator bool() const {
    return state_ != nullptr;
  }

private:
  friend class runtime;

  struct state {
    std::shared_ptr<internal::runtime_impl> rt;
    uint64_t id = 0;
    std::string cls;
    ref<unit_t> created;
    ~state() {
      if (rt && created.valid())
        internal::destroy_actor(*rt, id, cls);
    }
  };

  std::shared_ptr<state> state_;
};

template <class C, class... Ts>
[[gnu::noinline]] actor_handle<C> runtime::spawn(Ts&&... xs) {
  using state_type = typename actor_handle<C>::state;
  actor_handle<C> result;
  auto cls = registry::instance().actor_class(typeid(C));
  auto fresh = [&] {
    auto st = std::make_shared<state_type>();
    st->rt = impl_;
    if (cls != nullptr) {
      st->cls = cls->name;
      st->id = internal::next_actor_id(*impl_);
    }
    return st;
  };
  if (cls == nullptr) {
    result.state_ = fresh();
    result.state_->created = ref<unit_t>{internal::failed_ref(
      *impl_, make_error(actors_errc::unknown_function,
                         "class not registered with DREF_ACTOR"))};
    return result;
  }
  auto site = __builtin_return_address(0);
  checkpoint_policy policy;
  auto make = [&](uint64_t id, std::string durable_name, auto&&... args) {
    static_assert((!internal::is_ref<std::decay_t<decltype(args)>>::value
                   && ...),
                  "constructor arguments must be values");
    static_cast<void>(detail::constructor_registrar<
                      C, std::decay_t<decltype(args)>...>::registered);
    using params = std::tuple<std::decay_t<decltype(args)>...>;
    task_spec spec;
    spec.kind = static_cast<uint8_t>(task_kind::actor_create);
    spec.name = cls->name;
    spec.actor = id;
    spec.result_type = type_tag<unit_t>();
    spec.durable = std::move(durable_name);
    std::vector<ref_base> keep; // the argument's refs, until submitted
    if (auto err = internal::make_args<params>(
          internal::context_of(*impl_), spec.args, keep,
          std::make_index_sequence<sizeof...(args)>{},
          std::forward<decltype(args)>(args)...))
      return internal::failed_ref(*impl_, std::move(err));
    if (spec.durable.empty())
      return internal::submit(*impl_, std::move(spec), site);
    return internal::submit_durable(*impl_, std::move(spec), site, policy);
  };
  if constexpr (sizeof...(Ts) > 0
                && (std::is_same_v<std::decay_t<Ts>, durable> || ...)) {
    static_cast<void>(detail::state_registrar<C>::registered);
    auto call_with = [&](auto&& first, auto&&... rest) {
      static_assert(std::is_same_v<std::decay_t<decltype(first)>, durable>,
                    "dref::durable must be the first argument of spawn");
      policy = first.policy;
      // One instance per name and runtime: a live handle of the name is
      // returned as it is (its state wins over constructor arguments).
      auto made = internal::durable_actor(
        *impl_, first.name, typeid(C),
        [&]() -> caf::expected<std::shared_ptr<void>> {
          auto st = fresh();
          st->created = ref<unit_t>{
            make(st->id, first.name, std::forward<decltype(rest)>(rest)...)};
          return std::static_pointer_cast<void>(st);
        });
      if (made) {
        result.state_ = std::static_pointer_cast<state_type>(*made);
      } else {
        result.state_ = fresh();
        result.state_->created = ref<unit_t>{
          internal::failed_ref(*impl_, std::move(made.error()))};
      }
    };
    call_with(std::forward<Ts>(xs)...);
  } else {
    result.state_ = fresh();
    result.state_->created = ref<unit_t>{
      make(result.state_->id, std::string{}, std::forward<Ts>(xs)...)};
  }
  return result;
}

template <class C>
[[gnu::noinline]] caf::expected<actor_handle<C>>
runtime::actor(const durable& d) {
  const auto& name = d.name;
  using state_type = typename actor_handle<C>::state;
  static_cast<void>(detail::state_registrar<C>::registered);
  auto cls = registry::instance().actor_class(typeid(C));
  if (cls == nullptr)
    return make_error(actors_errc::unknown_function,
                      "class not registered with DREF_ACTOR");
  auto site = __builtin_return_address(0);
  auto made = internal::durable_actor(
    *impl_, name, typeid(C), [&]() -> caf::expected<std::shared_ptr<void>> {
      auto st = std::make_shared<state_type>();
      st->rt = impl_;
      st->cls = cls->name;
      st->id = internal::next_actor_id(*impl_);
      task_spec spec;
      spec.kind = static_cast<uint8_t>(task_kind::actor_create);
      spec.name = cls->name;
      spec.actor = st->id;
      spec.result_type = type_tag<unit_t>();
      spec.durable = name;
      auto created = internal::recover_durable(*impl_, std::move(spec), site,
                                               d.policy);
      if (!created)
        return std::move(created.error()); // st has no `created`: no destroy
      st->created = ref<unit_t>{std::move(*created)};
      return std::static_pointer_cast<void>(st);
    });
  if (!made)
    return std::move(made.error());
  actor_handle<C> result;
  result.state_ = std::static_pointer_cast<state_type>(*made);
  return result;
}

/// If this process was started by a runtime as one of its workers, runs the
/// worker until its driver stops it and returns the exit code; otherwise
/// returns nothing at once. Call it first thing in `main` (the `runtime`
/// constructor calls it too, and exits the process in a worker).
std::optional<int> run_worker_if_requested();

} // namespace dref
