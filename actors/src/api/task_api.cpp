// The free functions of dref/actors/task.hpp, valid in every process: in a
// worker they act on the worker (worker/worker_api.hpp), in a driver on its
// newest running runtime, so `dref::call`, `get`, `put` and `wait` have one
// meaning and one default timeout wherever the code runs.

#include <mutex>

#include "driver/runtime_impl.hpp"
#include "worker/worker_api.hpp"

#include "dref/actors/error.hpp"
#include "dref/actors/task.hpp"

namespace dref::internal {

namespace {

std::mutex driver_mtx;
std::weak_ptr<runtime_impl> driver; // guarded by driver_mtx

caf::error nowhere(const char* what) {
  return make_error(actors_errc::runtime_down,
                    std::string{what}
                      + " needs a running dref::runtime in this process, "
                        "or a task in a worker");
}

} // namespace

void set_current_driver(const std::shared_ptr<runtime_impl>& rt) {
  std::lock_guard<std::mutex> guard{driver_mtx};
  driver = rt;
}

void clear_current_driver(const runtime_impl* rt) {
  std::lock_guard<std::mutex> guard{driver_mtx};
  if (driver.lock().get() == rt)
    driver.reset();
}

std::shared_ptr<runtime_impl> current_driver() {
  std::lock_guard<std::mutex> guard{driver_mtx};
  return driver.lock();
}

const ref_context* api_refs() {
  if (auto ctx = refs_in_worker())
    return ctx;
  if (auto rt = current_driver())
    return context_of(*rt);
  return nullptr;
}

ref_base api_submit(task_spec spec, const void* call_site) {
  if (refs_in_worker() != nullptr)
    return submit_in_worker(std::move(spec), call_site);
  if (auto rt = current_driver())
    return submit(*rt, std::move(spec), call_site);
  return ref_base{};
}

ref_base api_failed(caf::error err) {
  if (refs_in_worker() != nullptr)
    return failed_in_worker(std::move(err));
  if (auto rt = current_driver())
    return failed_ref(*rt, std::move(err));
  return ref_base{};
}

caf::expected<ref_base> api_put(const void* value, put_writer write,
                                const void* call_site) {
  if (refs_in_worker() != nullptr)
    return put_in_worker(value, write);
  auto rt = current_driver();
  if (!rt)
    return nowhere("dref::put");
  blob bytes;
  std::vector<ref_base> refs;
  {
    ref_collect_scope collect{refs};
    if (auto err = write(value, bytes))
      return err;
  }
  return put_blob(*rt, std::move(bytes), call_site, std::move(refs));
}

caf::expected<buffer> api_get(const ref_base& x, caf::timespan timeout,
                              std::vector<object_id>& held) {
  if (refs_in_worker() != nullptr)
    return get_in_worker(x, timeout, held);
  if (auto rt = current_driver())
    return get_blob(*rt, x, timeout, held);
  return nowhere("dref::get");
}

void api_unhold(std::vector<object_id>& held) {
  if (refs_in_worker() != nullptr)
    unhold_in_worker(held);
  else if (auto rt = current_driver())
    unhold(*rt, held);
}

std::vector<bool> api_wait(const std::vector<const ref_base*>& xs, size_t n,
                           caf::timespan timeout) {
  if (refs_in_worker() != nullptr)
    return wait_in_worker(xs, n, timeout);
  if (auto rt = current_driver())
    return wait_ids(*rt, xs, n, timeout);
  return std::vector<bool>(xs.size(), false);
}

} // namespace dref::internal
