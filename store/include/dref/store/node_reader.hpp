#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include "caf/expected.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/store/buffer.hpp"
#include "dref/store/fwd.hpp"
#include "dref/store/transfer_server.hpp"

namespace dref {

/// A process's read access to the node store of its own node (a worker
/// reading values of the node's store without copying them).
///
/// Get protocol, ends in a buffer or a definite error:
/// 1. `acquire` over the reader's connection to the store's transfer
///    server: the store restores the value if it was spilled, pins it and
///    answers with its segment's path;
/// 2. the reader maps the segment read-only (`map_sealed_segment`);
/// 3. when the last copy of the returned buffer goes, the mapping is
///    unmapped, then a `release` drops the pin. If the reader's process
///    dies, its connection closes and the store drops its pins.
///
/// Thread safety: any thread; one mutex serializes the requests on the one
/// connection. Ownership: buffers keep what they need; they may outlive the
/// reader (their release is then skipped, and the store releases the pins
/// when the connection closes with the last of them).
class node_reader {
public:
  /// Connects to the store's transfer server at `at`.
  static caf::expected<node_reader>
  connect(const store_endpoint& at,
          std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// A zero-copy view of the value. Errors: `not_found`, the store's
  /// restore errors, `transfer_failed` (connection lost).
  caf::expected<buffer> get(const object_id& id);

  /// Pins held through this reader (buffers alive).
  size_t held() const;

  struct impl;

private:
  explicit node_reader(std::shared_ptr<impl> ptr);
  std::shared_ptr<impl> impl_;
};

} // namespace dref
