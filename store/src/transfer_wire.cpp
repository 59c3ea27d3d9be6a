// The transfer protocol's shared pieces (docs/formats.md): socket I/O,
// connecting, request and response headers.

#include "transfer_wire.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dref/store/error.hpp"

namespace dref::internal {

// -- socket helpers -----------------------------------------------------------

int send_all(int fd, const void* data, size_t n) {
  auto p = static_cast<const char*>(data);
  while (n > 0) {
    auto k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
  return 0;
}

// 0, an errno (EAGAIN: timed out), or -1 at end of stream.
int recv_all(int fd, void* data, size_t n) {
  auto p = static_cast<char*>(data);
  while (n > 0) {
    auto k = ::recv(fd, p, n, 0);
    if (k < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (k == 0)
      return -1;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return 0;
}

std::string describe(int rc) {
  if (rc < 0)
    return "connection closed by the peer";
  if (rc == EAGAIN || rc == EWOULDBLOCK)
    return "timed out";
  return std::strerror(rc);
}

void set_timeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

caf::error transfer_error(const store_endpoint& at, const std::string& what) {
  return make_error(store_errc::transfer_failed,
                    at.host + ":" + std::to_string(at.port) + ": " + what);
}

connection::~connection() {
  if (fd >= 0)
    ::close(fd);
}

caf::expected<connection> connect_to(const store_endpoint& at,
                                     std::chrono::milliseconds timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(at.port);
  if (::inet_pton(AF_INET, at.host.c_str(), &addr.sin_addr) != 1)
    return make_error(store_errc::invalid_argument,
                      "not an IPv4 address: " + at.host);
  connection c{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        0)};
  if (c.fd < 0)
    return transfer_error(at, std::string{"socket: "} + std::strerror(errno));
  int rc = ::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  if (rc != 0 && errno != EINPROGRESS)
    return transfer_error(at, std::string{"connect: "} + std::strerror(errno));
  if (rc != 0) {
    pollfd pfd{c.fd, POLLOUT, 0};
    int n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    if (n <= 0)
      return transfer_error(at, "connect: timed out");
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
      return transfer_error(at, std::string{"connect: "} + std::strerror(err));
  }
  int flags = ::fcntl(c.fd, F_GETFL);
  ::fcntl(c.fd, F_SETFL, flags & ~O_NONBLOCK);
  set_timeouts(c.fd, timeout);
  return c;
}

// -- request and response headers ---------------------------------------------

caf::error send_request(int fd, const store_endpoint& at, wire_op op,
                        const object_id& id, uint64_t argument,
                        uint32_t elem_size, copy_kind kind) {
  unsigned char req[internal::wire_request_size] = {};
  put_u32(req, internal::wire_magic);
  uint16_t version = internal::wire_version;
  auto op16 = static_cast<uint16_t>(op);
  std::memcpy(req + 4, &version, 2);
  std::memcpy(req + 6, &op16, 2);
  put_u64(req + 8, id.owner);
  put_u64(req + 16, id.seq);
  put_u64(req + 24, argument);
  put_u32(req + 32, elem_size);
  req[36] = static_cast<unsigned char>(kind);
  if (int rc = send_all(fd, req, sizeof(req)))
    return transfer_error(at, "sending request: " + describe(rc));
  return caf::none;
}

// Reads a response header; an error response becomes its caf::error.
caf::expected<response> read_response(int fd, const store_endpoint& at) {
  unsigned char hdr[wire_header_size];
  if (int rc = recv_all(fd, hdr, sizeof(hdr)))
    return transfer_error(at, "reading response: " + describe(rc));
  if (get_u32(hdr) != internal::wire_magic)
    return transfer_error(at, "not a dref store (bad magic)");
  response r;
  std::memcpy(&r.status, hdr + 4, 2);
  r.size = get_u64(hdr + 8);
  r.elem_size = get_u32(hdr + 16);
  r.generation = get_u64(hdr + 20);
  r.stripes = get_u32(hdr + 28);
  if (r.status != 0) {
    std::string text(std::min<uint64_t>(r.size, 4096), '\0');
    if (int rc = recv_all(fd, text.data(), text.size()))
      return transfer_error(at, "reading error: " + describe(rc));
    return make_error(static_cast<store_errc>(r.status),
                      "from " + at.host + ":" + std::to_string(at.port) + ": "
                        + text);
  }
  return r;
}

} // namespace dref::internal
