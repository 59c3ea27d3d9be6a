// The driver's reads: `rt.get` and `rt.wait` (user threads; they may
// block, bounded by their timeouts).

#include "driver/runtime_impl.hpp"

#include "core/blocking.hpp"

#include "dref/actors/error.hpp"

namespace dref::internal {

namespace {

using clock_type = std::chrono::steady_clock;

} // namespace

caf::expected<buffer> runtime_impl::get_blob(const ref_base& x,
                                             caf::timespan timeout,
                                             std::vector<object_id>& held) {
  if (x.context() != refs_.get())
    return make_error(actors_errc::invalid_argument,
                      x.valid() ? "a ref owned by another runtime"
                                : "an empty ref");
  if (auto err = check_may_block(*sys_, "rt.get"))
    return err;
  flush(); // the task that makes it may still be queued here
  auto res = refs_->read(x, timeout, held);
  if (!res && stopped_ && res.error() == actors_errc::runtime_down)
    return runtime_down_error();
  return res;
}

std::vector<bool>
runtime_impl::wait_ids(const std::vector<const ref_base*>& xs, size_t n,
                       caf::timespan timeout) {
  flush(); // the tasks that make them may still be queued here
  if (check_may_block(*sys_, "rt.wait"))
    timeout = caf::timespan{0}; // a look, no wait, on the scheduler
  return refs_->wait_ready(xs, n, timeout);
}

} // namespace dref::internal
