#pragma once

#include <cstdint>
#include <string>

#include "caf/atom.hpp"
#include "caf/error.hpp"
#include "caf/fwd.hpp"

namespace dref {

/// Errors of the object store. Values are frozen: they cross processes.
enum class store_errc : uint8_t {
  /// The store cannot take the value now. Retry the call later.
  store_full = 1,
  /// The store holds no copy of the object (freed, or never stored here).
  not_found = 2,
};

constexpr caf::atom_value store_category = caf::atom("dref_store");

std::string to_string(store_errc x);
caf::error make_error(store_errc x);
caf::error make_error(store_errc x, std::string context);
void add_store_error_category(caf::actor_system_config& cfg);

} // namespace dref
