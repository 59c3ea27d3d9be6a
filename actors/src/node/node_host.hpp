#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "caf/error.hpp"

#include "dref/actors/config.hpp"
#include "dref/store/node_store.hpp"
#include "dref/store/transfer_server.hpp"

namespace dref::internal {

/// The node store a process hosts for the processes of its node (today the
/// driver, for its local cluster), with its transfer server (the other
/// processes' zero-copy reads and in-place writes) and its spill directory.
/// The seed of the node service.
///
/// Who may touch it: `open` and `close` by the runtime's start and stop
/// only; `store`, `port` and `prefix` from any thread (`mtx_`).
/// Lifetime: `close` (or the destructor) removes every file of the store:
/// segments, pool, spill files, and the spill directory if it made it.
class node_host {
public:
  ~node_host();

  /// Opens a store named `rt-<pid>-<n>` with `cfg`'s capacity and spill
  /// directory (default: a directory of its own under the run directory,
  /// made now; those of processes that died are removed first) and starts
  /// its transfer server on `host`. Errors: the store's, `io_error`.
  caf::error open(const config& cfg, const std::string& host);

  /// The store while open, else null.
  std::shared_ptr<node_store> store() const;

  /// The transfer server's port (0 while not open).
  uint16_t port() const;

  /// Path prefix of every file of the store in its shm directory; empty if
  /// not open.
  std::string prefix() const;

  /// The spill directory, and whether this host made it (and removes it).
  std::string spill_dir() const {
    return spill_dir_;
  }
  bool owns_spill_dir() const {
    return own_spill_dir_;
  }

  /// Stops the server and closes the store (its files go with it; a buffer
  /// still held keeps its mapping, not the file).
  void close();

private:
  mutable std::mutex mtx_;
  std::shared_ptr<node_store> store_;         // guarded by mtx_
  std::unique_ptr<transfer_server> server_;   // open/close only
  uint16_t port_ = 0;                         // guarded by mtx_
  std::string prefix_;                        // guarded by mtx_
  std::string spill_dir_;                     // open/close only
  bool own_spill_dir_ = false;                // open/close only
};

} // namespace dref::internal
