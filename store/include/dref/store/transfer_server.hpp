#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "caf/expected.hpp"

#include "dref/store/fwd.hpp"

namespace dref {

/// Where a node store's transfer server listens.
struct store_endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
};

/// Serves a node store's values to other processes over plain TCP (the
/// transfer protocol of docs/formats.md): values to stores on other nodes
/// (`pull`, or `pull_stripe`: one byte range per connection, several
/// connections per pull), segment paths to readers and writers on this
/// node (`acquire`, `create`, `seal`, ...), and counters (`stats`).
///
/// Why not CAF messages: value bytes travel as plain streams, sent from
/// the mapped segment and received straight into the puller's new segment,
/// with no serialization and no intermediate copy; CAF 0.17 moves large
/// blobs at well under half of raw loopback TCP (docs/architecture.md).
///
/// Threads: one accept thread plus one thread per open connection; each
/// connection serves its requests in order. The store is used through its
/// thread-safe API only. Ownership: the caller keeps `store` alive until the
/// server is destroyed; the destructor closes every connection and joins
/// every thread.
class transfer_server {
public:
  /// Listens on `host`:`port` (0: an ephemeral port).
  static caf::expected<std::unique_ptr<transfer_server>>
  start(node_store& store, const std::string& host = "127.0.0.1",
        uint16_t port = 0);

  ~transfer_server();

  transfer_server(const transfer_server&) = delete;
  transfer_server& operator=(const transfer_server&) = delete;

  /// The port it listens on.
  uint16_t port() const noexcept;

  /// Pulls answered (a striped pull counts once, at its stripe 0), and the
  /// value bytes sent (all stripes).
  uint64_t pulls_served() const noexcept;
  uint64_t bytes_served() const noexcept;

  /// Streams that sent (part of) a value: one per pull, one per stripe of
  /// a striped pull.
  uint64_t streams_served() const noexcept;

  struct impl;

private:
  explicit transfer_server(std::unique_ptr<impl> ptr);
  std::unique_ptr<impl> impl_;
};

} // namespace dref
