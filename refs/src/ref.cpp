#include "dref/refs/ref.hpp"

#include <mutex>

#include "dref/refs/error.hpp"

namespace dref {

namespace {

thread_local std::vector<ref_base>* collecting = nullptr;
thread_local ref_read_scope* reading = nullptr;

std::mutex default_mtx;
std::shared_ptr<ref_context> default_ctx; // guarded by default_mtx

} // namespace

ref_context::~ref_context() {
  // nop
}

void ref_context::describe(const object_id&, ref_descriptor&) const {
  // nop
}

void ref_context::adopt(const ref_descriptor& d) noexcept {
  add_local_ref(d.id);
}

ref_collect_scope::ref_collect_scope(std::vector<ref_base>& out) noexcept
  : prev_(collecting) {
  collecting = &out;
}

ref_collect_scope::~ref_collect_scope() {
  collecting = prev_;
}

ref_read_scope::ref_read_scope(std::shared_ptr<ref_context> ctx) noexcept
  : ctx_(std::move(ctx)), prev_(reading) {
  reading = this;
}

ref_read_scope::~ref_read_scope() {
  reading = prev_;
}

void set_default_read_context(std::shared_ptr<ref_context> ctx) {
  std::lock_guard<std::mutex> guard{default_mtx};
  default_ctx = std::move(ctx);
}

void write_ref(const ref_base& x, ref_descriptor& out) {
  out.id = x.id();
  if (auto ctx = x.context())
    ctx->describe(x.id(), out);
  if (collecting != nullptr && x.valid())
    collecting->push_back(x);
}

caf::error read_ref(const ref_descriptor& d, ref_base& x) {
  if (!d.id.valid()) {
    x.reset();
    return caf::none;
  }
  std::shared_ptr<ref_context> ctx;
  if (reading != nullptr) {
    ctx = reading->ctx_;
  } else {
    std::lock_guard<std::mutex> guard{default_mtx};
    ctx = default_ctx;
  }
  if (!ctx)
    return make_error(refs_errc::serialization_failed,
                      "a ref can only be read by a dref runtime or worker ("
                        + to_string(d.id) + ")");
  ctx->adopt(d);
  x = ref_base{d.id, std::move(ctx)};
  return caf::none;
}

} // namespace dref
