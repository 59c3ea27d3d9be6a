// The driver's reads: `rt.get` and `rt.wait` (user threads; they may
// block, bounded by their timeouts).

#include "driver/runtime_impl.hpp"

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
  flush(); // the task that makes it may still be queued here
  auto res = refs_->read(x, timeout, held);
  if (!res && stopped_ && res.error() == actors_errc::runtime_down)
    return runtime_down_error();
  return res;
}

std::vector<bool>
runtime_impl::wait_ids(const std::vector<const ref_base*>& xs, size_t n,
                       caf::timespan timeout) {
  flush();
  n = std::min(n, xs.size());
  auto deadline = timeout == no_timeout
                    ? clock_type::time_point::max()
                    : clock_type::now()
                        + std::chrono::duration_cast<clock_type::duration>(
                          timeout);
  std::vector<bool> ready(xs.size(), false);
  std::unique_lock<std::mutex> lk{refs_->mutex()};
  auto& owned = refs_->core().owned();
  bool timed_out = false;
  for (;;) {
    size_t count = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      if (!ready[i]) {
        auto e = owned.find(xs[i]->id());
        ready[i] = xs[i]->context() != refs_.get() || e == nullptr
                   || e->state != object_state::pending;
      }
      count += ready[i] ? 1 : 0;
    }
    if (count >= n || stopped_ || timed_out)
      return ready;
    if (deadline == clock_type::time_point::max())
      refs_->changed().wait(lk);
    else
      timed_out = refs_->changed().wait_until(lk, deadline)
                  == std::cv_status::timeout;
  }
}

} // namespace dref::internal
