#pragma once

#include <memory>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/store/buffer.hpp"
#include "dref/store/node_client.hpp"
#include "dref/store/node_store.hpp"

namespace dref::internal {

/// A process's way into the node store of its node: reading a value in
/// place, storing one, freeing one. The process that hosts the store (today
/// the driver) calls it directly; every other process on the node goes
/// through its connection to the store's transfer server. The reference
/// protocol (`process_refs`) reads and frees through this, so it is the same
/// code in every process.
///
/// Thread safety: every implementation may be called from any thread.
/// Ownership: shared by the process's ref layer and its task code; it keeps
/// the store (or the connection) alive.
class node_access {
public:
  virtual ~node_access();

  /// A zero-copy view of `id`. Errors: the store's (`not_found`, restore
  /// errors, `transfer_failed`).
  virtual caf::expected<buffer> get(const object_id& id) = 0;

  /// Stores `size` bytes at `data` as a new primary copy of `id` (one
  /// copy). Errors: the store's (`store_full`, `already_exists`, ...).
  virtual caf::error put(const object_id& id, const char* data,
                         size_t size) = 0;

  /// Deletes `id` (a freed object's copy); unknown ids are ignored.
  virtual void free(const object_id& id) = 0;

  /// The store hosted by this process, else null.
  virtual std::shared_ptr<node_store> hosted() const {
    return nullptr;
  }

  /// The connection of a process that does not host the store, else null.
  virtual node_client* client() {
    return nullptr;
  }

  /// The store in this process.
  static std::shared_ptr<node_access> of(std::shared_ptr<node_store> store);

  /// The store behind `client`'s connection.
  static std::shared_ptr<node_access> of(node_client client);
};

} // namespace dref::internal
