// The public `runtime` and the entry points its templates call.

#include "driver/runtime_impl.hpp"

#include <cstdlib>

#include "core/caf_errors.hpp"

#include "dref/actors/error.hpp"

namespace dref {

namespace internal {


ref_base submit(runtime_impl& rt, task_spec spec, const void* call_site) {
  return rt.submit(std::move(spec), call_site);
}

ref_base failed_ref(runtime_impl& rt, caf::error err) {
  return rt.failed_ref(std::move(err));
}

ref_base put_blob(runtime_impl& rt, blob value, const void* call_site,
                  std::vector<ref_base>&& refs) {
  return rt.put_blob(std::move(value), call_site, std::move(refs));
}

caf::expected<buffer> get_blob(runtime_impl& rt, const ref_base& x,
                               caf::timespan timeout,
                               std::vector<object_id>& held) {
  return rt.get_blob(x, timeout, held);
}

void unhold(runtime_impl& rt, std::vector<object_id>& held) {
  rt.refs()->unhold(held);
}

std::string node_store_prefix(const runtime_impl& rt) {
  return rt.node_store_prefix();
}

std::vector<bool> wait_ids(runtime_impl& rt,
                           const std::vector<const ref_base*>& xs, size_t n,
                           caf::timespan timeout) {
  return rt.wait_ids(xs, n, timeout);
}

ref_base submit_durable(runtime_impl& rt, task_spec create,
                        const void* call_site,
                        const checkpoint_policy& policy) {
  return rt.submit_durable(std::move(create), call_site, policy);
}

caf::expected<ref_base> recover_durable(runtime_impl& rt, task_spec create,
                                        const void* call_site,
                                        const checkpoint_policy& policy) {
  return rt.spawn_durable(std::move(create), call_site, true, policy);
}

caf::expected<std::shared_ptr<void>>
durable_actor(runtime_impl& rt, const std::string& name,
              const std::type_info& type,
              const std::function<caf::expected<std::shared_ptr<void>>()>&
                make) {
  return rt.durable_actor(name, type, make);
}

uint64_t next_actor_id(runtime_impl& rt) {
  return rt.next_actor_id();
}

void destroy_actor(runtime_impl& rt, uint64_t actor, const std::string& cls) {
  rt.destroy_actor(actor, cls);
}

const ref_context* context_of(const runtime_impl& rt) {
  return rt.refs().get();
}

caf::actor ref_server_of(const ref_base& x) {
  auto refs = dynamic_cast<process_refs*>(x.context());
  return refs != nullptr ? refs->server() : caf::actor{};
}

caf::error owner_request_error(caf::error err, const object_id& id) {
  return dref_error_of(std::move(err), "getting " + to_string(id),
                       make_error(actors_errc::runtime_down));
}

} // namespace internal

// -- runtime ------------------------------------------------------------------

runtime::runtime(config cfg) {
  if (auto rc = run_worker_if_requested())
    std::exit(*rc);
  impl_ = std::make_shared<internal::runtime_impl>(std::move(cfg));
  impl_->start();
  if (impl_->running())
    internal::set_current_driver(impl_); // the free functions use it
}

runtime::~runtime() {
  internal::clear_current_driver(impl_.get());
  impl_->stop();
}

bool runtime::running() const {
  return impl_->running();
}

caf::error runtime::status() const {
  return impl_->status();
}

std::vector<worker_info> runtime::workers() const {
  return impl_->workers();
}

caf::expected<runtime_stats> runtime::stats(caf::timespan timeout) {
  return impl_->stats(timeout);
}

caf::expected<memory_report> runtime::memory(caf::timespan timeout) {
  return impl_->memory(timeout);
}

caf::actor_system& runtime::system() {
  return impl_->system();
}

std::string runtime::node_store_prefix() const {
  return impl_->node_store_prefix();
}

} // namespace dref
