#pragma once

#include <vector>

#include "caf/meta/type_name.hpp"

#include "dref/refs/fwd.hpp"
#include "dref/refs/object_id.hpp"

namespace dref {

/// A value a durable actor's state refers to through a ref, sent by the
/// actor's worker with the state so that the owner keeps it with the
/// checkpoint (docs/architecture.md, "Refs in durable state"), in
/// `ref_values` (`kept_values`), hence in persist/. Its `inspect` and type
/// name are frozen (docs/formats.md).
///
/// A plain value: owned by whoever holds it, not thread-safe.
struct kept_ref_value {
  object_id id;
  /// The serialized value, as the ref's owner stores it.
  blob value;
  /// The refs inside the value (kept too).
  std::vector<object_id> refs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kept_ref_value& x) {
  return f(caf::meta::type_name("dref.kept_ref_value"), x.id, x.value,
           x.refs);
}

} // namespace dref
