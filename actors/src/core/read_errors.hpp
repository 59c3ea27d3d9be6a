#pragma once

// How reading a value can fail, as the ref layer and the durable layer tell
// the cases apart.

#include <memory>

#include "caf/error.hpp"

#include "dref/refs/fwd.hpp"
#include "dref/store/buffer.hpp"

namespace dref::internal {

/// True if `err` says a value could not be fetched because its owner or
/// holder is gone, unreachable, or does not know the object (timeouts are
/// not: the owner may just be slow, and the caller's time is up).
/// A ref that fails so may still be read from a durable actor's kept copy
/// ("Refs in durable state", docs/architecture.md).
bool is_fetch_failure(const caf::error& err);

/// True if `err` is the failure of an object itself, as its owner stores
/// it (its task threw, its worker died, ...), as opposed to a failure to
/// read it.
bool is_object_failure(const caf::error& err);

/// A buffer viewing a heap copy of a value, which it keeps alive.
inline buffer view_of(std::shared_ptr<const blob> b) {
  auto data = b->data();
  auto size = b->size();
  return buffer{data, size, 0, std::move(b)};
}

} // namespace dref::internal
