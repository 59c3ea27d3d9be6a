#include "worker/worker_context.hpp"

#include <cstring>

#include "core/read_errors.hpp"
#include "core/watched_request.hpp"
#include "worker/worker_calls.hpp"

#include "dref/actors/atoms.hpp"
#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"

namespace dref::internal {

worker_context::worker_context(std::shared_ptr<process_refs> refs,
                               worker_id id, config cfg)
  : refs_(std::move(refs)), id_(id), cfg_(std::move(cfg)) {
  // nop
}

worker_context::~worker_context() = default;

void worker_context::set_calls(std::unique_ptr<worker_calls> calls) {
  calls_ = std::move(calls);
}

// -- the node store -----------------------------------------------------------

bool worker_context::has_node() const noexcept {
  auto n = refs_->node();
  return n && n->client() != nullptr;
}

caf::error worker_context::put_in_node(const object_id& id,
                                       const blob& bytes) {
  auto n = refs_->node();
  if (!n)
    return make_error(actors_errc::invalid_argument, "no node store");
  return n->put(id, bytes.data(), bytes.size());
}

caf::expected<node_client::writer>
worker_context::create_in_node(const object_id& id, uint64_t size) {
  auto n = refs_->node();
  if (!n || n->client() == nullptr)
    return make_error(actors_errc::invalid_argument, "no node store");
  return n->client()->create(id, size);
}

void worker_context::free_in_node(const object_id& id) {
  if (auto n = refs_->node())
    n->free(id);
}

// -- puts ---------------------------------------------------------------------

ref_base worker_context::put(const object_id& id, blob value,
                             std::vector<ref_base>&& refs, bool try_node) {
  // 1. Above the inline limit: sealed once in the node store as this
  //    worker's primary copy (named by `id`, whose owner is this process);
  //    the entry keeps no bytes. A refusal (store full, store gone) keeps
  //    the bytes here instead.
  auto size = value.size();
  if (try_node && size > cfg_.inline_limit && has_node()
      && !put_in_node(id, value))
    return own(id, nullptr, size, std::move(refs));
  return own(id, std::make_shared<const blob>(std::move(value)), 0,
             std::move(refs));
}

ref_base worker_context::put_sealed(const object_id& id, uint64_t size,
                                    std::vector<ref_base>&& refs) {
  return own(id, nullptr, size, std::move(refs));
}

ref_base worker_context::own(const object_id& id,
                             std::shared_ptr<const blob> value,
                             uint64_t node_size,
                             std::vector<ref_base>&& refs) {
  // 2. Owned here, ready, with the one local ref the returned ref adopts;
  //    the entry takes over the counts of the refs inside the value.
  std::vector<object_id> inner;
  inner.reserve(refs.size());
  for (auto& r : refs)
    if (r.context() == refs_.get())
      inner.push_back(r.release());
  {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    auto& c = refs_->core();
    if (value)
      c.owned().add_ready(id, std::move(value));
    else
      c.owned().add_ready_at(id, node_size, node_location);
    c.adopt_in_owned(id, std::move(inner));
  }
  return ref_base{id, refs_};
}

// -- refs in durable state ----------------------------------------------------

caf::expected<value_msg>
worker_context::value_to_keep(const object_id& id,
                              const process_address& from) {
  // Here first: objects this worker owns, and copies of results of tasks
  // that ran here (perhaps not even reported to their owner yet: asking
  // the owner would wait for this very executor).
  if (id.owner == process()) {
    auto plan = refs_->plan_get(id, false); // bytes, also from the store
    if (plan.kind == process_refs::serve_plan::value)
      return std::move(plan.msg);
    if (plan.kind == process_refs::serve_plan::error)
      return std::move(plan.err);
    return make_error(actors_errc::invalid_argument,
                      to_string(id) + " is not ready to be kept");
  }
  if (auto here = refs_->serve_copy(id)) {
    if (auto err = refs_->with_bytes(id, *here))
      return err;
    return here;
  }
  auto owner = from;
  if (!owner.valid()) {
    std::lock_guard<std::mutex> guard{refs_->mutex()};
    if (auto o = refs_->core().borrowed().owner_of(id))
      owner = o->address;
  }
  caf::expected<value_msg> reply{caf::error{}};
  if (auto peer = refs_->peers().connect(owner))
    reply = watched_request<value_msg>(system(), peer, cfg_.fetch_timeout,
                                       "reading " + to_string(id)
                                         + " to keep it",
                                       get_atom::value, id);
  else
    reply = make_error(refs_errc::object_lost,
                       "cannot reach the owner of " + to_string(id));
  if (reply)
    // The owner may say: in this node's store. Copy it for the checkpoint.
    if (auto err = refs_->with_bytes(id, *reply))
      return err;
  if (!reply && is_fetch_failure(reply.error()))
    if (auto kept = refs_->kept_copy(id)) // kept by an earlier checkpoint
      return kept;
  return reply;
}

} // namespace dref::internal
