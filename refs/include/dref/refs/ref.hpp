#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "caf/error.hpp"
#include "caf/execution_unit.hpp"
#include "caf/fwd.hpp"
#include "caf/meta/load_callback.hpp"
#include "caf/meta/type_name.hpp"

#include "dref/refs/fwd.hpp"
#include "dref/refs/object_id.hpp"
#include "dref/refs/ref_descriptor.hpp"
#include "dref/refs/type_tag.hpp"

namespace dref {

/// Counts the refs one process holds: those of the objects it owns (in its
/// ownership table) and those it borrows from other processes (in its
/// borrow table). Implemented by the runtime (driver) and by each worker.
///
/// Thread safety: every function may be called from any thread at any time,
/// also after the runtime stopped (they then do nothing).
class ref_context {
public:
  virtual ~ref_context();

  /// A ref to `id` was copied.
  virtual void add_local_ref(const object_id& id) noexcept = 0;

  /// A ref to `id` was destroyed.
  virtual void remove_local_ref(const object_id& id) noexcept = 0;

  /// Fills in the owner's address of `id` (a ref is being serialized).
  /// The default knows no address and leaves `out` as it is.
  virtual void describe(const object_id& id, ref_descriptor& out) const;

  /// Counts one local ref for a ref just read from bytes; for an object
  /// owned elsewhere this makes the process a borrower. The default counts
  /// it like a copy.
  virtual void adopt(const ref_descriptor& d) noexcept;

  /// A ref is leaving in a plain CAF message: keep the object alive under a
  /// transit hold and describe the hold in `out`. The default does nothing.
  virtual void hold_for_transit(const ref_base& x, ref_descriptor& out);
};

/// The untyped part of `ref<T>`: an object id plus the owner's counter.
///
/// Each live `ref_base` holds exactly one local ref on its object: a copy
/// adds one, destruction (or `reset`) removes one, a move transfers it. Who
/// may touch it: any thread; a single `ref_base` object, like any value, is
/// not to be mutated by two threads at once. A ref read from a descriptor
/// naming a value of another type than its `T` remembers that type
/// (`mismatched_type`): reading its value fails with `type_mismatch`.
class ref_base {
public:
  ref_base() noexcept = default;

  /// Adopts one local ref the owner already counted for `id`.
  ref_base(object_id id, std::shared_ptr<ref_context> ctx) noexcept
    : id_(id), ctx_(std::move(ctx)) {
    // nop
  }

  ref_base(const ref_base& other) noexcept
    : id_(other.id_), ctx_(other.ctx_), mismatched_(other.mismatched_) {
    if (ctx_)
      ctx_->add_local_ref(id_);
  }

  ref_base(ref_base&& other) noexcept
    : id_(other.id_), ctx_(std::move(other.ctx_)),
      mismatched_(other.mismatched_) {
    other.id_ = object_id{};
    other.mismatched_ = nullptr;
  }

  ref_base& operator=(const ref_base& other) noexcept {
    if (this != &other) {
      ref_base tmp{other};
      swap(tmp);
    }
    return *this;
  }

  ref_base& operator=(ref_base&& other) noexcept {
    if (this != &other) {
      reset();
      swap(other);
    }
    return *this;
  }

  ~ref_base() {
    reset();
  }

  /// Drops this ref's local count; afterwards `valid()` is false.
  void reset() noexcept {
    if (ctx_) {
      ctx_->remove_local_ref(id_);
      ctx_.reset();
    }
    id_ = object_id{};
    mismatched_ = nullptr;
  }

  void swap(ref_base& other) noexcept {
    std::swap(id_, other.id_);
    ctx_.swap(other.ctx_);
    std::swap(mismatched_, other.mismatched_);
  }

  const object_id& id() const noexcept {
    return id_;
  }

  /// True when the ref names an object (not default-constructed or reset).
  bool valid() const noexcept {
    return ctx_ != nullptr;
  }

  explicit operator bool() const noexcept {
    return valid();
  }

  /// The owner's counter, for the runtime.
  ref_context* context() const noexcept {
    return ctx_.get();
  }

  /// The counter as a shared pointer, for the runtime.
  const std::shared_ptr<ref_context>& shared_context() const noexcept {
    return ctx_;
  }

  /// Gives up this ref without counting it down: the caller takes over the
  /// one local ref it held (e.g. to count it as "contained in a value").
  /// Afterwards `valid()` is false.
  object_id release() noexcept {
    auto id = id_;
    ctx_.reset();
    id_ = object_id{};
    mismatched_ = nullptr;
    return id;
  }

  /// The `type_tag` of the value this ref names when the descriptor it was
  /// read from named another type than the `T` of the `ref<T>` it was read
  /// as; null otherwise (also for every ref made in this process). Written
  /// out again, the ref keeps naming that type.
  const std::string* mismatched_type() const noexcept {
    return mismatched_;
  }

private:
  friend caf::error read_ref(const ref_descriptor&, ref_base&,
                             const std::string&, const caf::actor_system*);

  object_id id_;
  std::shared_ptr<ref_context> ctx_;
  /// Interned (kept until exit), see `mismatched_type`.
  const std::string* mismatched_ = nullptr;
};

/// A reference to an immutable value of type `T` somewhere in the cluster.
///
/// Returned at once by `runtime::call`, `runtime::put` and actor calls; the
/// value may not exist yet. Copying a ref is cheap and keeps the value alive;
/// when the last ref (and the last task that reads it) is gone, the owner
/// frees the value everywhere. Fetch it with `runtime::get`, pass it to
/// further calls, or resolve it inside an actor with `dref::then`.
///
/// A `ref<U>` never becomes a `ref<T>` of another type: neither by copy nor
/// by move (the constructor is deleted), nor as a call's argument (checked
/// at compile time). Only the untyped `ref_base` the runtime makes turns
/// into a typed ref, and a ref read from bytes naming another type fails
/// its reads with `type_mismatch` (see `check_type`).
template <class T>
class ref : public ref_base {
public:
  using value_type = T;

  using ref_base::ref_base;

  ref() noexcept = default;

  /// Adopts the local ref held by `x` (which becomes empty). For the
  /// runtime, which makes refs untyped.
  explicit ref(ref_base&& x) noexcept : ref_base(std::move(x)) {
    // nop
  }

  /// A ref to a value of another type is not a ref to a `T`.
  template <class U, class = std::enable_if_t<!std::is_same_v<U, T>>>
  explicit ref(ref<U>&&) = delete;

  template <class U, class = std::enable_if_t<!std::is_same_v<U, T>>>
  explicit ref(const ref<U>&) = delete;
};

/// The error of reading the value of a ref that names a value of type
/// `actual` as a `ref<expected>` (`type_mismatch`, naming both).
caf::error type_mismatch_error(const std::string& expected,
                               const std::string& actual);

/// `type_mismatch` naming both types when `x` was read from a descriptor
/// of a value of another type than `T` (see `ref_base::mismatched_type`);
/// none otherwise. Every read of a ref's value checks it first.
template <class T>
caf::error check_type(const ref<T>& x) {
  if (auto actual = x.mismatched_type())
    return type_mismatch_error(type_tag<T>(), *actual);
  return caf::none;
}

/// While alive, every ref serialized on this thread (by `to_blob` or any CAF
/// serializer) is also copied into `out`: the caller learns which refs a
/// value contains and holds them. Scopes nest; the innermost one collects.
/// Who may touch it: the thread that made it, on the stack only.
class ref_collect_scope {
public:
  explicit ref_collect_scope(std::vector<ref_base>& out) noexcept;
  ~ref_collect_scope();
  ref_collect_scope(const ref_collect_scope&) = delete;
  ref_collect_scope& operator=(const ref_collect_scope&) = delete;

private:
  std::vector<ref_base>* prev_;
};

/// While alive, every ref deserialized on this thread is adopted by `ctx`
/// (counted there, and borrowed when another process owns it). Without a
/// scope, a process-wide default (a worker's own context) is used; with
/// neither, reading a ref fails with `serialization_failed`.
/// Who may touch it: the thread that made it, on the stack only.
class ref_read_scope {
public:
  explicit ref_read_scope(std::shared_ptr<ref_context> ctx) noexcept;
  ~ref_read_scope();
  ref_read_scope(const ref_read_scope&) = delete;
  ref_read_scope& operator=(const ref_read_scope&) = delete;

private:
  std::shared_ptr<ref_context> ctx_;
  ref_read_scope* prev_;

  friend caf::error read_ref(const ref_descriptor&, ref_base&,
                             const std::string&, const caf::actor_system*);
};

/// Sets the context that adopts refs read outside any `ref_read_scope`
/// (a worker sets its own; null clears it). Thread-safe.
void set_default_read_context(std::shared_ptr<ref_context> ctx);

/// Names the context of the refs of actor system `sys`: CAF messages that
/// `sys` receives or sends with refs inside are counted there. Thread-safe.
void register_system_context(const caf::actor_system* sys,
                             std::weak_ptr<ref_context> ctx);

/// Forgets `sys` (its runtime or worker stops).
void unregister_system_context(const caf::actor_system* sys);

/// Describes `x` for the wire and, inside a `ref_collect_scope`, records it.
/// Serialized by actor system `sys` (a CAF message leaving it) outside any
/// scope, the ref gets a transit hold. `out.type` is the caller's to set.
void write_ref(const ref_base& x, ref_descriptor& out,
               const caf::actor_system* sys = nullptr);

/// Makes `x` a ref adopted by the current read context: the innermost
/// `ref_read_scope`, else the context registered for `sys` (a CAF message
/// arriving there), else the process default. `type` is the `type_tag` of
/// the value type `x` is read as: when `d` names another type, `x` is
/// adopted all the same (the protocol's counts stay right) and remembers
/// `d.type` (`mismatched_type`), so that reading its value fails.
caf::error read_ref(const ref_descriptor& d, ref_base& x,
                    const std::string& type,
                    const caf::actor_system* sys = nullptr);

namespace detail {

template <class F, class = void>
struct has_context : std::false_type {};

template <class F>
struct has_context<F, std::void_t<decltype(std::declval<F&>().context())>>
  : std::true_type {};

// The actor system a CAF (de)serializer works for, if any: set for CAF
// messages crossing the network, null for `to_blob`/`from_blob`.
template <class Inspector>
const caf::actor_system* system_of(Inspector& f) {
  if constexpr (has_context<Inspector>::value) {
    caf::execution_unit* ctx = f.context();
    return ctx != nullptr ? &ctx->system() : nullptr;
  } else {
    return nullptr;
  }
}

} // namespace detail

/// A ref inside a value: written as its `ref_descriptor`, which names the
/// value's type; reading it back adopts the ref in the reading process (see
/// `ref_read_scope`) and checks that type against `T`.
template <class Inspector, class T>
typename Inspector::result_type inspect(Inspector& f, ref<T>& x) {
  ref_descriptor d;
  if constexpr (Inspector::reads_state) {
    write_ref(x, d, detail::system_of(f));
    auto actual = x.mismatched_type();
    d.type = actual != nullptr ? *actual : type_tag<T>();
    return f(caf::meta::type_name("dref.ref"), d);
  } else {
    auto load = caf::meta::load_callback([&]() -> caf::error {
      return read_ref(d, x, type_tag<T>(), detail::system_of(f));
    });
    return f(caf::meta::type_name("dref.ref"), d, load);
  }
}

} // namespace dref
