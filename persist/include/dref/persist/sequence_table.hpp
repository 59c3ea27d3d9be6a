#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "caf/meta/type_name.hpp"

#include "dref/refs/fwd.hpp"

namespace dref {

/// A durable actor's sequence table: per caller, the number of the last
/// call applied and (when it succeeded) its serialized reply. Travels with
/// the state in results and restore tasks; stored in the same checkpoint
/// record as the state (docs/checkpoint_format.md), hence in persist/.
/// Its `inspect` and type name are frozen (docs/formats.md).
///
/// A plain value: owned by whoever holds it, not thread-safe.
struct sequence_table {
  std::map<std::string, uint64_t> seqs;
  std::map<std::string, blob> replies;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sequence_table& x) {
  return f(caf::meta::type_name("dref.sequence_table"), x.seqs, x.replies);
}

} // namespace dref
