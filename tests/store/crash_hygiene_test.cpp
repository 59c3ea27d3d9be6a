// Distributed test: the files of a store whose process was killed are
// removed when the next store on the node opens; a live store's are not.

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include <sys/wait.h>

#include "dref/store/node_store.hpp"
#include "dref/store/tools/helper_process.hpp"

#include "store_test_util.hpp"

using namespace dref;
using namespace dref::test;

namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

/// A private directory on /dev/shm (so that concurrent tests opening
/// stores in /dev/shm itself cannot clean our dead store first).
struct shm_dir {
  std::string path;
  shm_dir() {
    char tmpl[] = "/dev/shm/dref_crash_test_XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~shm_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

} // namespace

TEST_CASE("segments and spill files of a killed store are removed when the "
          "next store opens, and a live store's files are kept") {
  // Scenario: two helper processes run stores "dead" and "alive" in a
  // private shm directory with one spill directory; both put values,
  // some spilled. "dead" is SIGKILLed (it cannot clean up), then this
  // process opens a third store there: the dead one's segments, spill
  // files and lock go; the live one's stay until it exits normally.
  shm_dir shm;
  temp_dir spill;
  auto dead_name = unique_store_name("dead");
  auto alive_name = unique_store_name("alive");
  auto dead = tools::helper_process::start();
  auto alive = tools::helper_process::start();
  REQUIRE(dead);
  REQUIRE(alive);
  for (auto [h, name] : {std::pair{dead->get(), dead_name},
                         std::pair{alive->get(), alive_name}}) {
    REQUIRE(h->call("open " + name + " " + std::to_string(4 * mib) + " "
                    + spill.path() + " " + shm.path));
    for (int i = 1; i <= 3; ++i)
      REQUIRE(h->call("put 1 " + std::to_string(i) + " "
                      + std::to_string(3 * mib) + " " + std::to_string(i)));
  }
  auto dead_files = [&] {
    return files_with_prefix(shm.path, files_of_store(dead_name)).size()
           + files_with_prefix(spill.path(), files_of_store(dead_name)).size();
  };
  auto alive_files = [&] {
    return files_with_prefix(shm.path, files_of_store(alive_name)).size()
           + files_with_prefix(spill.path(), files_of_store(alive_name))
               .size();
  };
  // Each: a lock, one segment in memory, two spill files.
  CHECK(dead_files() == 4);
  CHECK(alive_files() == 4);
  auto dead_pid = (*dead)->pid();
  (*dead)->kill_and_reap();
  int status = 0;
  CHECK((::waitpid(dead_pid, &status, WNOHANG) < 0 && errno == ECHILD));
  CHECK(dead_files() == 4); // nobody cleaned up yet
  {
    store_config cfg;
    cfg.name = unique_store_name("next");
    cfg.shm_dir = shm.path;
    cfg.spill_dir = spill.path();
    auto next = node_store::open(cfg);
    REQUIRE(next);
    CHECK(dead_files() == 0);
    CHECK(alive_files() == 4);
  }
  CHECK((*alive)->close_and_wait() == 0); // exits, removing its files
  CHECK(alive_files() == 0);
  CHECK(spill.entries().empty());
  CHECK(files_with_prefix(shm.path, "").empty());
}
