#include "worker/durable_state.hpp"

#include "core/read_errors.hpp"
#include "worker/worker_context.hpp"

#include "dref/actors/error.hpp"
#include "dref/persist/error.hpp"

namespace dref::internal {

caf::error keep_values(actor_instance& inst, worker_context& ctx,
                       std::vector<ref_base>& refs, durable_state& out) {
  std::map<object_id, std::vector<object_id>> now;
  std::vector<std::pair<object_id, process_address>> todo;
  for (auto& r : refs)
    todo.emplace_back(r.id(), process_address{});
  while (!todo.empty()) {
    auto [id, from] = todo.back();
    todo.pop_back();
    if (now.count(id) > 0)
      continue;
    if (auto k = inst.kept.find(id); k != inst.kept.end()) {
      now.emplace(id, k->second);
      for (auto& inner : k->second)
        todo.emplace_back(inner, process_address{});
      continue;
    }
    auto v = ctx.value_to_keep(id, from);
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
      todo.emplace_back(d.id, d.owner);
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

} // namespace dref::internal
