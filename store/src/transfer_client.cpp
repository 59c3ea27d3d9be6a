// The transfer protocol (docs/formats.md): the client, striped pulls into
// the local node store.

#include "dref/store/transfer_client.hpp"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include "dref/store/error.hpp"

#include "format.hpp"
#include "transfer_wire.hpp"

namespace dref {

using internal::connect_to;
using internal::describe;
using internal::get_u64;
using internal::read_response;
using internal::recv_all;
using internal::send_request;
using internal::transfer_error;
using internal::wire_op;

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

} // namespace dref
