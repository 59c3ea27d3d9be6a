#include "submit/call_owner.hpp"

#include <memory>
#include <utility>

namespace dref::internal {

void protect_args(ref_core& core, const task_spec& spec, bool up) {
  auto count = [&](const object_id& id) {
    if (core.owns(id)) {
      if (up)
        core.owned().add_submitted_ref(id);
      else
        core.owned().remove_submitted_ref(id);
    } else if (up) {
      core.add_local_ref(id);
    } else {
      core.remove_local_ref(id);
    }
  };
  for (auto& arg : spec.args) {
    if (arg.kind != arg_kind::value)
      count(arg.ref);
    for (auto& d : arg.contained)
      count(d.id);
  }
}

bool complete_owned(ref_core& core, task_result& r, worker_id where) {
  auto& owned = core.owned();
  bool known = false;
  switch (r.status) {
    case task_result::inline_value:
      known = owned.set_ready(
        r.id, std::make_shared<const blob>(std::move(r.value)), r.size, where);
      break;
    case task_result::stored:
      known = owned.set_ready(r.id, nullptr, r.size, where);
      break;
    case task_result::in_node_store:
      // Two copies: the worker's (holding the refs inside) and the bytes
      // in the node store, which outlive the worker.
      known = owned.set_ready(r.id, nullptr, r.size, where, node_location);
      break;
    default:
      known = (where == owner_location || owned.add_location(r.id, where))
              && owned.set_failed(r.id, std::move(r.error));
  }
  if (known && !r.contained.empty() && owned.find(r.id) != nullptr)
    // Nested refs in a result: its owner holds them too (the worker's copy
    // may die), borrowing those owned elsewhere.
    core.hold_in_owned(r.id, r.contained);
  return known;
}

} // namespace dref::internal
