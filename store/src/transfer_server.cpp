// The transfer protocol (docs/formats.md): the server, one thread per
// connection.

#include "dref/store/transfer_server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "caf/message.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dref/store/error.hpp"
#include "dref/store/node_store.hpp"

#include "format.hpp"
#include "transfer_wire.hpp"

namespace dref {

using internal::get_u32;
using internal::get_u64;
using internal::put_u32;
using internal::put_u64;
using internal::recv_all;
using internal::send_all;
using internal::set_timeouts;
using internal::wire_header_size;
using internal::wire_op;

struct transfer_server::impl {
  node_store* store = nullptr;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  uint16_t port = 0;
  std::atomic<uint64_t> pulls{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> streams{0};
  std::thread acceptor;

  struct worker {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::mutex mtx;
  std::list<worker> workers; // guarded by mtx
  bool stopping = false;     // guarded by mtx

  void respond_error(int fd, wire_op op, const caf::error& err) {
    std::string text;
    if (err.context().match_elements<std::string>())
      text = err.context().get_as<std::string>(0);
    uint16_t status = err.category() == store_category
                        ? err.code()
                        : static_cast<uint16_t>(store_errc::io_error);
    unsigned char hdr[wire_header_size] = {};
    put_u32(hdr, internal::wire_magic);
    auto op16 = static_cast<uint16_t>(op);
    std::memcpy(hdr + 4, &status, 2);
    std::memcpy(hdr + 6, &op16, 2);
    put_u64(hdr + 8, text.size());
    if (send_all(fd, hdr, sizeof(hdr)) == 0)
      send_all(fd, text.data(), text.size());
  }

  int respond(int fd, wire_op op, uint64_t size, uint32_t elem_size,
              const void* body, uint64_t generation = 0,
              uint32_t stripes = 0) {
    unsigned char hdr[wire_header_size] = {};
    put_u32(hdr, internal::wire_magic);
    auto op16 = static_cast<uint16_t>(op);
    std::memcpy(hdr + 6, &op16, 2);
    put_u64(hdr + 8, size);
    put_u32(hdr + 16, elem_size);
    put_u64(hdr + 20, generation);
    put_u32(hdr + 28, stripes);
    if (int rc = send_all(fd, hdr, sizeof(hdr)))
      return rc;
    return send_all(fd, body, size);
  }

  // Serves one connection until the peer closes it or the server stops,
  // then releases the pins the peer still holds.
  /// What a connection holds: pins of acquires, objects being written.
  struct session {
    std::vector<std::pair<object_id, uint64_t>> held;
    std::unordered_map<object_id, segment_writer> writing;
  };

  // Removes the writer of `id` from the session (for seal, seal_as,
  // abort); `not_found` if this connection is not writing `id`.
  static caf::expected<segment_writer> take_writer(session& ses,
                                                   const object_id& id) {
    auto i = ses.writing.find(id);
    if (i == ses.writing.end())
      return make_error(store_errc::not_found,
                        to_string(id) + " is not being written here");
    auto w = std::move(i->second);
    ses.writing.erase(i);
    return w;
  }

  void serve(int fd) {
    set_timeouts(fd, std::chrono::minutes{10});
    session ses;
    serve(fd, ses);
    for (auto& [id, generation] : ses.held)
      store->release(id, generation);
    // ses.writing: unsealed writers abort when destroyed.
  }

  void serve(int fd, session& ses) {
    auto& held = ses.held;
    for (;;) {
      unsigned char req[internal::wire_request_size];
      if (recv_all(fd, req, sizeof(req)) != 0)
        return;
      uint16_t version = 0;
      uint16_t op16 = 0;
      std::memcpy(&version, req + 4, 2);
      std::memcpy(&op16, req + 6, 2);
      auto op = static_cast<wire_op>(op16);
      if (get_u32(req) != internal::wire_magic
          || version != internal::wire_version) {
        respond_error(fd, op,
                      make_error(store_errc::transfer_failed,
                                 "unsupported transfer protocol version "
                                   + std::to_string(version)));
        return;
      }
      object_id id{get_u64(req + 8), get_u64(req + 16)};
      int rc = 0;
      switch (op) {
        case wire_op::pull: {
          auto buf = store->get(id);
          if (!buf) {
            respond_error(fd, op, buf.error());
            break;
          }
          rc = respond(fd, op, buf->size(), buf->elem_size(), buf->data());
          if (rc == 0) {
            ++pulls;
            ++streams;
            bytes += buf->size();
          }
          break;
        }
        case wire_op::pull_stripe: {
          auto index = get_u32(req + 24);
          auto requested = get_u32(req + 28);
          auto buf = store->get(id);
          if (!buf) {
            respond_error(fd, op, buf.error());
            break;
          }
          auto count = internal::stripe_count(buf->size(), requested);
          if (index >= count) {
            respond_error(fd, op,
                          make_error(store_errc::invalid_argument,
                                     "stripe " + std::to_string(index)
                                       + " of " + std::to_string(count)));
            break;
          }
          auto [first, last] = internal::stripe_range(buf->size(), count,
                                                      index);
          rc = respond(fd, op, last - first, buf->elem_size(),
                       buf->data() + first, buf->size(), count);
          if (rc == 0) {
            if (index == 0)
              ++pulls; // one pull, however many stripes
            ++streams;
            bytes += last - first;
          }
          break;
        }
        case wire_op::acquire: {
          auto loc = store->acquire(id);
          if (!loc) {
            respond_error(fd, op, loc.error());
            break;
          }
          held.emplace_back(id, loc->generation);
          rc = respond(fd, op, loc->path.size(), loc->elem_size,
                       loc->path.data(), loc->generation);
          break;
        }
        case wire_op::release: {
          auto generation = get_u64(req + 24);
          auto i = std::find(held.begin(), held.end(),
                             std::make_pair(id, generation));
          if (i != held.end()) {
            held.erase(i);
            store->release(id, generation);
          }
          rc = respond(fd, op, 0, 0, nullptr);
          break;
        }
        case wire_op::create: {
          auto kind = req[36] == 1 ? copy_kind::secondary : copy_kind::primary;
          auto w = store->create(id, get_u64(req + 24), kind,
                                 get_u32(req + 32));
          if (!w) {
            respond_error(fd, op, w.error());
            break;
          }
          auto path = w->path();
          auto generation = w->generation();
          ses.writing[id] = std::move(*w);
          rc = respond(fd, op, path.size(), 0, path.data(), generation);
          break;
        }
        case wire_op::seal:
        case wire_op::abort: {
          auto taken = take_writer(ses, id);
          if (!taken) {
            respond_error(fd, op, std::move(taken.error()));
            break;
          }
          auto w = std::move(*taken);
          if (op == wire_op::abort) {
            w.abort();
            rc = respond(fd, op, 0, 0, nullptr);
            break;
          }
          auto sealed = w.seal();
          if (!sealed) {
            respond_error(fd, op, sealed.error());
            break;
          }
          rc = respond(fd, op, 0, 0, nullptr);
          break;
        }
        case wire_op::seal_as: {
          // Body: the id to seal under. The connection keeps a pin of the
          // sealed object (as after an acquire): the writer's mapping
          // stays valid until it sends `release`.
          unsigned char body[16];
          if (recv_all(fd, body, sizeof(body)) != 0)
            return;
          object_id as{get_u64(body), get_u64(body + 8)};
          auto taken = take_writer(ses, id);
          if (!taken) {
            respond_error(fd, op, std::move(taken.error()));
            break;
          }
          auto w = std::move(*taken);
          auto sealed = w.seal_as(as);
          if (!sealed) {
            respond_error(fd, op, sealed.error());
            break;
          }
          auto loc = store->acquire(as); // pinned meanwhile by `sealed`
          if (!loc) {
            respond_error(fd, op, loc.error());
            break;
          }
          held.emplace_back(as, loc->generation);
          rc = respond(fd, op, 0, 0, nullptr, loc->generation);
          break;
        }
        case wire_op::free: {
          if (auto err = store->free(id)) {
            respond_error(fd, op, err);
            break;
          }
          rc = respond(fd, op, 0, 0, nullptr);
          break;
        }
        case wire_op::stats: {
          unsigned char body[16];
          put_u64(body, pulls.load());
          put_u64(body + 8, bytes.load());
          rc = respond(fd, op, sizeof(body), 0, body);
          break;
        }
        default:
          respond_error(fd, op,
                        make_error(store_errc::invalid_argument,
                                   "unknown op " + std::to_string(op16)));
          return;
      }
      if (rc != 0)
        return;
    }
  }

  void accept_loop() {
    for (;;) {
      pollfd pfds[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
      if (::poll(pfds, 2, -1) < 0) {
        if (errno == EINTR)
          continue;
        return;
      }
      if (pfds[1].revents != 0)
        return;
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0)
        continue;
      std::lock_guard<std::mutex> guard{mtx};
      // Reap finished connections.
      for (auto i = workers.begin(); i != workers.end();) {
        if (i->done) {
          i->thread.join();
          ::close(i->fd);
          i = workers.erase(i);
        } else {
          ++i;
        }
      }
      if (stopping) {
        ::close(fd);
        return;
      }
      auto& w = workers.emplace_back();
      w.fd = fd;
      try {
        w.thread = std::thread{[this, &w] {
          serve(w.fd);
          w.done = true;
        }};
      } catch (...) {
        // No thread to be had: refuse this connection (its client sees
        // the close), keep serving the others.
        workers.pop_back();
        ::close(fd);
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> guard{mtx};
      stopping = true;
      for (auto& w : workers)
        ::shutdown(w.fd, SHUT_RDWR);
    }
    if (wake[1] >= 0) {
      char c = 1;
      [[maybe_unused]] auto n = ::write(wake[1], &c, 1);
    }
    if (acceptor.joinable())
      acceptor.join();
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& w : workers) {
      w.thread.join();
      ::close(w.fd);
    }
    workers.clear();
    for (int fd : {listen_fd, wake[0], wake[1]})
      if (fd >= 0)
        ::close(fd);
  }
};

transfer_server::transfer_server(std::unique_ptr<impl> ptr)
  : impl_(std::move(ptr)) {
  // nop
}

caf::expected<std::unique_ptr<transfer_server>>
transfer_server::start(node_store& store, const std::string& host,
                       uint16_t port) {
  auto s = std::make_unique<impl>();
  s->store = &store;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    return make_error(store_errc::invalid_argument,
                      "not an IPv4 address: " + host);
  s->listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd < 0 || ::pipe2(s->wake, O_CLOEXEC) != 0) {
    auto err = make_error(store_errc::io_error,
                          std::string{"socket: "} + std::strerror(errno));
    s->stop();
    return err;
  }
  int one = 1;
  ::setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(s->listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
        != 0
      || ::listen(s->listen_fd, 128) != 0) {
    auto err = make_error(store_errc::io_error,
                          "cannot listen on " + host + ":"
                            + std::to_string(port) + ": "
                            + std::strerror(errno));
    s->stop();
    return err;
  }
  socklen_t len = sizeof(addr);
  ::getsockname(s->listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  s->port = ntohs(addr.sin_port);
  auto raw = s.get();
  s->acceptor = std::thread{[raw] { raw->accept_loop(); }};
  return std::unique_ptr<transfer_server>{new transfer_server(std::move(s))};
}

transfer_server::~transfer_server() {
  impl_->stop();
}

uint16_t transfer_server::port() const noexcept {
  return impl_->port;
}

uint64_t transfer_server::pulls_served() const noexcept {
  return impl_->pulls.load();
}

uint64_t transfer_server::bytes_served() const noexcept {
  return impl_->bytes.load();
}

uint64_t transfer_server::streams_served() const noexcept {
  return impl_->streams.load();
}

} // namespace dref
