#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "caf/error.hpp"

#include "dref/refs/fwd.hpp"
#include "dref/refs/object_id.hpp"

namespace dref {

/// One slot of a store: the serialized value, or the error the task that
/// should have made it failed with, or (`in_node_store`) a value sealed in
/// the node store: the slot holds no bytes then, only the object's place in
/// this process (the refs inside the value stay held while it exists).
struct stored_object {
  std::shared_ptr<const blob> value;
  caf::error error;
  /// The bytes live in the node store under the same id.
  bool in_node_store = false;
  /// Size of the value in the node store (`in_node_store` only).
  uint64_t node_size = 0;
};

/// A worker process's in-memory store: the values of the tasks it ran,
/// kept until their owner frees them.
///
/// Thread safety: every member function locks `mtx_`; the executor thread
/// writes results while the store server reads and frees them.
/// Invariant: `bytes()` is the sum of the sizes of the values held here
/// (node-store slots count 0: their bytes are the node store's).
/// Ownership: values are shared with readers through `shared_ptr`, so a value
/// freed while a reader still uses it lives until that reader is done.
class local_store {
public:
  /// Stores (or replaces) the object `id`.
  void put(const object_id& id, stored_object obj);

  /// Returns the object, or nothing when the store does not hold it.
  std::optional<stored_object> get(const object_id& id) const;

  /// Drops the object; returns whether it was there.
  bool erase(const object_id& id);

  /// Number of stored objects.
  size_t count() const;

  /// Bytes of stored values.
  uint64_t bytes() const;

  /// Visits every object (id, slot) under the lock; `f` must not call back
  /// into the store.
  template <class F>
  void for_each(F&& f) const {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [id, obj] : objects_)
      f(id, obj);
  }

private:
  mutable std::mutex mtx_;
  std::unordered_map<object_id, stored_object> objects_; // guarded by mtx_
  uint64_t bytes_ = 0;                                   // guarded by mtx_
};

} // namespace dref
