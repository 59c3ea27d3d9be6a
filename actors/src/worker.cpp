// The worker process: an executor that runs tasks one at a time, a store
// server that hands out the values they made, and an echo actor for
// benchmarks. Started by `worker_pool`, entered through
// `run_worker_if_requested`.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <thread>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <unordered_map>

#include <unistd.h>

#include "caf/all.hpp"
#include "caf/io/middleman.hpp"

#include "in_place_buffer.hpp"
#include "messages.hpp"
#include "result_outbox.hpp"
#include "worker_context.hpp"
#include "worker_pool.hpp"

#include "dref/actors/error.hpp"
#include "dref/actors/registry.hpp"
#include "dref/actors/task.hpp"
#include "dref/persist/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"
#include "dref/store/local_store.hpp"
#include "dref/store/node_client.hpp"

namespace dref {

namespace internal {

namespace {

// The worker's refs, for task code (`dref::put`, `dref::get`).
std::mutex current_mtx;
std::shared_ptr<worker_context> current; // guarded by current_mtx

std::shared_ptr<worker_context> current_worker() {
  std::lock_guard<std::mutex> guard{current_mtx};
  return current;
}

/// What the driver tells a worker through `DREF_WORKER`.
struct worker_settings {
  std::string host;
  uint16_t owner_port = 0;
  worker_id id = 0;
  config cfg;
  /// The node store's transfer server on `host` (0: no node store).
  uint16_t store_port = 0;
};

bool parse_settings(const char* text, worker_settings& out) {
  std::istringstream in{text};
  long long fetch_ms = 0, hb_ms = 0, timeout_ms = 0, transit_ms = 0;
  in >> out.host >> out.owner_port >> out.id >> out.cfg.inline_limit
    >> fetch_ms >> out.cfg.scheduler_threads >> hb_ms >> timeout_ms
    >> out.cfg.scheduler_policy >> out.cfg.middleman_workers >> transit_ms
    >> out.store_port;
  if (!in)
    return false;
  out.cfg.fetch_timeout = std::chrono::milliseconds{fetch_ms};
  out.cfg.heartbeat_interval = std::chrono::milliseconds{hb_ms};
  out.cfg.connection_timeout = std::chrono::milliseconds{timeout_ms};
  out.cfg.transit_timeout = std::chrono::milliseconds{transit_ms};
  return true;
}

/// One actor instance hosted by this worker.
struct actor_instance {
  const actor_class_entry* cls = nullptr;
  std::shared_ptr<void> object;
  /// Name of a durable actor, empty otherwise.
  std::string durable;
  /// Durable actors: the sequence table that belongs to the state.
  sequence_table table;
  /// Durable actors: the values the last state sent to the owner refers
  /// to (id -> the refs inside that value); their values were sent with it
  /// or before ("Refs in durable state", docs/architecture.md). Empty
  /// after a restore: the next state sends every value again.
  std::map<object_id, std::vector<object_id>> kept;
};

/// A durable actor's state after a task, to travel with its result.
struct durable_state {
  std::string name;
  blob state;
  sequence_table table;
  bool set = false;
  bool unchanged = false; // a const method ran: nothing to write
  bool refused = false;   // the state could not be saved: roll back
  std::vector<object_id> kept;
  std::vector<kept_ref_value> kept_values;
};

// Refs in durable state, step 1 (docs/architecture.md): the values `refs`
// (collected from the state) refer to, transitively, go with the state;
// those sent with an earlier state of `inst` are not sent again. A value
// that is itself a failure (`is_object_failure`: its task failed) is not
// kept; any other error refuses the state.
caf::error keep_values(actor_instance& inst, worker_context& ctx,
                       std::vector<ref_base>& refs, durable_state& out) {
  std::map<object_id, std::vector<object_id>> now;
  std::vector<std::pair<object_id, uint16_t>> todo;
  for (auto& r : refs)
    todo.emplace_back(r.id(), 0);
  while (!todo.empty()) {
    auto [id, port] = todo.back();
    todo.pop_back();
    if (now.count(id) > 0)
      continue;
    if (auto k = inst.kept.find(id); k != inst.kept.end()) {
      now.emplace(id, k->second);
      for (auto& inner : k->second)
        todo.emplace_back(inner, 0);
      continue;
    }
    auto v = ctx.value_to_keep(id, port);
    if (!v) {
      if (is_object_failure(v.error()))
        continue; // a failed object: nothing to keep
      // Anything else (owner gone and no kept copy, a read error, ...):
      // the state is refused rather than saved without the value.
      return make_error(persist_errc::io_error,
                        "durable actor '" + inst.durable + "': the value of "
                          + to_string(id)
                          + " that its state refers to cannot be read to "
                            "keep it: "
                          + to_string(v.error()));
    }
    kept_ref_value kv;
    kv.id = id;
    kv.value = std::move(v->bytes);
    for (auto& d : v->contained) {
      kv.refs.push_back(d.id);
      todo.emplace_back(d.id, d.port);
    }
    now.emplace(id, kv.refs);
    out.kept_values.push_back(std::move(kv));
  }
  out.kept.reserve(now.size());
  for (auto& [id, inner] : now)
    out.kept.push_back(id);
  inst.kept = std::move(now);
  return caf::none;
}

// Saves the state of a durable instance into `out`, with the values its
// refs refer to. On failure `out` says the state was refused.
caf::error save_state(actor_instance& inst, worker_context& ctx,
                      durable_state& out) {
  out.name = inst.durable;
  out.set = true;
  auto refuse = [&out](caf::error err) {
    out.refused = true;
    out.state.clear();
    out.kept.clear();
    out.kept_values.clear();
    return err;
  };
  auto se = registry::instance().state(inst.cls->type);
  if (se == nullptr)
    return refuse(make_error(actors_errc::invalid_argument,
                             inst.cls->name
                               + " has no registered state (inspect)"));
  std::vector<ref_base> refs;
  caf::expected<blob> bytes{caf::error{}};
  {
    ref_collect_scope collecting{refs};
    bytes = se->save(inst.object.get());
  }
  if (!bytes)
    return refuse(std::move(bytes.error()));
  if (auto err = keep_values(inst, ctx, refs, out))
    return refuse(std::move(err));
  out.state = std::move(*bytes);
  out.table = inst.table;
  return caf::none;
}

/// State of the executor actor. Touched only by the executor's own thread.
struct executor_state {
  worker_id self_id = 0;
  config cfg;
  owner_actor owner;
  std::shared_ptr<local_store> store;
  std::shared_ptr<worker_context> refs;
  std::shared_ptr<std::atomic<uint64_t>> actor_count;
  std::unordered_map<uint64_t, actor_instance> actors;
  /// Results not yet sent; shared with the outbox's timer thread, which
  /// sends them while a later task of the batch runs.
  std::unique_ptr<result_outbox> outbox;
  static inline const char* name = "dref.executor";
};

using executor_pointer = executor_actor::stateful_pointer<executor_state>;

/// Writes one task's result above the inline limit straight into the node
/// store (create, serialize in place, seal): no heap blob of the value.
/// Lives on the executor's stack for one task.
class node_result_sink : public result_sink {
public:
  node_result_sink(worker_context& refs, const object_id& id,
                   size_t threshold)
    : refs_(refs), id_(id), threshold_(threshold) {
    // nop
  }

  size_t threshold() const override {
    return threshold_;
  }

  char* open(size_t size) override {
    if (written_ || writer_.data() != nullptr)
      return nullptr; // one result per task
    auto w = refs_.create_in_node(id_, size);
    if (!w)
      return nullptr; // e.g. store_full: serialized into a blob instead
    writer_ = std::move(*w);
    size_ = size;
    return writer_.data();
  }

  void close(bool ok) override {
    if (ok && !writer_.seal())
      written_ = true;
    else
      writer_.abort();
  }

  bool seal_in_place(const buffer& x) override {
    if (written_ || writer_.data() != nullptr)
      return false; // one result per task
    auto size = internal::seal_in_place(x, id_);
    if (!size)
      return false;
    written_ = true;
    size_ = *size;
    return true;
  }

  /// The result is sealed in the node store.
  bool written() const noexcept {
    return written_;
  }

  uint64_t size() const noexcept {
    return size_;
  }

private:
  worker_context& refs_;
  object_id id_;
  size_t threshold_;
  node_client::writer writer_;
  uint64_t size_ = 0;
  bool written_ = false;
};

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

caf::expected<blob> invoke_guarded(const std::string& what,
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

// The name of the durable actor task `t` creates or calls, else empty;
// `what` becomes the call's name for messages.
std::string durable_target(const executor_state& st, const task_spec& t,
                           std::string& what) {
  what = t.name;
  switch (static_cast<task_kind>(t.kind)) {
    case task_kind::actor_create:
      return t.durable;
    case task_kind::actor_call: {
      auto i = st.actors.find(t.actor);
      if (i == st.actors.end())
        return {};
      auto& methods = i->second.cls->methods;
      if (t.method < methods.size())
        what += "::" + methods[t.method].name;
      return i->second.durable;
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
caf::error hold_arg(executor_state& st, const task_spec& t,
                    const task_arg& arg, std::vector<object_id>& held) {
  object_id failed;
  auto err = st.refs->hold(arg.contained, held, &failed);
  if (!err)
    return err;
  std::string what;
  auto durable = durable_target(st, t, what);
  if (durable.empty())
    return err;
  return make_error(persist_errc::io_error,
                    "durable actor '" + durable + "': the value of "
                      + to_string(failed) + " that the arguments of " + what
                      + " refer to cannot be read to keep it, the call is "
                        "not applied: "
                      + to_string(err));
}

// Runs one task; returns its serialized result or its error. The refs
// its arguments contain are held in `held` (the caller drops them after
// the result is stored); the refs its result contains land in `out_refs`.
caf::expected<blob> run_task(executor_pointer self, const task_spec& t,
                             durable_state& saved,
                             std::vector<object_id>& held,
                             std::vector<ref_base>& out_refs,
                             node_result_sink* sink) {
  auto& st = self->state;
  auto kind = static_cast<task_kind>(t.kind);
  // 1. Resolve the arguments: inline; this worker's store (bytes, or a
  //    view of the node store); the node store (the dispatcher says so by
  //    naming this worker as the location); or another worker's store.
  //    Borrow the refs inside them (registered before the task runs).
  //    `sources` keeps every resolved value alive while the task runs, and
  //    lets `dref::buffer` parameters view their bytes in place.
  std::vector<buffer> sources;
  std::vector<byte_view> args;
  args.reserve(t.args.size());
  sources.reserve(t.args.size());
  for (auto& arg : t.args) {
    if (arg.kind == 0) {
      if (auto err = hold_arg(st, t, arg, held))
        return err;
      args.push_back(byte_view{arg.value.data(), arg.value.size()});
      continue;
    }
    // The refs inside the value (sent along by the owner): borrowed
    // before the task runs, like those of an inline value.
    if (auto err = hold_arg(st, t, arg, held))
      return err;
    caf::expected<buffer> value{caf::error{}};
    if (arg.kind == 2 && arg.ref.owner != st.refs->process()) {
      // Owned by another process (borrowed by the submitter): its owner
      // serves it.
      value = st.refs->fetch_from(0, arg.port, arg.ref, held);
    } else if (auto local = st.refs->read_local(arg.ref)) {
      // Here (its error, if the argument's task failed: so does this one).
      value = std::move(*local);
    } else if (arg.kind == 2 || arg.location == st.self_id) {
      // Not here: in the node store, or lost.
      value = st.refs->has_node()
                ? st.refs->read_node(arg.ref)
                : caf::expected<buffer>{make_error(store_errc::not_found)};
      if (!value)
        return make_error(refs_errc::object_lost,
                          to_string(arg.ref) + " is neither in worker "
                            + std::to_string(st.self_id)
                            + " nor in the node store");
    } else {
      value = st.refs->fetch_from(arg.location, arg.port, arg.ref, held);
    }
    if (!value)
      return std::move(value.error());
    args.push_back(byte_view{value->data(), value->size()});
    sources.push_back(std::move(*value));
  }
  ref_read_scope reading{st.refs};
  zero_copy_scope zero_copy{sources};
  auto& reg = registry::instance();
  // 2. Run it.
  switch (kind) {
    case task_kind::function: {
      auto fn = reg.function(t.name);
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
    case task_kind::actor_create: {
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
        auto made = ctor->create(args.data());
        if (!made)
          return caf::expected<blob>{std::move(made.error())};
        obj = std::move(*made);
        blob out;
        if (auto err = to_blob(unit_t{}, out))
          return caf::expected<blob>{err};
        return caf::expected<blob>{std::move(out)};
      });
      if (res) {
        auto& inst = st.actors[t.actor];
        inst = actor_instance{cls, std::move(obj), t.durable, {}, {}};
        ++*st.actor_count;
        if (!t.durable.empty())
          if (auto err = save_state(inst, *st.refs, saved))
            return err;
      }
      return res;
    }
    case task_kind::actor_restore: {
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
        if (auto err = from_blob(blob(args[1].data, args[1].data + args[1].size), table))
          obj = std::move(err);
      if (!obj) {
        // No instance is better than one whose state was rolled back:
        // later calls fail instead of running on it.
        if (st.actors.erase(t.actor) > 0)
          --*st.actor_count;
        return make_error(persist_errc::incompatible_state,
                          "durable actor '" + t.durable
                            + "': its stored state does not load into class "
                            + t.name + " ("
                            + caf::to_string(obj.error().context()) + ")");
      }
      if (st.actors.count(t.actor) == 0)
        ++*st.actor_count;
      st.actors[t.actor] = actor_instance{cls, std::move(*obj), t.durable,
                                          std::move(table), {}};
      return blob{};
    }
    case task_kind::actor_call: {
      auto i = st.actors.find(t.actor);
      if (i == st.actors.end())
        return make_error(actors_errc::task_failed,
                          t.name + " actor " + std::to_string(t.actor)
                            + " does not exist (its construction failed)");
      auto& inst = i->second;
      if (t.method >= inst.cls->methods.size())
        return make_error(actors_errc::unknown_function,
                          t.name + " has no method #"
                            + std::to_string(t.method));
      auto& m = inst.cls->methods[t.method];
      auto what = t.name + "::" + m.name;
      if (auto err = check_signature(what, m.arg_types, m.result_type, t))
        return err;
      if (inst.durable.empty()) {
        ref_collect_scope collecting{out_refs};
        result_sink_scope in_place{sink};
        return invoke_guarded(
          what, [&] { return m.invoke(inst.object.get(), args.data()); });
      }
      // Durable (docs/architecture.md, "Retries and the sequence table"):
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
        // 2. Otherwise it runs; its number (and reply, if it succeeded)
        //    go into the table.
        ref_collect_scope collecting{out_refs};
        result_sink_scope in_place{sink};
        res = invoke_guarded(
          what, [&] { return m.invoke(inst.object.get(), args.data()); });
        if (t.seq != 0) {
          inst.table.seqs[t.caller] = t.seq;
          // A reply written into the node store is not kept (its bytes
          // are not in `res`): a retry of it gets `already_applied`.
          if (res && !(sink != nullptr && sink->written()))
            inst.table.replies[t.caller] = *res;
          else
            inst.table.replies.erase(t.caller);
        }
      }
      // 3. The state and the table after the call travel with the result,
      //    also after a failed call (memory and disk then hold the same);
      //    after a const method the state is as it was: nothing to save.
      if (m.is_const) {
        saved.name = inst.durable;
        saved.set = true;
        saved.unchanged = true;
        return res;
      }
      if (auto err = save_state(inst, *st.refs, saved))
        return err;
      return res;
    }
    case task_kind::actor_destroy:
      if (st.actors.erase(t.actor) > 0)
        --*st.actor_count;
      return blob{};
  }
  return make_error(actors_errc::invalid_argument, "unknown task kind");
}

executor_actor::behavior_type executor_fn(executor_pointer self,
                                          worker_settings ws, owner_actor owner,
                                          std::shared_ptr<local_store> store,
                                          std::shared_ptr<worker_context> refs,
                                          std::shared_ptr<std::atomic<uint64_t>>
                                            actor_count) {
  auto& st = self->state;
  st.self_id = ws.id;
  st.cfg = ws.cfg;
  st.owner = owner;
  st.store = std::move(store);
  st.refs = std::move(refs);
  st.actor_count = std::move(actor_count);
  // Results leave at the end of their batch, or within max_delay while the
  // executor is still busy (result_outbox): coalesced, never withheld.
  constexpr auto max_delay = std::chrono::milliseconds{2};
  st.outbox = std::make_unique<result_outbox>(
    [owner, id = ws.id](std::vector<task_result>&& rs) {
      caf::anon_send(owner, done_atom::value, id, std::move(rs));
    },
    max_delay);
  // The owner is gone: nobody will free or read our objects. End.
  self->monitor(owner);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  return {
    [self](submit_atom, std::vector<task_spec>& batch,
           const std::vector<object_id>& frees) {
      auto& st = self->state;
      for (auto& t : batch) {
        durable_state saved;
        std::vector<object_id> held;
        std::vector<ref_base> out_refs;
        node_result_sink sink{*st.refs, t.result, st.cfg.inline_limit};
        auto res = run_task(self, t, saved, held, out_refs,
                            st.refs->has_node() && t.result.valid() ? &sink
                                                                    : nullptr);
        if (!res && sink.written())
          st.refs->free_in_node(t.result); // written, then the task failed
        if (!t.result.valid()) {
          out_refs.clear();
          st.refs->unhold(held);
          continue; // destroy, restore: nothing to report
        }
        task_result r;
        r.id = t.result;
        if (saved.set) {
          r.durable = std::move(saved.name);
          r.state = std::move(saved.state);
          r.table = std::move(saved.table);
          r.unchanged = saved.unchanged;
          r.refused = saved.refused;
          r.kept = std::move(saved.kept);
          r.kept_values = std::move(saved.kept_values);
        }
        if (res) {
          r.size = res->size();
          stored_object obj;
          if (sink.written()) {
            // Serialized straight into the node store (no heap copy).
            r.size = sink.size();
            r.status = task_result::in_node_store;
            obj.in_node_store = true;
            obj.node_size = r.size;
          } else if (r.size <= st.cfg.inline_limit) {
            r.status = task_result::inline_value;
            r.value = *res;
          } else if (st.refs->has_node()
                     && !st.refs->put_in_node(t.result, *res)) {
            // Large: sealed once in the node store; the slot here keeps
            // no bytes, only the refs inside (`contained`).
            r.status = task_result::in_node_store;
            obj.in_node_store = true;
            obj.node_size = r.size;
          } else {
            // Large, and the node store refused it (full): it stays here.
            r.status = task_result::stored;
          }
          if (!obj.in_node_store)
            obj.value = std::make_shared<const blob>(std::move(*res));
          r.contained = st.refs->store(t.result, std::move(obj),
                                       std::move(out_refs));
        } else {
          r.status = task_result::failed;
          r.error = res.error();
          st.refs->store_error(t.result, std::move(res.error()));
        }
        // The stored copy holds the result's refs now; the arguments' refs
        // are no longer needed.
        out_refs.clear();
        st.refs->unhold(held);
        st.outbox->push(std::move(r), &t != &batch.back());
      }
      st.outbox->flush();
      st.refs->free_stored(frees);
    },
  };
}

caf::behavior store_fn(caf::event_based_actor* self, worker_id id,
                       std::shared_ptr<local_store> store,
                       std::shared_ptr<worker_context> refs,
                       std::shared_ptr<std::atomic<uint64_t>> actor_count) {
  self->set_down_handler(
    [refs](caf::down_msg& dm) { refs->on_down(dm.source); });
  return {
    [refs](fetch_atom, const object_id& oid) -> caf::result<value_msg> {
      auto v = refs->serve(oid);
      if (!v)
        return std::move(v.error());
      return std::move(*v);
    },
    [refs](get_atom, const object_id& oid) -> caf::result<value_msg> {
      if (oid.owner != refs->process())
        // Asked as the owner, but another process owns it: the asker's
        // descriptor names a port that an owner of an earlier run had.
        return make_error(refs_errc::unknown_object,
                          to_string(oid) + " is not owned by this process");
      auto v = refs->serve(oid);
      if (!v)
        return std::move(v.error());
      return std::move(*v);
    },
    [self, refs](borrow_atom, const std::vector<object_id>& ids,
                 uint64_t borrower, const caf::actor& handle) {
      bool monitor = false;
      auto unknown = refs->on_borrow(ids, borrower, handle, monitor);
      if (monitor)
        self->monitor(handle);
      return unknown;
    },
    [refs](release_atom, const std::vector<object_id>& ids,
           uint64_t borrower) { refs->on_release(ids, borrower); },
    [refs](release_hold_atom, const std::vector<uint64_t>& tokens) {
      refs->release_holds(tokens);
    },
    [refs](free_atom, const std::vector<object_id>& ids) {
      refs->free_stored(ids);
    },
    [id, refs](memory_atom) { return refs->memory(id); },
    [id, store, refs, actor_count](stats_atom) {
      worker_stats ws;
      ws.id = id;
      ws.pid = static_cast<int>(getpid());
      ws.objects = store->count();
      ws.bytes = store->bytes();
      ws.actors = actor_count->load();
      ws.refs = refs->refs();
      return ws;
    },
  };
}

caf::behavior echo_fn(caf::event_based_actor*) {
  return {
    [](echo_atom, int32_t x) { return x; },
  };
}

// Ends this process when the driver process is gone (see worker_pool).
void watch_lifeline() {
  std::thread{[] {
    char c;
    for (;;) {
      auto n = read(worker_pool::lifeline_fd, &c, 1);
      if (n == 0 || (n < 0 && errno != EINTR))
        _exit(0);
    }
  }}.detach();
}

int run_worker(worker_settings ws) {
  watch_lifeline();
  // The executor may block a thread for a whole task; the store server must
  // still answer other workers meanwhile.
  // A task that reads a ref (`dref::get`) blocks the executor's thread
  // while a helper actor waits for the answer: keep one more free.
  ws.cfg.scheduler_threads = std::max<size_t>(ws.cfg.scheduler_threads, 3);
  caf::actor_system_config cfg;
  configure_system(cfg, ws.cfg);
  caf::actor_system sys{cfg};
  auto store = std::make_shared<local_store>();
  auto actor_count = std::make_shared<std::atomic<uint64_t>>(0);
  auto refs = std::make_shared<worker_context>(sys, ws.id, new_owner_id(),
                                               ws.cfg, store);
  auto srv_handle = sys.spawn(store_fn, ws.id, store, refs, actor_count);
  auto srv = caf::actor_cast<store_actor>(srv_handle);
  auto echo = sys.spawn(echo_fn);
  auto bail = [&](const std::string& why) {
    std::cerr << "dref worker " << ws.id << ": " << why << std::endl;
    caf::anon_send_exit(srv, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
    return 3;
  };
  auto port = sys.middleman().publish(srv, 0, "127.0.0.1", true);
  if (!port)
    return bail("cannot listen: " + sys.render(port.error()));
  auto owner = sys.middleman().remote_actor<owner_actor>(ws.host,
                                                         ws.owner_port);
  if (!owner)
    return bail("cannot reach the driver: " + sys.render(owner.error()));
  if (ws.store_port != 0) {
    // One connection to the node store per worker process (thread-safe).
    auto node = node_client::connect(store_endpoint{ws.host, ws.store_port},
                                     std::chrono::seconds{10});
    if (!node)
      return bail("cannot reach the node store: " + sys.render(node.error()));
    refs->set_node(std::move(*node));
  }
  refs->set_server(srv_handle, *port);
  refs->set_driver(caf::actor_cast<caf::actor>(*owner), ws.host,
                   ws.owner_port);
  set_default_read_context(refs);
  register_system_context(&sys, refs);
  {
    std::lock_guard<std::mutex> guard{current_mtx};
    current = refs;
  }
  auto exec = sys.spawn(executor_fn, ws, *owner, store, refs, actor_count);
  worker_registration reg;
  reg.version = cluster_protocol_version;
  reg.id = ws.id;
  reg.pid = static_cast<int32_t>(getpid());
  reg.port = *port;
  reg.process = refs->process();
  reg.executor = exec;
  reg.store = srv;
  reg.echo = echo;
  caf::scoped_actor self{sys};
  bool ok = false;
  std::string why;
  self->request(*owner, std::chrono::seconds{30}, register_atom::value, reg)
    .receive([&](caf::ok_atom) { ok = true; },
             [&](caf::error& err) { why = sys.render(err); });
  auto forget = [&] {
    set_default_read_context(nullptr);
    unregister_system_context(&sys);
    refs->stop();
    std::lock_guard<std::mutex> guard{current_mtx};
    current = nullptr;
  };
  if (!ok) {
    forget();
    caf::anon_send_exit(exec, caf::exit_reason::user_shutdown);
    return bail("registration refused: " + why);
  }
  // Serve until the executor ends (driver stopped us, or the driver died).
  self->monitor(exec);
  self->receive([](caf::down_msg&) {});
  forget();
  caf::anon_send_exit(srv, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  return 0;
}

} // namespace

} // namespace internal

namespace internal {

caf::expected<ref_base> worker_put(const void* value, put_writer write) {
  auto w = current_worker();
  if (!w)
    return make_error(actors_errc::invalid_argument,
                      "dref::put works inside a task in a worker; use "
                      "runtime::put in the driver");
  // 1. The object's id first: a large value is written under it at once.
  auto id = w->new_object_id();
  // 2. Serialize, collecting the refs inside. With a node store, a value
  //    above the inline limit goes straight into a segment named by `id`
  //    (the sink of this put hides the sink of the task's own result);
  //    without one, or when the store refuses, into a blob.
  std::optional<node_result_sink> sink;
  if (w->has_node())
    sink.emplace(*w, id, w->inline_limit());
  blob bytes;
  std::vector<ref_base> refs;
  caf::error err;
  {
    ref_collect_scope collect{refs};
    result_sink_scope in_place{sink ? &*sink : nullptr};
    err = write(value, bytes);
  }
  if (err) {
    if (sink && sink->written())
      w->free_in_node(id);
    return err;
  }
  // 3. Owned here and ready (the node copy already sealed, or the blob).
  if (sink && sink->written())
    return w->put_sealed(id, sink->size(), std::move(refs));
  return w->put(id, std::move(bytes), std::move(refs), !sink);
}

caf::expected<buffer>
worker_get(const ref_base& x, caf::timespan timeout,
           std::vector<object_id>& held) {
  auto w = current_worker();
  if (!w)
    return make_error(actors_errc::invalid_argument,
                      "dref::get works inside a task in a worker; use "
                      "runtime::get in the driver");
  return w->get(x, timeout, held);
}

void worker_unhold(std::vector<object_id>& held) {
  if (auto w = current_worker())
    w->unhold(held);
}

caf::actor_system* worker_system() {
  auto w = current_worker();
  return w ? &w->system() : nullptr;
}

} // namespace internal

caf::expected<buffer_writer> make_buffer_writer(size_t size) {
  if (auto w = internal::current_worker())
    return internal::make_in_place_writer(*w, size);
  return internal::make_heap_writer(size);
}

std::optional<int> run_worker_if_requested() {
  auto text = std::getenv("DREF_WORKER");
  if (text == nullptr)
    return std::nullopt;
  internal::worker_settings ws;
  if (!internal::parse_settings(text, ws)) {
    std::cerr << "dref worker: malformed DREF_WORKER: " << text << std::endl;
    return 2;
  }
  // Tasks may start runtimes of their own: they must not become workers.
  unsetenv("DREF_WORKER");
  return internal::run_worker(ws);
}

} // namespace dref
