// Group commit: many threads submit batches, whatever is queued goes to
// the store as one write. Deterministic tests hold the current leader's
// write at a gate until the followers have queued up, so the test knows
// exactly which batches form a group; the stress test runs 8 threads
// against RocksDB on disk.

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dref/persist/checkpoint_store.hpp"
#include "dref/persist/error.hpp"
#include "dref/persist/fault_injecting_store.hpp"
#include "dref/persist/group_committer.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

#include "persist_test_util.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

constexpr auto state = column_family::actor_state;

constexpr auto& put = test::put_state;
constexpr auto& read = test::read_state;

// Waits up to 10 s for `pred`; the tests below fail instead of hanging.
template <class Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Passes writes to `inner`, but while closed holds each write until
// opened; records the number of ops of every write it passes on.
class gated_store final : public checkpoint_store {
public:
  explicit gated_store(checkpoint_store& inner) : inner_(inner) {
  }

  void close() {
    std::lock_guard<std::mutex> guard{mtx_};
    open_ = false;
  }

  void open() {
    std::lock_guard<std::mutex> guard{mtx_};
    open_ = true;
    cv_.notify_all();
  }

  size_t waiting() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return waiting_;
  }

  std::vector<size_t> write_sizes() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return sizes_;
  }

  caf::error write(const write_batch& batch) override {
    {
      std::unique_lock<std::mutex> guard{mtx_};
      ++waiting_;
      cv_.wait(guard, [this] { return open_; });
      --waiting_;
      sizes_.push_back(batch.ops.size());
    }
    return inner_.write(batch);
  }

  caf::expected<std::optional<std::string>>
  read(column_family cf, const std::string& key) const override {
    return inner_.read(cf, key);
  }

  caf::expected<std::vector<std::string>>
  keys(column_family cf, const std::string& prefix) const override {
    return inner_.keys(cf, prefix);
  }

private:
  checkpoint_store& inner_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool open_ = true;
  size_t waiting_ = 0;
  std::vector<size_t> sizes_;
};

// Submits `batch` on its own thread; `result` is set when submit returns.
// When a failed REQUIRE ends the test early, the destructor opens `gate`
// before joining, so the test fails instead of hanging.
struct submitter {
  std::optional<caf::error> result;
  std::thread thread;
  gated_store* gate;

  submitter(group_committer& gc, write_batch batch, gated_store* gate)
    : gate(gate) {
    thread = std::thread{[this, &gc, b = std::move(batch)] {
      result = gc.submit(b);
    }};
  }

  ~submitter() {
    gate->open();
    if (thread.joinable())
      thread.join();
  }
};

} // namespace

TEST_CASE("a lone submitter's batch is written at once and it sees success") {
  memory_checkpoint_store store;
  group_committer gc{store};
  REQUIRE_FALSE(gc.submit(put("k", "v")));
  CHECK(read(store, "k") == std::optional<std::string>{"v"});
  auto st = gc.stats();
  CHECK(st.batches == 1);
  CHECK(st.store_writes == 1);
  CHECK(st.failed_batches == 0);
  CHECK(gc.pending() == 0);
}

TEST_CASE("batches queued behind a running write go to the store as one "
          "write") {
  memory_checkpoint_store store;
  gated_store gate{store};
  group_committer gc{gate};
  gate.close();
  submitter first{gc, put("first", "1"), &gate};
  REQUIRE(eventually([&] { return gate.waiting() == 1; }));
  std::vector<std::unique_ptr<submitter>> rest;
  for (int i = 0; i < 5; ++i)
    rest.push_back(std::make_unique<submitter>(
      gc, put("k" + std::to_string(i), std::to_string(i)), &gate));
  REQUIRE(eventually([&] { return gc.pending() == 6; }));
  gate.open();
  first.thread.join();
  REQUIRE(first.result.has_value());
  CHECK_FALSE(*first.result);
  for (auto& s : rest) {
    s->thread.join();
    REQUIRE(s->result.has_value());
    CHECK_MESSAGE(!*s->result, test::describe(*s->result));
  }
  CHECK(gate.write_sizes() == std::vector<size_t>{1, 5});
  CHECK(gc.stats().store_writes == 2);
  for (int i = 0; i < 5; ++i)
    CHECK(read(store, "k" + std::to_string(i))
          == std::optional<std::string>{std::to_string(i)});
}

TEST_CASE("within a group a later batch's put wins, as if written one after "
          "another") {
  memory_checkpoint_store store;
  gated_store gate{store};
  group_committer gc{gate};
  gate.close();
  submitter first{gc, put("other", "x"), &gate};
  REQUIRE(eventually([&] { return gate.waiting() == 1; }));
  submitter early{gc, put("k", "early"), &gate};
  REQUIRE(eventually([&] { return gc.pending() == 2; }));
  submitter late{gc, put("k", "late"), &gate};
  REQUIRE(eventually([&] { return gc.pending() == 3; }));
  gate.open();
  late.thread.join();
  early.thread.join();
  CHECK(gate.write_sizes() == std::vector<size_t>{1, 2});
  CHECK(read(store, "k") == std::optional<std::string>{"late"});
}

TEST_CASE("a group holds at most max_group_batches batches") {
  memory_checkpoint_store store;
  gated_store gate{store};
  group_commit_options opts;
  opts.max_group_batches = 2;
  group_committer gc{gate, opts};
  gate.close();
  submitter first{gc, put("first", "1"), &gate};
  REQUIRE(eventually([&] { return gate.waiting() == 1; }));
  std::vector<std::unique_ptr<submitter>> rest;
  for (int i = 0; i < 5; ++i) {
    rest.push_back(std::make_unique<submitter>(
      gc, put("k" + std::to_string(i), "v"), &gate));
    REQUIRE(eventually([&] { return gc.pending() == 2u + i; }));
  }
  gate.open();
  rest.clear(); // joins
  CHECK(gate.write_sizes() == std::vector<size_t>{1, 2, 2, 1});
}

TEST_CASE("a group stops growing at max_group_bytes but always takes the "
          "leader's batch") {
  memory_checkpoint_store store;
  gated_store gate{store};
  group_commit_options opts;
  opts.max_group_bytes = 100;
  group_committer gc{gate, opts};
  gate.close();
  submitter first{gc, put("first", "1"), &gate};
  REQUIRE(eventually([&] { return gate.waiting() == 1; }));
  // 200 bytes: over the limit alone, so it leads a group of its own.
  submitter big{gc, put("big", std::string(200, 'b')), &gate};
  REQUIRE(eventually([&] { return gc.pending() == 2; }));
  std::vector<std::unique_ptr<submitter>> small;
  for (int i = 0; i < 3; ++i) {
    small.push_back(std::make_unique<submitter>(
      gc, put("s" + std::to_string(i), std::string(38, 's')), &gate));
    REQUIRE(eventually([&] { return gc.pending() == 3u + i; }));
  }
  gate.open();
  big.thread.join();
  small.clear();
  // 40 bytes each: two fit in 100, the third starts a new group.
  CHECK(gate.write_sizes() == std::vector<size_t>{1, 1, 2, 1});
  CHECK(read(store, "big")->size() == 200);
}

TEST_CASE("batches from 8 threads are all durable, every submitter sees "
          "success, and they need fewer store writes than batches") {
  test::temp_dir dir;
  auto path = dir / "db";
  constexpr int threads = 8;
  constexpr int per_thread = 40;
  size_t store_writes = 0;
  {
    auto opened = rocksdb_checkpoint_store::open(path);
    REQUIRE_MESSAGE(opened, test::describe(opened));
    fault_injecting_store counting{**opened}; // no faults: counts writes
    group_committer gc{counting};
    std::vector<std::vector<caf::error>> results(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          write_batch b;
          auto id = std::to_string(t) + "-" + std::to_string(i);
          b.put(state, "state-" + id, "value-" + id);
          b.put(column_family::actor_meta, "meta-" + id, id);
          results[t].push_back(gc.submit(b));
        }
      });
    for (auto& w : workers)
      w.join();
    for (int t = 0; t < threads; ++t) {
      REQUIRE(results[t].size() == per_thread);
      for (auto& err : results[t])
        CHECK_MESSAGE(!err, test::describe(err));
    }
    auto st = gc.stats();
    CHECK(st.batches == threads * per_thread);
    CHECK(st.failed_batches == 0);
    store_writes = counting.stats().forwarded_writes;
    CHECK(st.store_writes == store_writes);
    MESSAGE((threads * per_thread) << " batches in " << store_writes
                                 << " synced store writes");
  }
  CHECK(store_writes < threads * per_thread);
  // Durable: everything is there after closing and reopening.
  auto reopened = rocksdb_checkpoint_store::open(path);
  REQUIRE_MESSAGE(reopened, test::describe(reopened));
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < per_thread; ++i) {
      auto id = std::to_string(t) + "-" + std::to_string(i);
      CHECK(read(**reopened, "state-" + id)
            == std::optional<std::string>{"value-" + id});
      auto m = (*reopened)->read(column_family::actor_meta, "meta-" + id);
      REQUIRE(m);
      CHECK(*m == std::optional<std::string>{id});
    }
}

TEST_CASE("an injected disk_full fails every batch of the group and leaves "
          "prior data intact") {
  test::temp_dir dir;
  auto path = dir / "db";
  {
    auto opened = rocksdb_checkpoint_store::open(path);
    REQUIRE_MESSAGE(opened, test::describe(opened));
    // committer -> faults -> gate -> RocksDB: the leader's write passes the
    // fault point before it waits at the gate.
    gated_store gate{**opened};
    fault_injecting_store faults{gate};
    group_committer gc{faults};
    write_batch prior;
    prior.put(state, "acct-1", "100");
    prior.put(state, "acct-2", "200");
    REQUIRE_FALSE(gc.submit(prior));
    gate.close();
    submitter leader{gc, put("acct-3", "300"), &gate};
    REQUIRE(eventually([&] { return gate.waiting() == 1; }));
    std::vector<std::unique_ptr<submitter>> group;
    for (int i = 0; i < 7; ++i) {
      write_batch b;
      b.put(state, "acct-1", "changed-" + std::to_string(i));
      b.erase(state, "acct-2");
      b.put(state, "new-" + std::to_string(i), "x");
      group.push_back(std::make_unique<submitter>(gc, std::move(b), &gate));
    }
    REQUIRE(eventually([&] { return gc.pending() == 8; }));
    faults.fail_next_writes(1, persist_errc::disk_full);
    gate.open();
    leader.thread.join();
    REQUIRE(leader.result.has_value());
    CHECK_MESSAGE(!*leader.result, test::describe(*leader.result));
    for (auto& s : group) {
      s->thread.join();
      REQUIRE(s->result.has_value());
      CHECK_MESSAGE(test::is(*s->result, persist_errc::disk_full),
                    test::describe(*s->result));
    }
    auto st = gc.stats();
    CHECK(st.store_writes == 3); // prior, leader, the failed group
    CHECK(st.failed_batches == 7);
    CHECK(faults.stats().injected_write_faults == 1);
    CHECK(read(**opened, "acct-1") == std::optional<std::string>{"100"});
    CHECK(read(**opened, "acct-2") == std::optional<std::string>{"200"});
    CHECK(read(**opened, "acct-3") == std::optional<std::string>{"300"});
    CHECK_FALSE(read(**opened, "new-0").has_value());
    // The fault is gone: the same batch goes through on a retry.
    write_batch retry;
    retry.put(state, "new-0", "x");
    CHECK_FALSE(gc.submit(retry));
  }
  auto reopened = rocksdb_checkpoint_store::open(path);
  REQUIRE_MESSAGE(reopened, test::describe(reopened));
  CHECK(read(**reopened, "acct-1") == std::optional<std::string>{"100"});
  CHECK(read(**reopened, "acct-2") == std::optional<std::string>{"200"});
  CHECK(read(**reopened, "acct-3") == std::optional<std::string>{"300"});
  CHECK(read(**reopened, "new-0") == std::optional<std::string>{"x"});
  for (int i = 1; i < 7; ++i)
    CHECK_FALSE(read(**reopened, "new-" + std::to_string(i)).has_value());
}
