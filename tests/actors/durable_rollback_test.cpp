// Rollback after a failed checkpoint write: the calls of the failed batch
// fail, and the actor goes back to its last good checkpoint, in the
// worker's memory and on disk, before any later call runs. Faults are
// injected into the driver's real RocksDB store through
// `config::checkpoint_faults`; one test fills a real (tmpfs) disk.

#include "durable_util.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <sys/mount.h>
#include <unistd.h>

#include "dref/persist/fault_injecting_store.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

class vault {
public:
  int64_t deposit(int64_t x) {
    balance_ += x;
    ++deposits_;
    return balance_;
  }

  // Appends `n` bytes to the state (makes checkpoints large).
  int64_t pad(int32_t n) {
    padding_.append(static_cast<size_t>(n), 'p');
    return static_cast<int64_t>(padding_.size());
  }

  int64_t balance() const {
    return balance_;
  }

  int64_t deposits() const {
    return deposits_;
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, vault& x) {
    return f(caf::meta::type_name("test.vault"), x.balance_, x.deposits_,
             x.padding_);
  }

private:
  int64_t balance_ = 0;
  int64_t deposits_ = 0;
  std::string padding_;
};

using test::durable_cluster;
using test::state_dir;

// Balance and number of deposits of the durable vault `name` as a fresh
// runtime on `dir` finds them (i.e. on disk).
std::pair<int64_t, int64_t> on_disk(const state_dir& dir,
                                    const std::string& name) {
  std::pair<int64_t, int64_t> result{-1, -1};
  test::with_cluster(durable_cluster(dir), [&](runtime& rt) {
    auto v = rt.spawn<vault>(durable(name));
    auto b = rt.get(v.call(&vault::balance), 10s);
    auto n = rt.get(v.call(&vault::deposits), 10s);
    REQUIRE_MESSAGE(b, test::why(b));
    REQUIRE_MESSAGE(n, test::why(n));
    result = {*b, *n};
  });
  return result;
}

} // namespace

DREF_ACTOR(vault, &vault::deposit, &vault::pad, &vault::balance,
           &vault::deposits);

TEST_CASE("a failed checkpoint write fails the call and leaves the actor's "
          "state as it was, in memory and on disk") {
  state_dir dir;
  fault_injecting_store* faults = nullptr;
  auto cfg = durable_cluster(dir);
  cfg.checkpoint_faults = [&](fault_injecting_store& f) { faults = &f; };
  test::with_cluster(cfg, [&](runtime& rt) {
    auto v = rt.spawn<vault>(durable("vault-1"));
    REQUIRE(rt.get(v.call(&vault::deposit, int64_t{10}), 10s));
    REQUIRE(faults != nullptr);
    faults->fail_next_writes(1, persist_errc::disk_full);
    auto r = rt.get(v.call(&vault::deposit, int64_t{5}), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), persist_errc::disk_full));
    // The worker's instance went back to the checkpoint.
    auto b = rt.get(v.call(&vault::balance), 10s);
    auto n = rt.get(v.call(&vault::deposits), 10s);
    REQUIRE(b);
    REQUIRE(n);
    CHECK(*b == 10);
    CHECK(*n == 1);
    auto again = rt.get(v.call(&vault::deposit, int64_t{1}), 10s);
    REQUIRE(again);
    CHECK(*again == 11);
    CHECK(faults->stats().injected_write_faults == 1);
  });
  CHECK(on_disk(dir, "vault-1") == std::pair<int64_t, int64_t>{11, 2});
}

TEST_CASE("calls in flight behind a failed checkpoint write are re-run on "
          "the restored state, so only acknowledged deposits count") {
  // 300 deposits of 1 are pipelined; after the first 100 are submitted,
  // the next checkpoint write fails. Some calls fail with it; the ones
  // that were in flight behind it ran on the state being dropped, and
  // must be re-run (their first results dropped as stale). Whatever the
  // interleaving: balance == number of acknowledged deposits, and the
  // balances the acknowledged deposits returned are exactly 1..acked (an
  // answer from a run on the dropped state would repeat or skip one).
  state_dir dir;
  fault_injecting_store* faults = nullptr;
  auto cfg = durable_cluster(dir);
  cfg.checkpoint_faults = [&](fault_injecting_store& f) { faults = &f; };
  int64_t acked = 0;
  test::with_cluster(cfg, [&](runtime& rt) {
    auto v = rt.spawn<vault>(durable("vault-2"));
    REQUIRE(rt.get(v.created(), 10s));
    REQUIRE(faults != nullptr);
    std::vector<ref<int64_t>> acks;
    for (int i = 0; i < 300; ++i) {
      acks.push_back(v.call(&vault::deposit, int64_t{1}));
      if (i == 100)
        faults->fail_next_writes(1, persist_errc::io_error);
    }
    int64_t failed = 0;
    std::vector<int64_t> seen;
    for (auto& a : acks) {
      auto r = rt.get(a, 20s);
      if (r) {
        ++acked;
        seen.push_back(*r);
      } else {
        CHECK(test::is(r.error(), persist_errc::io_error));
        ++failed;
      }
    }
    CHECK(faults->stats().injected_write_faults == 1);
    CHECK(failed >= 1);
    CHECK(acked + failed == 300);
    std::sort(seen.begin(), seen.end());
    for (int64_t i = 0; i < static_cast<int64_t>(seen.size()); ++i)
      if (seen[i] != i + 1) {
        FAIL("acknowledged balances are not 1..acked: #" << i << " is "
                                                         << seen[i]);
        break;
      }
    auto b = rt.get(v.call(&vault::balance), 10s);
    auto n = rt.get(v.call(&vault::deposits), 10s);
    REQUIRE(b);
    REQUIRE(n);
    CHECK(*b == acked);
    CHECK(*n == acked);
  });
  CHECK(on_disk(dir, "vault-2") == std::pair<int64_t, int64_t>{acked, acked});
}

TEST_CASE("an actor whose first checkpoint write fails does not exist, and "
          "its calls fail with the write's error") {
  state_dir dir;
  auto cfg = durable_cluster(dir);
  cfg.checkpoint_faults = [](fault_injecting_store& f) {
    f.fail_next_writes(1, persist_errc::disk_full);
  };
  test::with_cluster(cfg, [&](runtime& rt) {
    auto v = rt.spawn<vault>(durable("vault-3"));
    auto c = rt.get(v.created(), 10s);
    REQUIRE_FALSE(c);
    CHECK(test::is(c.error(), persist_errc::disk_full));
    auto r = rt.get(v.call(&vault::deposit, int64_t{1}), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), persist_errc::disk_full));
  });
  // Nothing of it reached the disk: the name starts afresh.
  CHECK(on_disk(dir, "vault-3") == std::pair<int64_t, int64_t>{0, 0});
}

TEST_CASE("a really full disk fails the call with disk_full and rolls the "
          "actor back, and after space is freed it goes on from there") {
  // A tmpfs of 8 MiB holds the state directory and a 3 MiB ballast file.
  // Each call grows the vault's state by 512 KiB (every checkpoint holds
  // the whole state), so the WAL fills the disk after a few calls.
  state_dir mnt;
  if (::mount("tmpfs", mnt.path.c_str(), "tmpfs", 0, "size=8m") != 0) {
    MESSAGE("cannot mount a tmpfs (needs root): ", std::strerror(errno),
            "; this test checks nothing here");
    return;
  }
  struct unmount {
    std::string path;
    ~unmount() {
      ::umount2(path.c_str(), MNT_DETACH);
    }
  } um{mnt.path};
  auto ballast = mnt.path + "/ballast";
  {
    std::ofstream out{ballast, std::ios::binary};
    std::string mib(1 << 20, 'b');
    for (int i = 0; i < 3; ++i)
      out << mib;
    REQUIRE(out.good());
  }
  auto cfg = test::small_cluster();
  cfg.state_dir = mnt.path + "/state";
  int64_t acked_size = 0;
  test::with_cluster(cfg, [&](runtime& rt) {
    auto v = rt.spawn<vault>(durable("vault-full"));
    REQUIRE(rt.get(v.call(&vault::deposit, int64_t{7}), 10s));
    caf::error full;
    for (int i = 0; i < 32 && !full; ++i) {
      auto r = rt.get(v.call(&vault::pad, int32_t{512 * 1024}), 20s);
      if (r)
        acked_size = *r;
      else
        full = r.error();
    }
    REQUIRE_MESSAGE(full, "the disk never filled");
    CHECK_MESSAGE(test::is(full, persist_errc::disk_full),
                  caf::to_string(full));
    REQUIRE(::unlink(ballast.c_str()) == 0);
    // Rolled back: the padding is what the last acknowledged call left.
    auto size = rt.get(v.call(&vault::pad, int32_t{0}), 20s);
    REQUIRE_MESSAGE(size, test::why(size));
    CHECK(*size == acked_size);
    auto b = rt.get(v.call(&vault::deposit, int64_t{1}), 20s);
    REQUIRE_MESSAGE(b, test::why(b));
    CHECK(*b == 8);
  });
  // And on disk.
  test::with_cluster(cfg, [&](runtime& rt) {
    auto v = rt.spawn<vault>(durable("vault-full"));
    auto size = rt.get(v.call(&vault::pad, int32_t{0}), 20s);
    auto b = rt.get(v.call(&vault::balance), 20s);
    REQUIRE_MESSAGE(size, test::why(size));
    REQUIRE(b);
    CHECK(*size == acked_size);
    CHECK(*b == 8);
  });
}
