#pragma once

#include <cstdint>
#include <string>

#include "caf/atom.hpp"
#include "caf/error.hpp"
#include "caf/fwd.hpp"
#include "caf/make_message.hpp"

namespace dref {

/// Errors about objects and refs. Values are frozen: they cross processes.
enum class refs_errc : uint8_t {
  /// The process that owns the object is gone; its objects fail with it
  /// (fate-sharing). Stop, or retry higher up by re-creating the object.
  owner_died = 1,
  /// Every copy of the value is gone and it cannot be re-created. Stop, or
  /// retry higher up.
  object_lost = 2,
  /// The value's type is not the type the caller asked for. A bug: stop.
  type_mismatch = 3,
  /// The object id is not known to its owner (already freed or never made).
  unknown_object = 4,
  /// A value could not be serialized or deserialized.
  serialization_failed = 5,
};

/// The CAF error category of `refs_errc`.
constexpr caf::atom_value refs_category = caf::atom("dref_refs");

std::string to_string(refs_errc x);

caf::error make_error(refs_errc x);

/// Makes an error with a human-readable context (rendered by CAF).
caf::error make_error(refs_errc x, std::string context);

/// Registers the category with CAF so errors render as text.
void add_refs_error_category(caf::actor_system_config& cfg);

} // namespace dref
