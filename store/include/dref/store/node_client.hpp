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

/// A process's access to the node store of its own node: a worker reading
/// values without copying them (`get`), and writing new ones in place
/// (`create` ... `seal`).
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
class node_client {
public:
  /// Connects to the store's transfer server at `at`.
  static caf::expected<node_client>
  connect(const store_endpoint& at,
          std::chrono::milliseconds timeout = std::chrono::seconds{30});

  /// A zero-copy view of the value. Errors: `not_found`, the store's
  /// restore errors, `transfer_failed` (connection lost).
  caf::expected<buffer> get(const object_id& id);

  /// Pins held through this client (buffers alive).
  size_t held() const;

  /// A value this process writes into the node store: the store makes the
  /// segment (`node_store::create`, room made as for any put), this process
  /// maps it read-write and fills it, then `seal` unmaps it and asks the
  /// store to seal it. Dropped unsealed: aborted (so is every unsealed one
  /// when the connection closes, e.g. because this process died).
  /// One thread at a time; may outlive the client.
  class writer {
  public:
    writer();
    writer(writer&&) noexcept;
    writer& operator=(writer&&) noexcept;
    ~writer();
    char* data() const noexcept;
    uint64_t size() const noexcept;
    /// Unmaps and seals. Errors as `segment_writer::seal`, or
    /// `transfer_failed` (connection lost: the store aborts the object).
    caf::error seal();
    /// Seals the object under the id `as` (which need not be the id it was
    /// created with) and keeps this process's mapping, made read-only, as
    /// the returned buffer: no byte is copied and nothing is unmapped, so
    /// pointers into `data()` stay valid (read-only) for as long as the
    /// buffer or a copy of it lives. The store pins the object for this
    /// connection until the last copy goes (then the mapping goes and a
    /// `release` is sent). Errors as `seal`, or `already_exists` (`as` is
    /// in the store); after an error the object is gone from the store
    /// but the mapping stays until this writer is dropped.
    caf::expected<buffer> seal_as(const object_id& as);
    void abort();
    struct state;
    explicit writer(std::unique_ptr<state> st);

  private:
    std::unique_ptr<state> st_;
  };

  /// Deletes every copy of the object in the node store
  /// (`node_store::free`). Errors: `not_found`, `transfer_failed`.
  caf::error free(const object_id& id);

  /// Starts writing `size` bytes of a new object. Errors as
  /// `node_store::create`, or `transfer_failed`.
  caf::expected<writer> create(const object_id& id, uint64_t size,
                               copy_kind kind = copy_kind::primary,
                               uint32_t elem_size = 0);

  struct impl;

private:
  explicit node_client(std::shared_ptr<impl> ptr);
  std::shared_ptr<impl> impl_;
};

} // namespace dref
