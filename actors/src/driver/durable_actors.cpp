// The driver's side of durable actors: spawning by name, kept copies of
// the values their states refer to, and the checkpoint timer
// (docs/architecture.md, "Durable actors").

#include "driver/runtime_impl.hpp"

#include <cstdio>

#include "caf/all.hpp"

#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"

namespace dref::internal {

namespace {

using clock_type = std::chrono::steady_clock;

} // namespace

ref_base runtime_impl::submit_durable(task_spec create,
                                      const void* call_site,
                                      const checkpoint_policy& policy) {
  auto r = spawn_durable(std::move(create), call_site, false, policy);
  return r ? std::move(*r) : failed_ref(std::move(r.error()));
}

caf::expected<ref_base> runtime_impl::spawn_durable(
  task_spec create, const void* call_site, bool must_exist,
  const checkpoint_policy& policy) {
  if (!running_)
    return runtime_down_error();
  const auto& name = create.durable;
  {
    // An earlier instance of this name whose last handle is gone may still
    // have calls to finish (and checkpoints to write): wait, bounded.
    constexpr auto limit = std::chrono::seconds{60};
    std::unique_lock<std::mutex> lk{refs_->mutex()};
    auto idle = [&] { return stopped_ || !dispatcher_.durable_busy(name); };
    if (!refs_->changed().wait_for(lk, limit, idle))
      return make_error(actors_errc::timeout,
                        "durable actor '" + name + "': the calls of its "
                          "previous instance did not finish within 60 s");
  }
  auto found = ckpt_->load(name);
  if (!found)
    return std::move(found.error());
  if (!found->cls.empty() && found->cls != create.name)
    return make_error(refs_errc::type_mismatch,
                      "durable actor '" + name + "' is a " + found->cls
                        + ", not a " + create.name);
  if (found->fell_back)
    std::fprintf(stderr, "dref: %s; restoring version %llu instead\n",
                 caf::to_string(found->fell_back).c_str(),
                 static_cast<unsigned long long>(found->cp->version));
  if (found->cp) {
    // Saved state wins over constructor arguments.
    create.kind = static_cast<uint8_t>(task_kind::actor_restore);
    create.args = checkpointer::restore_args(*found->cp, ckpt_->caller());
  } else if (must_exist) {
    return make_error(actors_errc::unknown_actor,
                      "no durable actor named '" + name + "' is stored");
  }
  ckpt_->set_policy(name, policy);
  return submit(std::move(create), call_site);
}

caf::expected<std::shared_ptr<void>> runtime_impl::durable_actor(
  const std::string& name, const std::type_info& type,
  const std::function<caf::expected<std::shared_ptr<void>>()>& make) {
  std::lock_guard<std::mutex> guard{durable_mtx_};
  auto i = durables_.find(name);
  if (i != durables_.end()) {
    if (auto live = i->second.handle.lock()) {
      if (*i->second.type != type)
        return make_error(refs_errc::type_mismatch,
                          "durable actor '" + name
                            + "' is alive in this runtime as another class");
      return live;
    }
  }
  auto made = make();
  if (made)
    durables_[name] = durable_entry{&type, *made};
  else if (i != durables_.end())
    durables_.erase(i);
  return made;
}

caf::expected<value_msg> runtime_impl::kept_copy(const object_id& id) {
  auto kv = ckpt_->kept_copy(id);
  if (!kv)
    return std::move(kv.error());
  if (!*kv)
    return make_error(refs_errc::object_lost,
                      "no durable checkpoint keeps " + to_string(id));
  value_msg result;
  result.bytes.assign((*kv)->value.begin(), (*kv)->value.end());
  for (auto& inner : (*kv)->refs)
    if (auto inner_id = object_id_from_string(inner)) {
      ref_descriptor d;
      d.id = *inner_id;
      result.contained.push_back(std::move(d));
    }
  return result;
}

std::vector<object_id>
runtime_impl::kept_ids(const std::vector<object_id>& ids) {
  std::vector<object_id> result;
  for (auto& id : ids)
    if (ckpt_->has_kept_copy(id))
      result.push_back(id);
  return result;
}

size_t runtime_impl::kept_values() {
  return ckpt_->kept_count();
}

void runtime_impl::arm_checkpoint_timer(
  const std::optional<std::chrono::steady_clock::time_point>& due) {
  if (!due || self_ == nullptr || (ckpt_timer_ && *ckpt_timer_ <= *due))
    return;
  ckpt_timer_ = due;
  auto wait = std::max(*due - clock_type::now(), clock_type::duration{0});
  self_->delayed_send(self_, std::chrono::duration_cast<caf::timespan>(wait),
                      ckpt_atom::value);
}

void runtime_impl::on_checkpoint_timer() {
  if (ckpt_timer_ && clock_type::now() < *ckpt_timer_)
    return; // an earlier timer; the current one is still coming
  ckpt_timer_.reset();
  arm_checkpoint_timer(ckpt_->write_due().next_due);
}

} // namespace dref::internal
