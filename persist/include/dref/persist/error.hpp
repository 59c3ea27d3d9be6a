#pragma once

#include <cstdint>
#include <string>

#include "caf/atom.hpp"
#include "caf/error.hpp"
#include "caf/fwd.hpp"

namespace dref {

/// Errors of the checkpoint layer. Values are frozen: they cross processes.
enum class persist_errc : uint8_t {
  /// A stored record failed its integrity check. Stop: fall back to an
  /// older checkpoint if one exists.
  checkpoint_corrupt = 1,
  /// The storage device failed a read or write. Retry the call later.
  io_error = 2,
  /// No space left for the write; nothing was changed. Retry later.
  disk_full = 3,
  /// The stored state was written by an incompatible version. Stop.
  incompatible_state = 4,
};

constexpr caf::atom_value persist_category = caf::atom("dref_pers");

std::string to_string(persist_errc x);
caf::error make_error(persist_errc x);
caf::error make_error(persist_errc x, std::string context);
void add_persist_error_category(caf::actor_system_config& cfg);

} // namespace dref
