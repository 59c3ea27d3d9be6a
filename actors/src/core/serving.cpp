// What a process's ref server answers for values it owns or keeps.

#include "core/process_refs.hpp"

#include <algorithm>

#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

namespace dref::internal {

// -- serving ------------------------------------------------------------------

process_refs::serve_plan process_refs::plan_get(const object_id& id,
                                                bool node_ok) {
  serve_plan plan;
  bool copy_from_node = false;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto e = core_.owned().find(id);
    if (e == nullptr) {
      plan.err = make_error(refs_errc::unknown_object, to_string(id));
      return plan;
    }
    if (e->state == object_state::failed) {
      plan.err = e->error;
      return plan;
    }
    if (e->state == object_state::pending) {
      plan.kind = serve_plan::pending;
      return plan;
    }
    if (e->value) {
      plan.kind = serve_plan::value;
      plan.msg = value_msg{*e->value, core_.owned_contained(id)};
      return plan;
    }
    if (std::find(e->locations.begin(), e->locations.end(), node_location)
        != e->locations.end()) {
      plan.kind = serve_plan::value;
      plan.msg.contained = core_.owned_contained(id);
      plan.msg.in_node_store = true; // the reader maps it itself
      copy_from_node = !node_ok;     // a CAF message needs its own copy
    } else if (locations_) {
      for (auto w : e->locations)
        if (auto h = locations_(w)) {
          plan.kind = serve_plan::at_location;
          plan.location = std::move(h);
          break;
        }
    }
    if (plan.kind == serve_plan::error) {
      plan.err = make_error(refs_errc::object_lost, to_string(id));
      return plan;
    }
  }
  if (copy_from_node)
    if (auto err = with_bytes(id, plan.msg)) {
      plan.kind = serve_plan::error;
      plan.err = std::move(err);
    }
  return plan;
}

caf::expected<value_msg> process_refs::serve_copy(const object_id& id) {
  auto obj = copies_->get(id);
  if (!obj)
    return make_error(store_errc::not_found, to_string(id));
  if (obj->error)
    return obj->error;
  value_msg result;
  if (obj->in_node_store)
    result.in_node_store = true; // every asker is on this node
  else if (obj->value)
    result.bytes.assign(obj->value->data(),
                        obj->value->data() + obj->value->size());
  std::lock_guard<std::mutex> guard{mtx_};
  result.contained = core_.copy_contained(id);
  return result;
}

} // namespace dref::internal
