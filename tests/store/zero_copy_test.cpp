// Distributed test: a reader in another process on the node maps the
// store's segment instead of copying the value.

#include <doctest/doctest.h>

#include <cstdio>
#include <chrono>
#include <cstring>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dref/store/node_store.hpp"
#include "dref/store/tools/helper_process.hpp"
#include "dref/store/transfer_server.hpp"

#include "store_test_util.hpp"

using namespace dref;
using namespace dref::test;

namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

bool reaped(int pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) < 0 && errno == ECHILD;
}

} // namespace

TEST_CASE("a reader in another process maps the segment the store wrote: "
          "same inode, and it sees later changes to the file, so it made "
          "no copy") {
  // Scenario: this process runs a store and its transfer server and puts a
  // 64 MiB value. A helper process asks the server where the value is,
  // maps the segment read-only and reads all of it. Checks:
  // 1. the reader's view lies in a shared mapping of the store's segment
  //    file (same device and inode, same path), right after the header;
  // 2. reading the 64 MiB grew the reader's heap by less than 1 MiB and
  //    gave the same checksum;
  // 3. a byte changed in the file afterwards (here, behind the store's
  //    back, for the test only) is seen through the reader's existing
  //    view: a private copy could not show it.
  // Ends with the helper reaped and no file left.
  store_fixture f{256 * mib};
  object_id id{0x2C0, 1};
  auto value = pattern(7, 64 * mib);
  auto sum = tools::checksum(value.data(), value.size());
  REQUIRE(f.store->put(id, value.data(), value.size()));
  auto server = transfer_server::start(*f.store);
  REQUIRE(server);
  auto helper = tools::helper_process::start();
  REQUIRE(helper);
  auto pid = (*helper)->pid();
  auto reply = (*helper)->call("map " + std::to_string(id.owner) + " "
                               + std::to_string(id.seq) + " "
                               + std::to_string((*server)->port()));
  REQUIRE_MESSAGE(reply, "map failed");
  // slot dev inode path offset heap_growth checksum us_map us_read size
  auto w = tools::words(*reply);
  REQUIRE(w.size() == 10);
  auto slot = w[0];
  struct stat st;
  auto path = f.store->segment_path(id);
  REQUIRE(::stat(path.c_str(), &st) == 0);
  char dev[32];
  std::snprintf(dev, sizeof(dev), "%02x:%02x", major(st.st_dev),
                minor(st.st_dev));
  CHECK(w[1] == dev);
  CHECK(std::stoull(w[2]) == st.st_ino);
  CHECK(w[3] == path);
  CHECK(std::stoull(w[4]) == 64); // the value starts after the header
  CHECK(std::stoull(w[5]) < mib);
  CHECK(std::stoull(w[6]) == sum);
  CHECK(std::stoull(w[9]) == value.size());
  // 3. Change one byte of the file and read it through the reader's view.
  const uint64_t k = 12345677;
  auto old = static_cast<unsigned char>(value[k]);
  unsigned char changed = old ^ 0x5A;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, &changed, 1, 64 + k) == 1);
  auto seen = (*helper)->call("peek " + slot + " " + std::to_string(k));
  REQUIRE(seen);
  CHECK(std::stoul(*seen) == changed);
  // ... and the store's own view shows it too (one set of pages).
  auto mine = f.store->get(id);
  REQUIRE(mine);
  CHECK(static_cast<unsigned char>(mine->data()[k]) == changed);
  REQUIRE(::pwrite(fd, &old, 1, 64 + k) == 1);
  ::close(fd);
  seen = (*helper)->call("peek " + slot + " " + std::to_string(k));
  REQUIRE(seen);
  CHECK(std::stoul(*seen) == old);
  REQUIRE((*helper)->call("drop " + slot));
  CHECK((*helper)->close_and_wait() == 0);
  helper->reset();
  CHECK(reaped(pid));
  server->reset();
}

TEST_CASE("a value spilled at the store is restored when a reader in "
          "another process asks for it") {
  store_fixture f{8 * mib};
  object_id a{0x2C1, 1};
  object_id b{0x2C1, 2};
  auto va = pattern(1, 5 * mib);
  auto vb = pattern(2, 5 * mib);
  REQUIRE(f.store->put(a, va.data(), va.size()));
  REQUIRE(f.store->put(b, vb.data(), vb.size())); // spills a
  REQUIRE(f.store->stats().on_disk == 1);
  auto server = transfer_server::start(*f.store);
  REQUIRE(server);
  auto helper = tools::helper_process::start();
  REQUIRE(helper);
  auto reply = (*helper)->call("map " + std::to_string(a.owner) + " "
                               + std::to_string(a.seq) + " "
                               + std::to_string((*server)->port()));
  REQUIRE(reply);
  auto w = tools::words(*reply);
  REQUIRE(w.size() == 10);
  CHECK(std::stoull(w[6]) == tools::checksum(va.data(), va.size()));
  CHECK(f.store->stats().restores == 1);
  CHECK((*helper)->close_and_wait() == 0);
  server->reset();
}

TEST_CASE("what a reader in another process maps stays pinned: not evicted, "
          "not reused after a free, and its pins go when it dies") {
  // Scenario: this process's store (8 MiB) holds a 5 MiB secondary copy; a
  // helper process maps it through a node_client (an acquire over its
  // connection). A put needing that room fails with store_full: the pin
  // holds. A free unlinks the segment without keeping it for reuse, and
  // the reader still reads the old bytes. Then a second object is mapped
  // by the helper, the helper is SIGKILLed, and the store drops the dead
  // reader's pin when the connection closes: a put that needs the room
  // then succeeds (waiting for the server to see the close, bounded).
  store_fixture f{8 * mib};
  object_id a{0x2C2, 1};
  object_id b{0x2C2, 2};
  auto va = pattern(1, 5 * mib);
  REQUIRE(f.store->put(a, va.data(), va.size(), copy_kind::secondary));
  auto server = transfer_server::start(*f.store);
  REQUIRE(server);
  auto port = std::to_string((*server)->port());
  auto helper = tools::helper_process::start();
  REQUIRE(helper);
  auto map = [&](const object_id& id) {
    auto reply = (*helper)->call("map " + std::to_string(id.owner) + " "
                                 + std::to_string(id.seq) + " " + port);
    REQUIRE(reply);
    auto w = tools::words(*reply);
    REQUIRE(w.size() == 10);
    return w;
  };
  auto wa = map(a);
  auto vb = pattern(2, 5 * mib);
  auto full = f.store->put(b, vb.data(), vb.size());
  REQUIRE_FALSE(full);
  CHECK(store_code(full.error()) == code(store_errc::store_full));
  // Free while mapped elsewhere: unlinked, not kept for reuse.
  REQUIRE_FALSE(f.store->free(a));
  CHECK(f.store->stats().pooled == 0);
  auto seen = (*helper)->call("peek " + wa[0] + " 4242");
  REQUIRE(seen);
  CHECK(std::stoul(*seen) == static_cast<unsigned char>(va[4242]));
  // A second object, mapped by the helper, then the helper dies.
  REQUIRE(f.store->put(b, vb.data(), vb.size(), copy_kind::secondary));
  map(b);
  (*helper)->kill_and_reap();
  object_id c{0x2C2, 3};
  auto vc = pattern(3, 5 * mib);
  caf::expected<buffer> put{caf::error{}};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  do {
    put = f.store->put(c, vc.data(), vc.size());
    if (!put)
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
  } while (!put && store_code(put.error()) == code(store_errc::store_full)
           && std::chrono::steady_clock::now() < deadline);
  REQUIRE_MESSAGE(put, "the dead reader's pin was never released");
  CHECK_FALSE(f.store->contains(b)); // evicted once unpinned
  server->reset();
}
