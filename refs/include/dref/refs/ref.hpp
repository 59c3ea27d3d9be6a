#pragma once

#include <memory>
#include <utility>

#include "dref/refs/fwd.hpp"
#include "dref/refs/object_id.hpp"

namespace dref {

/// Counts the refs of the objects one owner owns. Implemented by the
/// runtime, whose ownership table holds the counts.
///
/// Thread safety: both functions may be called from any thread at any time,
/// also after the runtime stopped (they then do nothing).
class ref_context {
public:
  virtual ~ref_context();

  /// A ref to `id` was copied.
  virtual void add_local_ref(const object_id& id) noexcept = 0;

  /// A ref to `id` was destroyed.
  virtual void remove_local_ref(const object_id& id) noexcept = 0;
};

/// The untyped part of `ref<T>`: an object id plus the owner's counter.
///
/// Each live `ref_base` holds exactly one local ref on its object: a copy
/// adds one, destruction (or `reset`) removes one, a move transfers it. Who
/// may touch it: any thread; a single `ref_base` object, like any value, is
/// not to be mutated by two threads at once.
class ref_base {
public:
  ref_base() noexcept = default;

  /// Adopts one local ref the owner already counted for `id`.
  ref_base(object_id id, std::shared_ptr<ref_context> ctx) noexcept
    : id_(id), ctx_(std::move(ctx)) {
    // nop
  }

  ref_base(const ref_base& other) noexcept : id_(other.id_), ctx_(other.ctx_) {
    if (ctx_)
      ctx_->add_local_ref(id_);
  }

  ref_base(ref_base&& other) noexcept
    : id_(other.id_), ctx_(std::move(other.ctx_)) {
    other.id_ = object_id{};
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
  }

  void swap(ref_base& other) noexcept {
    std::swap(id_, other.id_);
    ctx_.swap(other.ctx_);
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

private:
  object_id id_;
  std::shared_ptr<ref_context> ctx_;
};

/// A reference to an immutable value of type `T` somewhere in the cluster.
///
/// Returned at once by `runtime::call`, `runtime::put` and actor calls; the
/// value may not exist yet. Copying a ref is cheap and keeps the value alive;
/// when the last ref (and the last task that reads it) is gone, the owner
/// frees the value everywhere. Fetch it with `runtime::get`, pass it to
/// further calls, or resolve it inside an actor with `dref::then`.
template <class T>
class ref : public ref_base {
public:
  using value_type = T;

  using ref_base::ref_base;

  ref() noexcept = default;

  /// Adopts the local ref held by `x` (which becomes empty).
  explicit ref(ref_base&& x) noexcept : ref_base(std::move(x)) {
    // nop
  }
};

} // namespace dref
