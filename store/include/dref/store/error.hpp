#pragma once

#include <cstdint>
#include <string>

#include "caf/atom.hpp"
#include "caf/error.hpp"
#include "caf/fwd.hpp"

namespace dref {

/// Errors of the object store. Values are frozen: they cross processes
/// (and `transfer_server` sends them on its wire, docs/formats.md). Never
/// renumber or reuse a value.
enum class store_errc : uint8_t {
  /// The store cannot take the value now, even after evicting every
  /// unpinned secondary copy and spilling every unpinned primary copy.
  /// Retry the call later (or free something).
  store_full = 1,
  /// The store holds no copy of the object (freed, never stored here, or
  /// not sealed yet).
  not_found = 2,
  /// A read or write of a segment or spill file failed (the context names
  /// the file and the OS error). Nothing already stored was lost. Retry
  /// the call later.
  io_error = 3,
  /// The spill directory's file system (or the shared-memory file system)
  /// has no space left. Nothing already stored was lost. Retry later.
  disk_full = 4,
  /// A spill file or segment failed its integrity check (magic, version,
  /// size or CRC-32C). The copy is unusable: stop, or fetch another copy.
  corrupt = 5,
  /// `create` or `put` of an object the store already holds (or is
  /// creating). Objects are immutable: use the stored one.
  already_exists = 6,
  /// A pull from another node's store failed (peer unreachable, died or
  /// timed out mid-transfer, or spoke another protocol version). Retry from
  /// another copy, or higher up.
  transfer_failed = 7,
  /// A malformed request (bad store name, element size not matching, ...).
  /// A bug in the caller: stop.
  invalid_argument = 8,
};

constexpr caf::atom_value store_category = caf::atom("dref_store");

std::string to_string(store_errc x);
caf::error make_error(store_errc x);
caf::error make_error(store_errc x, std::string context);
void add_store_error_category(caf::actor_system_config& cfg);

/// Renders an error without an actor system: "store_full (context)" for
/// store errors, CAF's rendering otherwise.
std::string describe(const caf::error& err);

/// True if `err` is the store error `x`.
bool is(const caf::error& err, store_errc x);

} // namespace dref
