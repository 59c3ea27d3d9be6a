// `dref bench` figures of the node store (issue 4), each next to the
// physical baseline it is judged against, measured in the same run:
//   memcpy_large_us          one memcpy of 100 MiB (hot buffers)
//   tcp_stream_gbps          raw loopback TCP stream between two processes
//                            (1 GiB from/into 4 MiB buffers, hot in cache)
//   tcp_stream_100mib_buffers_gbps  the same for 100 MiB sent from a 100 MiB
//                            buffer into a 100 MiB buffer (memory to memory)
//   put_large_gbps           node_store::put of 100 MiB (create, copy, seal)
//                            into a reused segment; _cold: fresh pages
//   put_large_same_node_gbps a second process writes 100 MiB in place
//                            (node_client create, fill, seal)
//   get_large_same_node_us   a second process gets the 100 MiB value:
//                            acquire over its open connection to the
//                            store + open + mmap (no copy)
//   get_large_same_node_read_us  its first full read through the mapping
//   transfer_gbps            pull of 100 MiB between stores in two processes
//                            into a reused segment; _cold: fresh pages
//   caf_chunked_gbps         the same 100 MiB through CAF 0.17 messages in
//                            8 MiB chunks (why transfers use plain TCP)
// Runs before the runtime starts, so the helper processes are forked from
// a single-threaded process.

#include "bench.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/io/middleman.hpp"
#include "caf/scoped_actor.hpp"

#include "dref/store/error.hpp"
#include "dref/store/node_store.hpp"
#include "dref/store/tools/helper_process.hpp"
#include "dref/store/transfer_client.hpp"
#include "dref/store/transfer_server.hpp"

namespace dref::cli {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr uint64_t mib = uint64_t{1} << 20;
constexpr uint64_t large = 100 * mib;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

void fail(const std::string& what) {
  std::cerr << "store bench: " << what << std::endl;
}

std::string render(const caf::error& err) {
  return describe(err);
}

double memcpy_us(size_t repeat) {
  std::vector<char> src(large);
  std::vector<char> dst(large);
  tools::fill_pattern(1, src.data(), src.size());
  std::memset(dst.data(), 0, dst.size());
  double best = 1e300;
  for (size_t i = 0; i < repeat; ++i) {
    auto t0 = clock_type::now();
    std::memcpy(dst.data(), src.data(), large);
    best = std::min(best, seconds_since(t0) * 1e6);
    src[i] = dst[large - 1 - i]; // keep the copy observable
  }
  return best;
}

// A socket listening on an ephemeral port of 127.0.0.1 (its port in
// `port`), or -1 (reported).
int listen_loopback(int backlog, uint16_t& port) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), len) != 0
      || ::listen(lfd, backlog) != 0
      || ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    fail("tcp listen failed");
    if (lfd >= 0)
      ::close(lfd);
    return -1;
  }
  port = ntohs(addr.sin_port);
  return lfd;
}

// The helper sends `bytes` over loopback TCP from a buffer of `buffer_size`
// bytes; this process receives them into a buffer of that size (8 MiB
// receives, cycling through it). Small buffers stay in cache: the raw
// network figure; 100 MiB buffers move a value from memory to memory.
double tcp_stream_gbps(tools::helper_process& helper, uint64_t bytes,
                       size_t buffer_size) {
  uint16_t port = 0;
  int lfd = listen_loopback(1, port);
  if (lfd < 0)
    return 0;
  if (helper.send("tcp_send " + std::to_string(port) + " "
                  + std::to_string(bytes) + " "
                  + std::to_string(buffer_size))) {
    ::close(lfd);
    return 0;
  }
  int fd = ::accept(lfd, nullptr, nullptr);
  ::close(lfd);
  if (fd < 0)
    return 0;
  std::vector<char> buf(buffer_size, 0);
  uint64_t got = 0;
  auto t0 = clock_type::now();
  while (got < bytes) {
    auto at = static_cast<size_t>(got % buf.size());
    auto n = std::min<size_t>(buf.size() - at, 8 * mib);
    auto k = ::recv(fd, buf.data() + at, n, 0);
    if (k <= 0)
      break;
    got += static_cast<uint64_t>(k);
  }
  auto s = seconds_since(t0);
  ::close(fd);
  if (!helper.reply() || got != bytes)
    return 0;
  return static_cast<double>(bytes) / s / 1e9;
}

// The helper sends a touched buffer of `bytes` over `streams` loopback
// connections at once (equal ranges, one thread each); this process
// receives each range into its place in a touched buffer of `bytes`, one
// thread per stream. The physical yardstick of a striped pull.
double tcp_streams_gbps(tools::helper_process& helper, uint64_t bytes,
                        size_t streams) {
  uint16_t port = 0;
  int lfd = listen_loopback(static_cast<int>(streams), port);
  if (lfd < 0)
    return 0;
  std::vector<char> buf(bytes, 0);
  if (helper.send("tcp_send_streams " + std::to_string(port)
                  + " " + std::to_string(bytes) + " "
                  + std::to_string(streams))) {
    ::close(lfd);
    return 0;
  }
  std::vector<int> fds;
  for (size_t i = 0; i < streams; ++i) {
    int fd = ::accept(lfd, nullptr, nullptr);
    if (fd < 0)
      break;
    fds.push_back(fd);
  }
  ::close(lfd);
  // The helper connects in order, so the i-th accepted connection sends
  // the i-th range.
  std::vector<uint64_t> got(fds.size(), 0);
  auto per = bytes / streams;
  auto t0 = clock_type::now();
  std::vector<std::thread> receivers;
  for (size_t i = 0; i < fds.size(); ++i)
    receivers.emplace_back([&, i] {
      auto p = buf.data() + i * per;
      auto n = i + 1 == streams ? bytes - i * per : per;
      while (got[i] < n) {
        auto k = ::recv(fds[i], p + got[i],
                        std::min<uint64_t>(n - got[i], 8 * mib), 0);
        if (k <= 0)
          break;
        got[i] += static_cast<uint64_t>(k);
      }
    });
  for (auto& t : receivers)
    t.join();
  auto s = seconds_since(t0);
  uint64_t total = 0;
  for (size_t i = 0; i < fds.size(); ++i) {
    total += got[i];
    ::close(fds[i]);
  }
  if (!helper.reply() || total != bytes)
    return 0;
  return static_cast<double>(bytes) / s / 1e9;
}

// CAF 0.17 moving the same 100 MiB between two processes the way a CAF
// store server would: sequential requests for 8 MiB chunks, each answered
// with a std::vector<char>, copied into a destination buffer.
double caf_chunked_gbps(tools::helper_process& helper, size_t repeat) {
  auto reply = helper.call("caf_serve " + std::to_string(large) + " 4");
  if (!reply) {
    fail("the helper cannot publish a CAF actor");
    return 0;
  }
  auto port = static_cast<uint16_t>(std::stoul(tools::words(*reply).at(0)));
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto server = sys.middleman().remote_actor("127.0.0.1", port);
  if (!server) {
    fail("cannot reach the CAF actor: " + sys.render(server.error()));
    return 0;
  }
  std::vector<char> dst(large);
  double best = 0;
  caf::scoped_actor self{sys};
  for (size_t i = 0; i < repeat; ++i) {
    bool ok = true;
    auto t0 = clock_type::now();
    for (uint64_t off = 0; off < large && ok; off += transfer_client::chunk_size) {
      auto n = std::min<uint64_t>(transfer_client::chunk_size, large - off);
      self->request(*server, std::chrono::seconds{30}, off, n)
        .receive(
          [&](std::vector<char>& chunk) {
            std::memcpy(dst.data() + off, chunk.data(), chunk.size());
          },
          [&](caf::error&) { ok = false; });
    }
    if (ok)
      best = std::max(best, static_cast<double>(large) / seconds_since(t0)
                              / 1e9);
  }
  return best;
}

} // namespace

void run_store_bench(const bench_options& opts, const emit_fn& emit) {
  auto repeat = std::max<size_t>(opts.repeat, 1);
  auto memcpy_large = memcpy_us(repeat);
  auto helper = tools::helper_process::start();
  if (!helper) {
    fail("cannot start a helper process");
    return;
  }
  auto& h = **helper;
  double tcp = 0;
  double tcp_large = 0;
  double tcp_two = 0;
  for (size_t i = 0; i < repeat; ++i) {
    tcp = std::max(tcp, tcp_stream_gbps(h, 1024 * mib, 4 * mib));
    tcp_large = std::max(tcp_large, tcp_stream_gbps(h, large, large));
    tcp_two = std::max(tcp_two, tcp_streams_gbps(h, large, 2));
  }
  // A store in this process: put, and serve the value to the helper.
  store_config cfg;
  cfg.name = "bench-" + std::to_string(::getpid());
  cfg.capacity = 1024 * mib;
  auto opened = node_store::open(cfg);
  if (!opened) {
    fail("cannot open a store: " + render(opened.error()));
    return;
  }
  auto& store = **opened;
  std::vector<char> value(large);
  tools::fill_pattern(2, value.data(), value.size());
  // The first put allocates fresh tmpfs pages (cold); the next ones reuse
  // the segment the previous free kept (warm).
  double put_gbps = 0;
  double put_cold_gbps = 0;
  object_id id{0xBE7C, 1};
  for (size_t i = 0; i <= repeat; ++i) {
    if (i > 0)
      store.free(id);
    auto t0 = clock_type::now();
    auto put = store.put(id, value.data(), value.size());
    auto s = seconds_since(t0);
    if (!put) {
      fail("put: " + render(put.error()));
      return;
    }
    auto gbps = static_cast<double>(large) / s / 1e9;
    if (i == 0)
      put_cold_gbps = gbps;
    else
      put_gbps = std::max(put_gbps, gbps);
  }
  auto server = transfer_server::start(store);
  if (!server) {
    fail("cannot start a transfer server: " + render(server.error()));
    return;
  }
  double get_us = 1e300;
  double read_us = 1e300;
  for (size_t i = 0; i < repeat; ++i) {
    auto reply = h.call("map " + std::to_string(id.owner) + " "
                        + std::to_string(id.seq) + " "
                        + std::to_string((*server)->port()));
    if (!reply) {
      fail("map in the helper failed");
      return;
    }
    auto w = tools::words(*reply);
    if (w.size() != 10
        || std::stoull(w[6]) != tools::checksum(value.data(), value.size())) {
      fail("the helper read other bytes");
      return;
    }
    get_us = std::min(get_us, std::stod(w[7]));
    read_us = std::min(read_us, std::stod(w[8]));
    h.call("drop " + w[0]);
  }
  // The helper writes 100 MiB in place into this store (node_client
  // create, fill, seal); the store reuses the segment freed before.
  double put_same_node = 0;
  {
    object_id wid{0xBE7C, 3};
    for (size_t i = 0; i < repeat; ++i) {
      store.free(wid);
      auto reply = h.call("write " + std::to_string(wid.owner) + " "
                          + std::to_string(wid.seq) + " "
                          + std::to_string(large) + " 5 "
                          + std::to_string((*server)->port()));
      if (!reply) {
        fail("write in the helper failed");
        return;
      }
      auto us = std::stod(tools::words(*reply).at(0));
      put_same_node = std::max(put_same_node,
                               static_cast<double>(large) / us / 1e3);
    }
    store.free(wid);
  }
  // Transfer: the helper's store holds a value, this store pulls it.
  auto remote_name = "bench-remote-" + std::to_string(::getpid());
  auto reply = h.call("open " + remote_name + " "
                      + std::to_string(1024 * mib) + " -");
  if (!reply) {
    fail("the helper cannot open a store");
    return;
  }
  store_endpoint remote{"127.0.0.1",
                        static_cast<uint16_t>(std::stoul(
                          tools::words(*reply).at(0)))};
  object_id rid{0xBE7C, 2};
  if (!h.call("put " + std::to_string(rid.owner) + " "
              + std::to_string(rid.seq) + " " + std::to_string(large)
              + " 3")) {
    fail("the helper cannot put");
    return;
  }
  double transfer = 0;
  double transfer_cold = 0;
  uint32_t streams = 0;
  {
    transfer_client client{store};
    streams = client.streams();
    for (size_t i = 0; i <= repeat; ++i) {
      if (i > 0)
        store.free(rid);
      auto t0 = clock_type::now();
      auto got = client.pull(rid, remote);
      auto s = seconds_since(t0);
      if (!got || got->size() != large) {
        fail("pull: " + (got ? std::string{"wrong size"}
                             : render(got.error())));
        return;
      }
      auto gbps = static_cast<double>(large) / s / 1e9;
      if (i == 0)
        transfer_cold = gbps;
      else
        transfer = std::max(transfer, gbps);
    }
  }
  server->reset();
  auto caf_gbps = caf_chunked_gbps(h, repeat);
  emit("memcpy_large_us", memcpy_large, "us");
  emit("tcp_stream_gbps", tcp, "GB/s");
  emit("tcp_stream_100mib_buffers_gbps", tcp_large, "GB/s");
  emit("tcp_2_streams_100mib_gbps", tcp_two, "GB/s");
  emit("put_large_gbps", put_gbps, "GB/s");
  emit("put_large_cold_gbps", put_cold_gbps, "GB/s");
  emit("put_large_same_node_gbps", put_same_node, "GB/s");
  emit("get_large_same_node_us", get_us, "us");
  emit("get_large_same_node_read_us", read_us, "us");
  emit("memcpy_large_vs_get_large_same_node", memcpy_large / get_us, "ratio");
  emit("transfer_gbps", transfer, "GB/s");
  emit("transfer_cold_gbps", transfer_cold, "GB/s");
  emit("transfer_streams", streams, "streams");
  emit("transfer_vs_tcp_stream", transfer / tcp, "ratio");
  emit("transfer_vs_tcp_2_streams_100mib", transfer / tcp_two, "ratio");
  emit("caf_chunked_gbps", caf_gbps, "GB/s");
}

} // namespace dref::cli
