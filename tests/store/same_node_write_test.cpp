// Distributed tests: another process on the node writes values into the
// node store in place (node_client::create ... seal).

#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <sys/stat.h>

#include "dref/store/error.hpp"
#include "dref/store/node_store.hpp"
#include "dref/store/tools/helper_process.hpp"
#include "dref/store/transfer_server.hpp"

#include "store_test_util.hpp"

using namespace dref;
using namespace dref::test;

namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

std::string write_cmd(const char* cmd, const object_id& id, size_t n,
                      uint64_t seed, uint16_t port) {
  return std::string{cmd} + " " + std::to_string(id.owner) + " "
         + std::to_string(id.seq) + " " + std::to_string(n) + " "
         + std::to_string(seed) + " " + std::to_string(port);
}

} // namespace

TEST_CASE("a value written in place by another process on the node is "
          "stored once, reads back byte for byte, and is freed from there") {
  // Scenario: this process runs the store and its server; a helper
  // process creates a 24 MiB object through its node_client, fills the
  // segment it mapped and seals it. The store then holds it sealed, as a
  // primary copy, in one segment, and get returns the helper's bytes.
  store_fixture f{256 * mib};
  auto server = transfer_server::start(*f.store);
  REQUIRE(server);
  auto helper = tools::helper_process::start();
  REQUIRE(helper);
  object_id id{0x3A, 1};
  size_t n = 24 * mib + 5;
  REQUIRE((*helper)->call(write_cmd("write", id, n, 51, (*server)->port())));
  CHECK(f.store->contains(id));
  auto got = f.store->get(id);
  REQUIRE(got);
  REQUIRE(got->size() == n);
  auto want = pattern(51, n);
  CHECK(std::memcmp(got->data(), want.data(), n) == 0);
  auto st = f.store->stats();
  CHECK(st.objects == 1);
  CHECK(st.memory_bytes == n);
  CHECK(f.shm_files_but_pool().size() == 2); // the lock and the segment
  // Objects are immutable: a second create of the id is refused.
  auto again = (*helper)->call(write_cmd("write", id, n, 52,
                                         (*server)->port()));
  REQUIRE_FALSE(again);
  CHECK(context_of(again.error()).find("already_exists")
        != std::string::npos);
  // Freed from the other process: every copy goes.
  got = buffer{};
  auto port = std::to_string((*server)->port());
  REQUIRE((*helper)->call("free " + std::to_string(id.owner) + " "
                          + std::to_string(id.seq) + " " + port));
  CHECK_FALSE(f.store->contains(id));
  CHECK(f.store->stats().objects == 0);
  CHECK(f.shm_files_but_pool().size() == 1);
  auto twice = (*helper)->call("free " + std::to_string(id.owner) + " "
                               + std::to_string(id.seq) + " " + port);
  REQUIRE_FALSE(twice);
  CHECK(context_of(twice.error()).find("not_found") != std::string::npos);
  CHECK((*helper)->close_and_wait() == 0);
  server->reset();
}

TEST_CASE("an object left unsealed by a process that dies is aborted: no "
          "file and no bytes remain") {
  store_fixture f{64 * mib};
  auto server = transfer_server::start(*f.store);
  REQUIRE(server);
  auto helper = tools::helper_process::start();
  REQUIRE(helper);
  object_id id{0x3B, 1};
  REQUIRE((*helper)->call(write_cmd("write_open", id, 8 * mib, 61,
                                    (*server)->port())));
  CHECK_FALSE(f.store->contains(id)); // not sealed: invisible
  CHECK(f.store->stats().memory_bytes == 8 * mib);
  struct stat sb;
  CHECK(::stat((f.store->segment_path(id) + ".tmp").c_str(), &sb) == 0);
  (*helper)->kill_and_reap();
  // The server aborts the writer when it sees the connection close.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  while (f.store->stats().objects != 0
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  CHECK(f.store->stats().objects == 0);
  CHECK(f.store->stats().memory_bytes == 0);
  CHECK(::stat((f.store->segment_path(id) + ".tmp").c_str(), &sb) != 0);
  CHECK(f.shm_files().size() == 1); // the lock only
  server->reset();
}
