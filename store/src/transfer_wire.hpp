#pragma once

// What the three ends of the transfer protocol (format.hpp, docs/formats.md)
// share: transfer_server, transfer_client and node_client. Socket I/O with
// errno results, the connection handle, connecting with a bound, and the
// request and response headers. Pure functions of their arguments (plus the
// socket): safe from any thread, one thread per socket at a time.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/store/fwd.hpp"
#include "dref/store/transfer_server.hpp"

#include "format.hpp"

namespace dref::internal {

// -- socket helpers -----------------------------------------------------------

/// Sends all `n` bytes: 0 or an errno (EAGAIN: timed out).
int send_all(int fd, const void* data, size_t n);

/// Receives exactly `n` bytes: 0, an errno (EAGAIN: timed out), or -1 at
/// end of stream.
int recv_all(int fd, void* data, size_t n);

/// Words for a result of `send_all` or `recv_all`.
std::string describe(int rc);

/// Bounds every send and receive on `fd` by `timeout`; sets TCP_NODELAY.
void set_timeouts(int fd, std::chrono::milliseconds timeout);

/// A `transfer_failed` error naming the peer `at`.
caf::error transfer_error(const store_endpoint& at, const std::string& what);

/// A connected socket, closed by the destructor.
struct connection {
  int fd = -1;
  connection() = default;
  explicit connection(int f) : fd(f) {
  }
  connection(connection&& other) noexcept : fd(other.fd) {
    other.fd = -1;
  }
  connection& operator=(connection&&) = delete;
  ~connection();
};

/// Connects to `at` within `timeout`; every later send and receive on the
/// connection is bounded by `timeout` too.
caf::expected<connection> connect_to(const store_endpoint& at,
                                     std::chrono::milliseconds timeout);

// -- request and response headers ---------------------------------------------

/// A decoded response header (format.hpp).
struct response {
  uint16_t status = 0;
  uint64_t size = 0;
  uint32_t elem_size = 0;
  uint64_t generation = 0; // pull_stripe: the whole value's size
  uint32_t stripes = 0;    // pull_stripe: the server's stripe count
};

/// Sends one request header (format.hpp).
caf::error send_request(int fd, const store_endpoint& at, wire_op op,
                        const object_id& id, uint64_t argument = 0,
                        uint32_t elem_size = 0,
                        copy_kind kind = copy_kind::primary);

/// Reads a response header; an error response becomes its caf::error.
caf::expected<response> read_response(int fd, const store_endpoint& at);

} // namespace dref::internal
