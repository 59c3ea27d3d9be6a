#include "worker/task_runner.hpp"

#include <functional>
#include <string>

#include "worker/task_pool.hpp"
#include "worker/worker_context.hpp"

#include "dref/actors/error.hpp"
#include "dref/actors/registry.hpp"
#include "dref/actors/serialization.hpp"
#include "dref/persist/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

namespace dref::internal {

namespace {

caf::error type_error(const std::string& what, const std::string& expected,
                      const std::string& got) {
  return make_error(refs_errc::type_mismatch,
                    what + ": expected " + expected + ", got " + got);
}

caf::error check_signature(const std::string& what,
                           const std::vector<std::string>& params,
                           const std::string& result, const task_spec& t) {
  if (params.size() != t.args.size())
    return make_error(refs_errc::type_mismatch,
                      what + ": takes " + std::to_string(params.size())
                        + " arguments, called with "
                        + std::to_string(t.args.size()));
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i] != t.args[i].type)
      return type_error(what + " argument " + std::to_string(i), params[i],
                        t.args[i].type);
  if (result != t.result_type)
    return type_error(what + " result", result, t.result_type);
  return caf::none;
}

caf::expected<blob>
invoke_guarded(const std::string& what,
               const std::function<caf::expected<blob>()>& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_error(actors_errc::task_failed, what + ": " + e.what());
  } catch (...) {
    return make_error(actors_errc::task_failed,
                      what + ": unknown exception");
  }
}

// The value of one ref argument (step 1).
caf::expected<buffer> resolve_ref(worker_context& ctx, const task_arg& arg,
                                  std::vector<object_id>& held) {
  auto& refs = ctx.refs();
  if (arg.kind == arg_kind::borrowed_ref && arg.ref.owner != ctx.process())
    // Owned by another process (borrowed by the submitter): its owner
    // serves it.
    return refs.fetch_from(arg.from, true, arg.ref, held);
  if (arg.ref.owner == ctx.process()) // this worker's own `put`
    return refs.read_own(arg.ref, ctx.settings().fetch_timeout);
  if (auto local = refs.read_copy(arg.ref))
    // Here (its error, if the argument's task failed: so does this one).
    return std::move(*local);
  // Being made here by a task that waits (task_pool, rule 3): wait for it.
  if (arg.location == ctx.id() && ctx.pool() != nullptr
      && ctx.pool()->producing(arg.ref)
      && ctx.pool()->await_produced(arg.ref, ctx.settings().fetch_timeout))
    if (auto local = refs.read_copy(arg.ref))
      return std::move(*local);
  if (arg.kind == arg_kind::borrowed_ref || arg.location == ctx.id()) {
    // Not here: in the node store, or lost.
    auto value = refs.read_node(arg.ref);
    if (!value)
      return make_error(refs_errc::object_lost,
                        to_string(arg.ref) + " is neither in worker "
                          + std::to_string(ctx.id())
                          + " nor in the node store");
    return value;
  }
  return refs.fetch_from(arg.from, false, arg.ref, held);
}

// The name of the durable actor task `t` creates or calls, else empty;
// `what` becomes the call's name for messages.
std::string durable_target(actor_table& actors, const task_spec& t,
                           std::string& what) {
  what = t.name;
  switch (static_cast<task_kind>(t.kind)) {
    case task_kind::actor_create:
      return t.durable;
    case task_kind::actor_call: {
      auto inst = actors.find(t.actor);
      if (inst == nullptr)
        return {};
      auto& methods = inst->cls->methods;
      if (t.method < methods.size())
        what += "::" + methods[t.method].name;
      return inst->durable;
    }
    default:
      return {};
  }
}

// Borrows the refs inside argument `arg` of `t` before the task runs.
// Refs in durable state, step 1 (docs/architecture.md): for a task of a
// durable actor a ref that cannot be held (its owner gone or unreachable
// and no checkpoint keeps its value) fails the call like a state that
// cannot be saved, with io_error naming the actor and the value. Nothing
// ran: the instance and its state are as before the call.
caf::error hold_arg(worker_context& ctx, actor_table& actors,
                    const task_spec& t, const task_arg& arg,
                    std::vector<object_id>& held) {
  object_id failed;
  auto err = ctx.refs().hold(arg.contained, held, &failed);
  if (!err)
    return err;
  std::string what;
  auto durable = durable_target(actors, t, what);
  if (durable.empty())
    return err;
  return make_error(persist_errc::io_error,
                    "durable actor '" + durable + "': the value of "
                      + to_string(failed) + " that the arguments of " + what
                      + " refer to cannot be read to keep it, the call is "
                        "not applied: "
                      + to_string(err));
}

// Step 1 for every argument. `sources` keeps every resolved value alive
// while the task runs and lets `dref::buffer` parameters view their bytes
// in place.
caf::error resolve_args(worker_context& ctx, actor_table& actors,
                        const task_spec& t, std::vector<object_id>& held,
                        std::vector<buffer>& sources,
                        std::vector<byte_view>& args) {
  args.reserve(t.args.size());
  sources.reserve(t.args.size());
  for (auto& arg : t.args) {
    // The refs inside the value (sent along by the submitter): borrowed
    // before the task runs.
    if (auto err = hold_arg(ctx, actors, t, arg, held))
      return err;
    if (arg.kind == arg_kind::value) {
      args.push_back(byte_view{arg.value.data(), arg.value.size()});
      continue;
    }
    auto value = resolve_ref(ctx, arg, held);
    if (!value)
      return std::move(value.error());
    args.push_back(byte_view{value->data(), value->size()});
    sources.push_back(std::move(*value));
  }
  return caf::none;
}

caf::expected<blob> create_actor(worker_context& ctx, actor_table& actors,
                                 const task_spec& t, const byte_view* args,
                                 durable_state& saved) {
  auto& reg = registry::instance();
  auto cls = reg.actor_class(t.name);
  if (cls == nullptr)
    return make_error(actors_errc::unknown_function,
                      "no actor class named '" + t.name + "'");
  std::vector<std::string> types;
  for (auto& arg : t.args)
    types.push_back(arg.type);
  auto ctor = reg.constructor(registry::constructor_key(cls->type, types));
  if (ctor == nullptr)
    return make_error(actors_errc::unknown_function,
                      "no constructor " + t.name + " for these arguments");
  std::shared_ptr<void> obj;
  auto res = invoke_guarded(t.name + " constructor", [&] {
    auto made = ctor->create(args);
    if (!made)
      return caf::expected<blob>{std::move(made.error())};
    obj = std::move(*made);
    blob out;
    if (auto err = to_blob(unit_t{}, out))
      return caf::expected<blob>{err};
    return caf::expected<blob>{std::move(out)};
  });
  if (res) {
    auto& inst = *actors.emplace(t.actor).first;
    inst = actor_instance{cls, std::move(obj), t.durable, {}, {}};
    ++*actors.count;
    if (!t.durable.empty())
      if (auto err = save_state(inst, ctx, saved))
        return err;
  }
  return res;
}

caf::expected<blob> restore_actor(actor_table& actors, const task_spec& t,
                                  const byte_view* args) {
  auto& reg = registry::instance();
  auto cls = reg.actor_class(t.name);
  auto se = cls != nullptr ? reg.state(cls->type) : nullptr;
  if (se == nullptr || t.args.empty() || t.args.size() > 2)
    return make_error(actors_errc::unknown_function,
                      "cannot restore actor class '" + t.name + "'");
  // args: the state, and the sequence table stored with it.
  sequence_table table;
  blob state(args[0].data, args[0].data + args[0].size);
  auto obj = se->load(state);
  if (obj && t.args.size() == 2)
    if (auto err = from_blob(blob(args[1].data, args[1].data + args[1].size),
                             table))
      obj = std::move(err);
  if (!obj) {
    // No instance is better than one whose state was rolled back: later
    // calls fail instead of running on it.
    if (actors.erase(t.actor))
      --*actors.count;
    return make_error(persist_errc::incompatible_state,
                      "durable actor '" + t.durable
                        + "': its stored state does not load into class "
                        + t.name + " ("
                        + caf::to_string(obj.error().context()) + ")");
  }
  auto [slot, fresh] = actors.emplace(t.actor);
  if (fresh)
    ++*actors.count;
  *slot = actor_instance{cls, std::move(*obj), t.durable, std::move(table),
                         {}};
  return blob{};
}

// A durable call (docs/architecture.md, "Retries and the sequence table").
caf::expected<blob> call_durable(worker_context& ctx, actor_instance& inst,
                                 const method_entry& m,
                                 const std::string& what, const task_spec& t,
                                 const byte_view* args, durable_state& saved,
                                 std::vector<ref_base>& out_refs,
                                 node_result_sink* sink) {
  // 1. A call whose number the table holds for its caller is a retry:
  //    answered from the table, not applied again.
  caf::expected<blob> res{blob{}};
  auto last = t.seq == 0 ? inst.table.seqs.end()
                         : inst.table.seqs.find(t.caller);
  if (last != inst.table.seqs.end() && t.seq <= last->second) {
    auto reply = inst.table.replies.find(t.caller);
    if (t.seq == last->second && reply != inst.table.replies.end())
      res = reply->second;
    else
      res = make_error(actors_errc::already_applied,
                       what + ": call " + std::to_string(t.seq) + " of "
                         + t.caller + " was applied before (last: "
                         + std::to_string(last->second)
                         + ") and its reply is not kept");
  } else {
    // 2. Otherwise it runs; its number (and reply, if it succeeded) go
    //    into the table.
    ref_collect_scope collecting{out_refs};
    result_sink_scope in_place{sink};
    res = invoke_guarded(what,
                         [&] { return m.invoke(inst.object.get(), args); });
    if (t.seq != 0) {
      inst.table.seqs[t.caller] = t.seq;
      // A reply written into the node store is not kept (its bytes are
      // not in `res`): a retry of it gets `already_applied`.
      if (res && !(sink != nullptr && sink->written()))
        inst.table.replies[t.caller] = *res;
      else
        inst.table.replies.erase(t.caller);
    }
  }
  // 3. The state and the table after the call travel with the result, also
  //    after a failed call (memory and disk then hold the same); after a
  //    const method the state is as it was: nothing to save.
  if (m.is_const) {
    saved.name = inst.durable;
    saved.set = true;
    saved.unchanged = true;
    return res;
  }
  if (auto err = save_state(inst, ctx, saved))
    return err;
  return res;
}

caf::expected<blob> call_actor(worker_context& ctx, actor_table& actors,
                               const task_spec& t, const byte_view* args,
                               durable_state& saved,
                               std::vector<ref_base>& out_refs,
                               node_result_sink* sink) {
  auto found = actors.find(t.actor);
  if (found == nullptr)
    return make_error(actors_errc::task_failed,
                      t.name + " actor " + std::to_string(t.actor)
                        + " does not exist (its construction failed)");
  auto& inst = *found;
  if (t.method >= inst.cls->methods.size())
    return make_error(actors_errc::unknown_function,
                      t.name + " has no method #" + std::to_string(t.method));
  auto& m = inst.cls->methods[t.method];
  auto what = t.name + "::" + m.name;
  if (auto err = check_signature(what, m.arg_types, m.result_type, t))
    return err;
  if (!inst.durable.empty())
    return call_durable(ctx, inst, m, what, t, args, saved, out_refs, sink);
  ref_collect_scope collecting{out_refs};
  result_sink_scope in_place{sink};
  return invoke_guarded(what,
                        [&] { return m.invoke(inst.object.get(), args); });
}

} // namespace

actor_instance* actor_table::find(uint64_t actor) {
  std::lock_guard<std::mutex> guard{*mtx};
  auto i = instances.find(actor);
  return i == instances.end() ? nullptr : &i->second;
}

std::pair<actor_instance*, bool> actor_table::emplace(uint64_t actor) {
  std::lock_guard<std::mutex> guard{*mtx};
  auto [i, fresh] = instances.try_emplace(actor);
  return {&i->second, fresh};
}

bool actor_table::erase(uint64_t actor) {
  std::lock_guard<std::mutex> guard{*mtx};
  return instances.erase(actor) > 0;
}

caf::expected<blob> run_task(worker_context& ctx, actor_table& actors,
                             const task_spec& t, durable_state& saved,
                             std::vector<object_id>& held,
                             std::vector<ref_base>& out_refs,
                             node_result_sink* sink) {
  std::vector<buffer> sources;
  std::vector<byte_view> args;
  if (auto err = resolve_args(ctx, actors, t, held, sources, args))
    return err;
  ref_read_scope reading{ctx.refs_ptr()};
  zero_copy_scope zero_copy{sources};
  switch (static_cast<task_kind>(t.kind)) {
    case task_kind::function: {
      auto fn = registry::instance().function(t.name);
      if (fn == nullptr)
        return make_error(actors_errc::unknown_function,
                          "no function named '" + t.name + "'");
      if (auto err = check_signature(t.name, fn->arg_types, fn->result_type,
                                     t))
        return err;
      ref_collect_scope collecting{out_refs};
      result_sink_scope in_place{sink};
      return invoke_guarded(t.name, [&] { return fn->invoke(args.data()); });
    }
    case task_kind::actor_create:
      return create_actor(ctx, actors, t, args.data(), saved);
    case task_kind::actor_restore:
      return restore_actor(actors, t, args.data());
    case task_kind::actor_call:
      return call_actor(ctx, actors, t, args.data(), saved, out_refs, sink);
    case task_kind::actor_destroy:
      if (actors.erase(t.actor))
        --*actors.count;
      return blob{};
  }
  return make_error(actors_errc::invalid_argument, "unknown task kind");
}

} // namespace dref::internal
