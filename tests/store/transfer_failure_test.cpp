// Unit tests of a pull whose peer fails mid-value, against a scripted peer
// on a real loopback socket in this process: it answers a pull with a
// valid header and part of the value, then closes or goes silent.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dref/store/error.hpp"
#include "dref/store/node_store.hpp"
#include "dref/store/transfer_client.hpp"

#include "store_test_util.hpp"

using namespace dref;
using namespace dref::test;

namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

// A pull_stripe response header (transfer protocol version 3).
void send_stripe_header(int fd, uint64_t body, uint64_t value_size,
                        uint32_t stripes) {
  unsigned char hdr[32] = {};
  uint32_t magic = 0x31545244;
  uint16_t op = 10;
  std::memcpy(hdr, &magic, 4);
  std::memcpy(hdr + 6, &op, 2);
  std::memcpy(hdr + 8, &body, 8);
  std::memcpy(hdr + 20, &value_size, 8);
  std::memcpy(hdr + 28, &stripes, 4);
  ::send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
}

bool read_request(int fd, unsigned char (&req)[40]) {
  size_t got = 0;
  while (got < sizeof(req)) {
    auto k = ::recv(fd, req + got, sizeof(req) - got, 0);
    if (k <= 0)
      return false;
    got += static_cast<size_t>(k);
  }
  return true;
}

/// Checks that a pull failed with transfer_failed whose text names `what`,
/// and left nothing in the local store (no object, no .tmp file: only the
/// store's lock file).
void check_failed_pull(const caf::expected<buffer>& got,
                       store_fixture& local, const std::string& what) {
  REQUIRE_FALSE(got);
  CHECK(store_code(got.error()) == code(store_errc::transfer_failed));
  CHECK_MESSAGE(context_of(got.error()).find(what) != std::string::npos,
                context_of(got.error()));
  CHECK(local.store->stats().objects == 0);
  CHECK(local.store->stats().memory_bytes == 0);
  CHECK(local.shm_files().size() == 1);
}

/// Accepts one connection, reads one request, answers with a header that
/// announces a value of `announced` bytes in one stripe (a client with one
/// stream), sends `sent` of them, then closes (or, if `hang`, waits until
/// released).
struct scripted_peer {
  int lfd = -1;
  uint16_t port = 0;
  std::thread thread;
  std::atomic<bool> release{false};

  scripted_peer(uint64_t announced, uint64_t sent, bool hang) {
    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(lfd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(lfd, 1) == 0);
    REQUIRE(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len)
            == 0);
    port = ntohs(addr.sin_port);
    thread = std::thread{[this, announced, sent, hang] {
      int fd = ::accept(lfd, nullptr, nullptr);
      if (fd < 0)
        return;
      unsigned char req[40];
      read_request(fd, req);
      send_stripe_header(fd, announced, announced, 1);
      std::vector<char> part(sent, 'p');
      ::send(fd, part.data(), part.size(), MSG_NOSIGNAL);
      while (hang && !release)
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
      ::close(fd);
    }};
  }

  ~scripted_peer() {
    release = true;
    ::shutdown(lfd, SHUT_RDWR);
    thread.join();
    ::close(lfd);
  }
};

} // namespace

TEST_CASE("a peer that closes mid-value makes the pull fail with "
          "transfer_failed and leaves no partial copy") {
  store_fixture local{64 * mib};
  scripted_peer peer{10 * mib, mib, false};
  transfer_client client{*local.store, std::chrono::seconds{30}, 1};
  object_id id{0x7F, 1};
  auto got = client.pull(id, store_endpoint{"127.0.0.1", peer.port});
  check_failed_pull(got, local, "closed");
  CHECK_FALSE(local.store->contains(id));
}

TEST_CASE("a peer that stops sending mid-value makes the pull fail with "
          "transfer_failed once the timeout passes") {
  store_fixture local{64 * mib};
  scripted_peer peer{10 * mib, mib, true};
  transfer_client client{*local.store, std::chrono::milliseconds{300}, 1};
  object_id id{0x7F, 2};
  auto got = client.pull(id, store_endpoint{"127.0.0.1", peer.port});
  check_failed_pull(got, local, "timed out");
}

/// What the scripted striped peer does with stripe 1.
struct stripe1_script {
  uint64_t value_size = 8 * mib; // announced in its header
  uint64_t sent = mib;           // bytes sent before closing or hanging
  bool hangs = false;            // then waits until released
  bool not_found = false;        // answers with a not_found error instead
};

/// Serves a striped pull of an 8 MiB value in two stripes of 4 MiB:
/// stripe 0 in full (or, if `stripe0_hangs`, 1 MiB and then silence until
/// released); stripe 1 as `script` says.
struct striped_peer {
  static constexpr uint64_t size = 8 * mib;
  static constexpr uint64_t half = 4 * mib;
  int lfd = -1;
  uint16_t port = 0;
  std::vector<std::thread> threads;
  std::thread acceptor;
  std::atomic<bool> release{false};
  std::atomic<int> requests{0};

  explicit striped_peer(stripe1_script script, bool stripe0_hangs = false) {
    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(lfd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::listen(lfd, 4) == 0);
    REQUIRE(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len)
            == 0);
    port = ntohs(addr.sin_port);
    acceptor = std::thread{[this, script, stripe0_hangs] {
      for (int i = 0; i < 2; ++i) {
        int fd = ::accept(lfd, nullptr, nullptr);
        if (fd < 0)
          return;
        threads.emplace_back([this, fd, script, stripe0_hangs] {
          serve(fd, script, stripe0_hangs);
        });
      }
    }};
  }

  void hang() {
    while (!release)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }

  void serve(int fd, const stripe1_script& script, bool stripe0_hangs) {
    unsigned char req[40];
    if (read_request(fd, req)) {
      ++requests;
      uint32_t index = 0;
      std::memcpy(&index, req + 24, 4);
      std::vector<char> bytes(half, 's');
      if (index == 0) {
        send_stripe_header(fd, half, size, 2);
        ::send(fd, bytes.data(), stripe0_hangs ? mib : half, MSG_NOSIGNAL);
        if (stripe0_hangs)
          hang();
      } else if (script.not_found) {
        unsigned char hdr[32] = {};
        uint32_t magic = 0x31545244;
        uint16_t status = 2; // store_errc::not_found
        uint16_t op = 10;
        std::string text = "no such object";
        uint64_t n = text.size();
        std::memcpy(hdr, &magic, 4);
        std::memcpy(hdr + 4, &status, 2);
        std::memcpy(hdr + 6, &op, 2);
        std::memcpy(hdr + 8, &n, 8);
        ::send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL);
        ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
      } else {
        send_stripe_header(fd, size - half, script.value_size, 2);
        ::send(fd, bytes.data(), script.sent, MSG_NOSIGNAL);
        if (script.hangs)
          hang();
      }
    }
    ::close(fd);
  }

  ~striped_peer() {
    release = true;
    ::shutdown(lfd, SHUT_RDWR);
    acceptor.join();
    for (auto& t : threads)
      t.join();
    ::close(lfd);
  }
};

TEST_CASE("a peer that closes one stripe mid-value fails the whole striped "
          "pull with transfer_failed and leaves no partial copy") {
  store_fixture local{64 * mib};
  striped_peer peer{stripe1_script{}};
  transfer_client client{*local.store, std::chrono::seconds{30}, 2};
  object_id id{0x7F, 4};
  auto got = client.pull(id, store_endpoint{"127.0.0.1", peer.port});
  CHECK(peer.requests == 2);
  check_failed_pull(got, local, "stripe 1 of 2");
  CHECK(context_of(got.error()).find("closed") != std::string::npos);
  CHECK_FALSE(local.store->contains(id));
}

TEST_CASE("a stripe that goes silent fails the striped pull once the "
          "timeout passes, though the other stripe arrived") {
  store_fixture local{64 * mib};
  striped_peer peer{stripe1_script{8 * mib, mib, true, false}};
  transfer_client client{*local.store, std::chrono::milliseconds{300}, 2};
  object_id id{0x7F, 5};
  auto got = client.pull(id, store_endpoint{"127.0.0.1", peer.port});
  check_failed_pull(got, local, "timed out");
}

TEST_CASE("a stripe announcing another value size than stripe 0 fails the "
          "pull with transfer_failed") {
  store_fixture local{64 * mib};
  striped_peer peer{stripe1_script{8 * mib + 1, 4 * mib, false, false}};
  transfer_client client{*local.store, std::chrono::seconds{30}, 2};
  object_id id{0x7F, 6};
  auto got = client.pull(id, store_endpoint{"127.0.0.1", peer.port});
  check_failed_pull(got, local, "does not match");
}

TEST_CASE("when one stripe fails the others stop at once instead of "
          "waiting out the timeout") {
  // Stripe 0 sends 1 MiB and goes silent; stripe 1 closes mid-stripe. The
  // pull must end with stripe 1's error long before the 60 s receive
  // timeout (the failure shuts stripe 0's socket down).
  store_fixture local{64 * mib};
  striped_peer peer{stripe1_script{}, true};
  transfer_client client{*local.store, std::chrono::seconds{60}, 2};
  object_id id{0x7F, 7};
  auto t0 = std::chrono::steady_clock::now();
  auto got = client.pull(id, store_endpoint{"127.0.0.1", peer.port});
  auto waited = std::chrono::steady_clock::now() - t0;
  check_failed_pull(got, local, "stripe 1 of 2");
  CHECK(waited < std::chrono::seconds{30});
}

TEST_CASE("a value the peer drops between stripes fails the pull with "
          "transfer_failed, not not_found") {
  // The peer answered stripe 0 (so it held the value), then answers
  // stripe 1 with not_found (evicted or freed meanwhile): the pull did
  // not find "no such object", it was cut off.
  store_fixture local{64 * mib};
  stripe1_script script;
  script.not_found = true;
  striped_peer peer{script};
  transfer_client client{*local.store, std::chrono::seconds{30}, 2};
  object_id id{0x7F, 8};
  auto got = client.pull(id, store_endpoint{"127.0.0.1", peer.port});
  check_failed_pull(got, local, "dropped");
}

TEST_CASE("a peer that is not a dref store is refused with "
          "transfer_failed") {
  store_fixture local{64 * mib};
  // Announces a value but with a wrong magic: use the scripted peer's
  // socket directly with a garbage header.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(lfd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
  REQUIRE(::listen(lfd, 1) == 0);
  REQUIRE(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  std::thread peer{[lfd] {
    int fd = ::accept(lfd, nullptr, nullptr);
    if (fd < 0)
      return;
    char junk[64];
    std::memset(junk, 'j', sizeof(junk));
    ::send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
    ::close(fd);
  }};
  transfer_client client{*local.store, std::chrono::seconds{30}};
  auto got = client.pull(object_id{0x7F, 3},
                         store_endpoint{"127.0.0.1", ntohs(addr.sin_port)});
  peer.join();
  ::close(lfd);
  REQUIRE_FALSE(got);
  CHECK(store_code(got.error()) == code(store_errc::transfer_failed));
  CHECK(local.store->stats().objects == 0);
}
