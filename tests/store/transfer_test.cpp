// Distributed tests of transfers between two node stores in two processes
// on 127.0.0.1: pulls byte for byte, deduplicated concurrent pulls, and
// failures (missing object, dead peer).

#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <sys/wait.h>

#include "dref/store/error.hpp"
#include "dref/store/node_store.hpp"
#include "dref/store/tools/helper_process.hpp"
#include "dref/store/transfer_client.hpp"

#include "store_test_util.hpp"

using namespace dref;
using namespace dref::test;

namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

bool reaped(int pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) < 0 && errno == ECHILD;
}

/// A helper process running store `name` with its transfer server.
struct remote_store {
  std::unique_ptr<tools::helper_process> proc;
  std::string name;
  temp_dir spill;
  store_endpoint at;

  explicit remote_store(uint64_t capacity) {
    name = unique_store_name("remote");
    auto h = tools::helper_process::start();
    REQUIRE(h);
    proc = std::move(*h);
    auto reply = proc->call("open " + name + " " + std::to_string(capacity)
                            + " " + spill.path());
    REQUIRE(reply);
    at.port = static_cast<uint16_t>(std::stoul(tools::words(*reply).at(0)));
  }

  void put(const object_id& id, size_t n, uint64_t seed) {
    REQUIRE(proc->call("put " + std::to_string(id.owner) + " "
                       + std::to_string(id.seq) + " " + std::to_string(n)
                       + " " + std::to_string(seed)));
  }

  // pulls served, bytes served
  std::pair<uint64_t, uint64_t> served() {
    auto reply = proc->call("stats");
    REQUIRE(reply);
    auto w = tools::words(*reply);
    return {std::stoull(w.at(0)), std::stoull(w.at(1))};
  }

  // streams that sent a value or a stripe of one
  uint64_t streams() {
    auto reply = proc->call("stats");
    REQUIRE(reply);
    return std::stoull(tools::words(*reply).at(3));
  }

  // Ends the process and checks it left nothing behind.
  ~remote_store() {
    if (proc) {
      auto pid = proc->pid();
      bool killed = proc->reaped();
      auto rc = proc->close_and_wait();
      if (!killed)
        CHECK(rc == 0); // exited normally (no crash, no sanitizer report)
      proc.reset();
      CHECK(reaped(pid));
    }
    CHECK(files_with_prefix("/dev/shm", files_of_store(name)).empty());
    CHECK(spill.entries().empty());
  }
};

} // namespace

TEST_CASE("a value is pulled from a store in another process byte for "
          "byte, into a local secondary copy") {
  // Scenario: a helper process runs store "remote" and puts 40 MiB + 3
  // bytes; this process runs store "local" and pulls the value through
  // the transfer protocol. A second pull is served locally.
  remote_store remote{256 * mib};
  store_fixture local{256 * mib};
  object_id id{0x7A, 1};
  size_t n = 40 * mib + 3;
  remote.put(id, n, 11);
  transfer_client client{*local.store};
  auto got = client.pull(id, remote.at);
  REQUIRE(got);
  REQUIRE(got->size() == n);
  auto want = pattern(11, n);
  CHECK(std::memcmp(got->data(), want.data(), n) == 0);
  CHECK(local.store->contains(id));
  CHECK(client.transfers() == 1);
  CHECK(remote.served() == std::make_pair(uint64_t{1}, uint64_t{n}));
  // Pulled again: already here, no transfer.
  auto again = client.pull(id, remote.at);
  REQUIRE(again);
  CHECK(again->data() == got->data());
  CHECK(client.transfers() == 1);
  CHECK(remote.served().first == 1);
  // A local copy made by a pull is secondary: evicted, never spilled.
  got = buffer{};
  again = buffer{};
  auto big = pattern(12, 220 * mib);
  REQUIRE(local.store->put(object_id{0x7A, 2}, big.data(), big.size()));
  CHECK_FALSE(local.store->contains(id));
  CHECK(local.store->stats().evictions == 1);
  CHECK(local.store->stats().spill_writes == 0);
}

TEST_CASE("a large value is pulled in stripes over several connections at "
          "once, byte for byte, and counted as one pull") {
  // Scenario: the helper's store holds 40 MiB + 5 bytes (the last stripe
  // is not a page multiple). A client allowed three streams pulls it: the
  // serving store sends three stripes on three connections and counts one
  // pull of n bytes; a client allowed one stream uses one connection.
  remote_store remote{256 * mib};
  store_fixture local{256 * mib};
  object_id a{0x7A, 3};
  object_id b{0x7A, 4};
  size_t n = 40 * mib + 5;
  remote.put(a, n, 13);
  remote.put(b, n, 14);
  transfer_client three{*local.store, std::chrono::seconds{30}, 3};
  auto got = three.pull(a, remote.at);
  REQUIRE(got);
  REQUIRE(got->size() == n);
  auto want = pattern(13, n);
  CHECK(std::memcmp(got->data(), want.data(), n) == 0);
  CHECK(remote.served() == std::make_pair(uint64_t{1}, uint64_t{n}));
  CHECK(remote.streams() == 3);
  transfer_client one{*local.store, std::chrono::seconds{30}, 1};
  auto other = one.pull(b, remote.at);
  REQUIRE(other);
  want = pattern(14, n);
  CHECK(std::memcmp(other->data(), want.data(), n) == 0);
  CHECK(remote.served() == std::make_pair(uint64_t{2}, uint64_t{2 * n}));
  CHECK(remote.streams() == 4);
}

TEST_CASE("a value smaller than two stripes is pulled over one connection "
          "however many streams are allowed") {
  remote_store remote{64 * mib};
  store_fixture local{64 * mib};
  object_id id{0x7A, 5};
  size_t n = 3 * mib; // less than 2 x 2 MiB
  remote.put(id, n, 15);
  transfer_client client{*local.store, std::chrono::seconds{30}, 4};
  auto got = client.pull(id, remote.at);
  REQUIRE(got);
  auto want = pattern(15, n);
  CHECK(std::memcmp(got->data(), want.data(), n) == 0);
  CHECK(remote.streams() == 1);
}

TEST_CASE("concurrent pulls of one object on one node share one transfer") {
  // Scenario: 8 threads of this process pull the same 32 MiB object from
  // a store in a helper process. The transferring thread waits (test
  // hook) until all 8 are inside `pull`, so the overlap is certain. Then
  // exactly one transfer ran (counted here and at the serving store), and
  // every thread got the same bytes, from the same local segment.
  remote_store remote{256 * mib};
  store_fixture local{256 * mib};
  object_id id{0x7B, 1};
  size_t n = 32 * mib;
  remote.put(id, n, 21);
  transfer_client client{*local.store};
  constexpr size_t threads = 8;
  bool all_in = false;
  client.on_transfer_start([&](const object_id& oid) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
    while (client.pulling(oid) < threads
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
    all_in = client.pulling(oid) == threads;
  });
  std::vector<caf::expected<buffer>> results(threads, caf::error{});
  std::vector<std::thread> ts;
  for (size_t i = 0; i < threads; ++i)
    ts.emplace_back([&, i] { results[i] = client.pull(id, remote.at); });
  for (auto& t : ts)
    t.join();
  CHECK(all_in);
  CHECK(client.transfers() == 1);
  CHECK(remote.served() == std::make_pair(uint64_t{1}, uint64_t{n}));
  auto want = pattern(21, n);
  for (auto& r : results) {
    REQUIRE(r);
    CHECK(r->size() == n);
    CHECK(r->data() == results[0]->data());
  }
  CHECK(std::memcmp(results[0]->data(), want.data(), n) == 0);
  CHECK(client.pulling(id) == 0);
}

TEST_CASE("a pull of an object the peer does not hold fails with not_found "
          "and leaves nothing locally") {
  remote_store remote{64 * mib};
  store_fixture local{64 * mib};
  transfer_client client{*local.store};
  auto got = client.pull(object_id{0x7C, 9}, remote.at);
  REQUIRE_FALSE(got);
  CHECK(store_code(got.error()) == code(store_errc::not_found));
  CHECK(local.store->stats().objects == 0);
}

TEST_CASE("a pull of a value the peer has spilled restores it there first") {
  remote_store remote{8 * mib};
  store_fixture local{64 * mib};
  object_id a{0x7D, 1};
  object_id b{0x7D, 2};
  remote.put(a, 5 * mib, 31);
  remote.put(b, 5 * mib, 32); // spills a at the remote
  transfer_client client{*local.store};
  auto got = client.pull(a, remote.at);
  REQUIRE(got);
  auto want = pattern(31, 5 * mib);
  CHECK(std::memcmp(got->data(), want.data(), want.size()) == 0);
}

TEST_CASE("a pull from a peer that died fails with transfer_failed and "
          "leaves nothing locally") {
  remote_store remote{64 * mib};
  store_fixture local{64 * mib};
  object_id id{0x7E, 1};
  remote.put(id, mib, 41);
  auto pid = remote.proc->pid();
  remote.proc->kill_and_reap();
  CHECK(reaped(pid));
  // The killed store could not clean up; the next store to open does.
  remove_dead_store_files("/dev/shm", remote.spill.path());
  transfer_client client{*local.store, std::chrono::seconds{5}};
  auto got = client.pull(id, remote.at);
  REQUIRE_FALSE(got);
  CHECK(store_code(got.error()) == code(store_errc::transfer_failed));
  CHECK(local.store->stats().objects == 0);
  CHECK(local.store->stats().memory_bytes == 0);
}
