#include "dref/refs/ref.hpp"

#include <map>
#include <mutex>
#include <set>

#include "dref/refs/error.hpp"

namespace dref {

namespace {

thread_local std::vector<ref_base>* collecting = nullptr;
thread_local ref_read_scope* reading = nullptr;

std::mutex default_mtx;
std::shared_ptr<ref_context> default_ctx; // guarded by default_mtx
std::map<const caf::actor_system*, std::weak_ptr<ref_context>>
  system_ctxs; // guarded by default_mtx

std::shared_ptr<ref_context> context_of_system(const caf::actor_system* sys) {
  std::lock_guard<std::mutex> guard{default_mtx};
  if (sys != nullptr)
    if (auto i = system_ctxs.find(sys); i != system_ctxs.end())
      if (auto ctx = i->second.lock())
        return ctx;
  return default_ctx;
}

// The type names of mismatched refs (`ref_base::mismatched_type`): one copy
// of each, never freed, so that a ref holds a plain pointer to it. Bounded
// by the number of distinct type names this process ever read.
const std::string* intern_type(const std::string& name) {
  static std::mutex mtx;
  static auto names = new std::set<std::string>; // kept until exit
  std::lock_guard<std::mutex> guard{mtx};
  return &*names->insert(name).first;
}

} // namespace

caf::error type_mismatch_error(const std::string& expected,
                               const std::string& actual) {
  return make_error(refs_errc::type_mismatch,
                    "a ref<" + expected + "> names a value of type "
                      + actual);
}

ref_context::~ref_context() {
  // nop
}

void ref_context::describe(const object_id&, ref_descriptor&) const {
  // nop
}

void ref_context::adopt(const ref_descriptor& d) noexcept {
  add_local_ref(d.id);
}

void ref_context::hold_for_transit(const ref_base&, ref_descriptor&) {
  // nop
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

void register_system_context(const caf::actor_system* sys,
                             std::weak_ptr<ref_context> ctx) {
  std::lock_guard<std::mutex> guard{default_mtx};
  system_ctxs[sys] = std::move(ctx);
}

void unregister_system_context(const caf::actor_system* sys) {
  std::lock_guard<std::mutex> guard{default_mtx};
  system_ctxs.erase(sys);
}

void write_ref(const ref_base& x, ref_descriptor& out,
               const caf::actor_system* sys) {
  out.id = x.id();
  auto ctx = x.context();
  if (ctx != nullptr)
    ctx->describe(x.id(), out);
  if (!x.valid())
    return;
  if (collecting != nullptr)
    collecting->push_back(x);
  else if (sys != nullptr)
    ctx->hold_for_transit(x, out); // a plain CAF message leaving `sys`
}

caf::error read_ref(const ref_descriptor& d, ref_base& x,
                    const std::string& type, const caf::actor_system* sys) {
  if (!d.id.valid()) {
    x.reset();
    return caf::none;
  }
  std::shared_ptr<ref_context> ctx;
  if (reading != nullptr)
    ctx = reading->ctx_;
  else
    ctx = context_of_system(sys);
  if (!ctx)
    return make_error(refs_errc::serialization_failed,
                      "a ref can only be read by a dref runtime or worker ("
                        + to_string(d.id) + ")");
  ctx->adopt(d);
  x = ref_base{d.id, std::move(ctx)};
  if (!d.type.empty() && d.type != type)
    x.mismatched_ = intern_type(d.type);
  return caf::none;
}

} // namespace dref
