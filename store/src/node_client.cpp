// The transfer protocol (docs/formats.md): a same-node process reading and
// writing segments of the node store through its transfer server.

#include "dref/store/node_client.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dref/store/error.hpp"
#include "dref/store/node_store.hpp"

#include "format.hpp"
#include "os.hpp"
#include "transfer_wire.hpp"

namespace dref {

using internal::connect_to;
using internal::connection;
using internal::describe;
using internal::put_u64;
using internal::read_response;
using internal::recv_all;
using internal::response;
using internal::send_all;
using internal::send_request;
using internal::transfer_error;
using internal::wire_op;

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
