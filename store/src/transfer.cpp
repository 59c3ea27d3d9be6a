// The transfer protocol (docs/formats.md): server and client.

#include "dref/store/node_client.hpp"
#include "dref/store/transfer_client.hpp"
#include "dref/store/transfer_server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <list>
#include <system_error>
#include <thread>

#include "caf/message.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dref/store/error.hpp"

#include "format.hpp"
#include "os.hpp"

namespace dref {

using internal::get_u32;
using internal::get_u64;
using internal::put_u32;
using internal::put_u64;
using internal::wire_header_size;
using internal::wire_op;

namespace {

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
  ~connection() {
    if (fd >= 0)
      ::close(fd);
  }
};

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

struct response {
  uint16_t status = 0;
  uint64_t size = 0;
  uint32_t elem_size = 0;
  uint64_t generation = 0; // pull_stripe: the whole value's size
  uint32_t stripes = 0;    // pull_stripe: the server's stripe count
};

caf::error send_request(int fd, const store_endpoint& at, wire_op op,
                        const object_id& id, uint64_t argument = 0,
                        uint32_t elem_size = 0,
                        copy_kind kind = copy_kind::primary) {
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

} // namespace

// -- transfer_server ----------------------------------------------------------

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

// -- transfer_client ----------------------------------------------------------

uint32_t transfer_client::default_streams() {
  auto n = std::thread::hardware_concurrency();
  return std::clamp<uint32_t>(n, 2, 4);
}

transfer_client::transfer_client(node_store& local,
                                 std::chrono::milliseconds timeout,
                                 uint32_t streams)
  : local_(local),
    timeout_(timeout),
    streams_(std::clamp<uint32_t>(streams, 1, internal::max_stripes)) {
  // nop
}

caf::expected<buffer> transfer_client::pull(const object_id& id,
                                            const store_endpoint& from) {
  std::shared_ptr<flight> f;
  std::function<void(const object_id&)> hook;
  {
    std::unique_lock<std::mutex> guard{mtx_};
    auto i = flights_.find(id);
    if (i != flights_.end()) {
      // 2. Someone is transferring it: wait for that transfer (which ends:
      // each of its receives is bounded by the timeout).
      f = i->second;
      ++f->callers;
      f->cv.wait(guard, [&] { return f->done; });
      return f->result;
    }
    // 1. Already here?
    if (local_.contains(id)) {
      guard.unlock();
      auto got = local_.get(id);
      if (got || !is(got.error(), store_errc::not_found))
        return got;
      guard.lock(); // freed or evicted meanwhile: transfer after all
    }
    // 3. Transfer it ourselves.
    f = std::make_shared<flight>();
    flights_.emplace(id, f);
    ++transfers_;
    hook = hook_;
  }
  if (hook)
    hook(id);
  caf::expected<buffer> result{caf::error{}};
  try {
    result = transfer(id, from);
  } catch (const std::exception& e) { // e.g. bad_alloc: still end the flight
    result = transfer_error(from, std::string{"pulling "} + to_string(id)
                                    + ": " + e.what());
  } catch (...) {
    result = transfer_error(from, "pulling " + to_string(id) + ": failed");
  }
  std::lock_guard<std::mutex> guard{mtx_};
  f->result = result;
  f->done = true;
  flights_.erase(id);
  f->cv.notify_all();
  return result;
}

namespace {

uint64_t stripe_argument(uint32_t index, uint32_t requested) {
  return uint64_t{index} | (uint64_t{requested} << 32);
}

/// The stripes of one pull: the first error, the sockets to shut down
/// when it happens (so that every other stripe's receive ends at once),
/// and the hand-over of the local segment to stripes started before it
/// existed.
class stripe_group {
public:
  /// Registers a stripe's socket; false if the pull failed already.
  bool enter(int fd) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (err_)
      return false;
    fds_.push_back(fd);
    return true;
  }

  /// Unregisters a socket before it is closed.
  void leave(int fd) {
    std::lock_guard<std::mutex> guard{mtx_};
    fds_.erase(std::remove(fds_.begin(), fds_.end(), fd), fds_.end());
  }

  /// Records the first error, shuts every registered socket down and
  /// wakes stripes waiting for the segment.
  void fail(caf::error err) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (err_)
      return;
    err_ = std::move(err);
    for (int fd : fds_)
      ::shutdown(fd, SHUT_RDWR);
    cv_.notify_all();
  }

  caf::error error() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return err_;
  }

  /// Hands the segment's first byte to the stripes.
  void set_segment(char* data) {
    std::lock_guard<std::mutex> guard{mtx_};
    data_ = data;
    cv_.notify_all();
  }

  /// The segment, or null once the pull failed or `timeout` passed.
  char* wait_segment(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait_for(guard, timeout, [&] { return data_ != nullptr || err_; });
    return err_ ? nullptr : data_;
  }

private:
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<int> fds_;   // mtx_
  caf::error err_;         // mtx_
  char* data_ = nullptr;   // mtx_
};

/// Joins a pull's stripe threads on every way out of `transfer`, an
/// exception included: it fails the group first (a no-op after success or
/// an earlier failure), so that no thread waits on.
struct stripe_joiner {
  stripe_group& group;
  std::vector<std::thread> threads;
  ~stripe_joiner() {
    bool running = false;
    for (auto& t : threads)
      running = running || t.joinable();
    if (running && !group.error())
      group.fail(make_error(store_errc::transfer_failed, "pull abandoned"));
    for (auto& t : threads)
      if (t.joinable())
        t.join();
  }
};

// Receives `n` bytes into `p` in chunks of at most `chunk`.
int receive_into(int fd, char* p, uint64_t n, size_t chunk) {
  while (n > 0) {
    auto k = static_cast<size_t>(std::min<uint64_t>(n, chunk));
    if (int rc = recv_all(fd, p, k))
      return rc;
    p += k;
    n -= k;
  }
  return 0;
}

} // namespace

caf::expected<buffer> transfer_client::transfer(const object_id& id,
                                                const store_endpoint& from) {
  // 3. Stripe 0: the size and the stripe count.
  auto c = connect_to(from, timeout_);
  if (!c)
    return std::move(c.error());
  if (auto err = send_request(c->fd, from, wire_op::pull_stripe, id,
                              stripe_argument(0, streams_)))
    return err;
  auto r = read_response(c->fd, from);
  if (!r)
    return std::move(r.error());
  auto size = r->generation;
  auto count = r->stripes;
  auto elem_size = r->elem_size;
  if (count == 0 || count != internal::stripe_count(size, streams_)
      || r->size != internal::stripe_range(size, count, 0).second)
    return transfer_error(from, "bad pull response for " + to_string(id)
                                  + " (stripes " + std::to_string(count)
                                  + ", size " + std::to_string(size) + ")");
  auto receive_failed = [&](uint32_t index, int rc) {
    return transfer_error(from, "receiving " + to_string(id) + " (stripe "
                                  + std::to_string(index) + " of "
                                  + std::to_string(count)
                                  + "): " + describe(rc));
  };
  // 5 (started first). The further stripes connect and ask at once, so
  // the peer pins the value for each of them while this thread makes the
  // local copy; each then waits for the segment and receives its range.
  // `w` outlives the joiner: no thread writes into an aborted segment.
  caf::expected<segment_writer> w{caf::error{}};
  stripe_group group;
  group.enter(c->fd);
  auto run_stripe = [&](uint32_t index) {
    auto sc = connect_to(from, timeout_);
    if (!sc) {
      group.fail(std::move(sc.error()));
      return;
    }
    if (!group.enter(sc->fd))
      return;
    auto finish = [&](caf::error err) {
      if (err)
        group.fail(std::move(err));
      group.leave(sc->fd);
    };
    if (auto err = send_request(sc->fd, from, wire_op::pull_stripe, id,
                                stripe_argument(index, streams_)))
      return finish(std::move(err));
    auto sr = read_response(sc->fd, from);
    if (!sr) {
      if (is(sr.error(), store_errc::not_found))
        return finish(transfer_error(from, to_string(id)
                                             + " was dropped by the peer "
                                               "during the pull"));
      return finish(std::move(sr.error()));
    }
    auto [first, last] = internal::stripe_range(size, count, index);
    if (sr->generation != size || sr->stripes != count
        || sr->size != last - first)
      return finish(transfer_error(from, "stripe " + std::to_string(index)
                                           + " of " + to_string(id)
                                           + " does not match stripe 0"));
    auto data = group.wait_segment(timeout_);
    if (data == nullptr)
      return finish(group.error() ? caf::none
                                  : transfer_error(from, "no local segment "
                                                         "in time"));
    if (int rc = receive_into(sc->fd, data + first, last - first,
                              chunk_size))
      return finish(receive_failed(index, rc));
    finish(caf::none);
  };
  stripe_joiner joiner{group, {}};
  for (uint32_t i = 1; i < count; ++i) {
    try {
      joiner.threads.emplace_back(run_stripe, i);
    } catch (...) { // no thread (or no memory for one) to be had
      group.fail(transfer_error(from, "cannot start a thread for stripe "
                                        + std::to_string(i)));
      break;
    }
  }
  // 4. The local copy.
  w = local_.create(id, size, copy_kind::secondary, elem_size);
  if (!w) {
    group.fail(w.error()); // ends the stripes; the joiner waits for them
    if (is(w.error(), store_errc::already_exists))
      return local_.get(id); // put here meanwhile; drop the connections
    return std::move(w.error());
  }
  auto data = w->data();
  group.set_segment(data);
  if (int rc = receive_into(c->fd, data,
                            internal::stripe_range(size, count, 0).second,
                            chunk_size))
    group.fail(receive_failed(0, rc));
  for (auto& t : joiner.threads)
    t.join();
  group.leave(c->fd);
  if (auto err = group.error())
    return err; // the writer aborts the copy
  return w->seal(); // 6.
}

uint64_t transfer_client::transfers() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return transfers_;
}

size_t transfer_client::pulling(const object_id& id) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = flights_.find(id);
  return i == flights_.end() ? 0 : i->second->callers;
}

void transfer_client::on_transfer_start(
  std::function<void(const object_id&)> hook) {
  std::lock_guard<std::mutex> guard{mtx_};
  hook_ = std::move(hook);
}

caf::expected<std::pair<uint64_t, uint64_t>>
transfer_client::server_stats(const store_endpoint& at,
                              std::chrono::milliseconds timeout) {
  auto c = connect_to(at, timeout);
  if (!c)
    return std::move(c.error());
  if (auto err = send_request(c->fd, at, wire_op::stats, object_id{}))
    return err;
  auto r = read_response(c->fd, at);
  if (!r)
    return std::move(r.error());
  unsigned char body[16];
  if (r->size != sizeof(body))
    return transfer_error(at, "bad stats response");
  if (int rc = recv_all(c->fd, body, sizeof(body)))
    return transfer_error(at, "reading stats: " + describe(rc));
  return std::make_pair(get_u64(body), get_u64(body + 8));
}

// -- node_client --------------------------------------------------------------

struct node_client::impl {
  store_endpoint at;
  mutable std::mutex mtx;
  connection conn; // guarded by mtx
  size_t held = 0; // guarded by mtx

  // One request/response on the connection; the body of a successful
  // response is read into `body`.
  caf::expected<response> call(wire_op op, const object_id& id,
                               uint64_t argument, std::string* body,
                               uint32_t elem_size = 0,
                               copy_kind kind = copy_kind::primary) {
    if (auto err = send_request(conn.fd, at, op, id, argument, elem_size,
                                kind))
      return err;
    auto r = read_response(conn.fd, at);
    if (!r)
      return r;
    if (r->size > 4096)
      return transfer_error(at, "response body too large");
    std::string text(static_cast<size_t>(r->size), '\0');
    if (int rc = recv_all(conn.fd, text.data(), text.size()))
      return transfer_error(at, "reading response: " + describe(rc));
    if (body != nullptr)
      *body = std::move(text);
    return r;
  }
};

namespace {

/// A reader's view of an acquired segment: unmaps, then releases the pin.
struct reader_pin {
  std::weak_ptr<node_client::impl> reader;
  object_id id;
  uint64_t generation = 0;
  buffer mapped;
  ~reader_pin() {
    mapped = buffer{}; // unmap first: the pages may be reused once released
    if (auto r = reader.lock()) {
      std::lock_guard<std::mutex> guard{r->mtx};
      --r->held;
      r->call(wire_op::release, id, generation, nullptr);
    }
  }
};

} // namespace

node_client::node_client(std::shared_ptr<impl> ptr) : impl_(std::move(ptr)) {
  // nop
}

caf::expected<node_client>
node_client::connect(const store_endpoint& at,
                     std::chrono::milliseconds timeout) {
  auto c = connect_to(at, timeout);
  if (!c)
    return std::move(c.error());
  auto ptr = std::make_shared<impl>();
  ptr->at = at;
  ptr->conn.fd = c->fd;
  c->fd = -1;
  return node_client{std::move(ptr)};
}

caf::expected<buffer> node_client::get(const object_id& id) {
  auto& r = *impl_;
  std::string path;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> guard{r.mtx};
    auto res = r.call(wire_op::acquire, id, 0, &path);
    if (!res)
      return std::move(res.error());
    generation = res->generation;
    ++r.held;
  }
  auto pin = std::make_shared<reader_pin>();
  pin->reader = impl_;
  pin->id = id;
  pin->generation = generation;
  auto mapped = map_sealed_segment(path);
  if (!mapped)
    return std::move(mapped.error()); // the pin releases itself
  pin->mapped = *mapped;
  auto data = mapped->data();
  auto size = mapped->size();
  auto elem_size = mapped->elem_size();
  return buffer{data, size, elem_size, std::move(pin)};
}

size_t node_client::held() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->held;
}

struct node_client::writer::state {
  std::shared_ptr<node_client::impl> client;
  object_id id;
  uint64_t size = 0;
  std::unique_ptr<internal::mapping> map;
};

node_client::writer::writer(std::unique_ptr<state> st) : st_(std::move(st)) {
  // nop
}

node_client::writer::writer(writer&&) noexcept = default;

node_client::writer& node_client::writer::operator=(writer&& other) noexcept {
  if (this != &other) {
    abort();
    st_ = std::move(other.st_);
  }
  return *this;
}

node_client::writer::~writer() {
  abort();
}

node_client::writer::writer() = default;

char* node_client::writer::data() const noexcept {
  return st_ ? st_->map->bytes() + internal::header_size : nullptr;
}

uint64_t node_client::writer::size() const noexcept {
  return st_ ? st_->size : 0;
}

void node_client::writer::abort() {
  if (!st_)
    return;
  auto st = std::move(st_);
  st->map.reset();
  std::lock_guard<std::mutex> guard{st->client->mtx};
  st->client->call(wire_op::abort, st->id, 0, nullptr);
}

caf::error node_client::writer::seal() {
  if (!st_)
    return make_error(store_errc::invalid_argument, "writer already done");
  auto st = std::move(st_);
  st->map.reset(); // unmap before the store seals
  std::lock_guard<std::mutex> guard{st->client->mtx};
  auto r = st->client->call(wire_op::seal, st->id, 0, nullptr);
  if (!r)
    return std::move(r.error());
  return caf::none;
}

namespace {

/// A writer's own mapping of a segment it sealed with `seal_as`: unmaps,
/// then releases the connection's pin.
struct writer_pin {
  std::weak_ptr<node_client::impl> client;
  object_id id;
  uint64_t generation = 0;
  std::unique_ptr<internal::mapping> map;
  ~writer_pin() {
    map.reset(); // unmap first: the pages may be reused once released
    if (auto c = client.lock()) {
      std::lock_guard<std::mutex> guard{c->mtx};
      --c->held;
      c->call(wire_op::release, id, generation, nullptr);
    }
  }
};

} // namespace

caf::expected<buffer> node_client::writer::seal_as(const object_id& as) {
  if (!st_)
    return make_error(store_errc::invalid_argument, "writer already done");
  auto& c = *st_->client;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> guard{c.mtx};
    if (auto err = send_request(c.conn.fd, c.at, wire_op::seal_as, st_->id))
      return err;
    unsigned char body[16];
    put_u64(body, as.owner);
    put_u64(body + 8, as.seq);
    if (int rc = send_all(c.conn.fd, body, sizeof(body)))
      return transfer_error(c.at, "sending request: " + describe(rc));
    auto r = read_response(c.conn.fd, c.at);
    if (!r)
      return std::move(r.error());
    if (r->size != 0)
      return transfer_error(c.at, "bad seal_as response");
    generation = r->generation;
    ++c.held;
  }
  auto st = std::move(st_);
  // Immutable from now on, also through this process's pointers.
  ::mprotect(st->map->addr, st->map->length, PROT_READ);
  auto pin = std::make_shared<writer_pin>();
  pin->client = st->client;
  pin->id = as;
  pin->generation = generation;
  auto data = st->map->bytes() + internal::header_size;
  pin->map = std::move(st->map);
  return buffer{data, st->size, 0, std::move(pin)};
}

caf::error node_client::free(const object_id& id) {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  auto r = impl_->call(wire_op::free, id, 0, nullptr);
  if (!r)
    return std::move(r.error());
  return caf::none;
}

caf::expected<node_client::writer>
node_client::create(const object_id& id, uint64_t size, copy_kind kind,
                    uint32_t elem_size) {
  auto& c = *impl_;
  std::string path;
  {
    std::lock_guard<std::mutex> guard{c.mtx};
    auto r = c.call(wire_op::create, id, size, &path, elem_size, kind);
    if (!r)
      return std::move(r.error());
  }
  auto st = std::make_unique<writer::state>();
  st->client = impl_;
  st->id = id;
  st->size = size;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    writer aborted{std::move(st)};
    return make_error(store_errc::io_error,
                      "cannot open " + path + ": " + std::strerror(err));
  }
  auto length = internal::header_size + size;
  // Populated at once: the store allocated the pages (fallocate, or a kept
  // segment), and one populate is far cheaper than a fault per page while
  // the writer fills them.
  auto addr = ::mmap(nullptr, length, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_POPULATE, fd, 0);
  int err = errno;
  ::close(fd);
  if (addr == MAP_FAILED) {
    writer aborted{std::move(st)};
    return make_error(store_errc::io_error,
                      "cannot map " + path + ": " + std::strerror(err));
  }
  st->map = std::make_unique<internal::mapping>(addr, length);
  return writer{std::move(st)};
}

} // namespace dref
