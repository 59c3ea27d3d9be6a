// Refs in durable state (docs/architecture.md, "Refs in durable state"): a
// ref a durable actor keeps in its state is still readable after the
// process owning its value died and after the whole cluster restarted,
// because the checkpoints keep copies of the values (and of the values
// inside them); the copies go once no checkpoint refers to them; a state
// whose values cannot be read is not acknowledged and is rolled back.

#include "durable_util.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dref/actors/task.hpp"
#include "dref/persist/error.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

using text_refs = std::vector<ref<std::string>>;

// Strings owned by the worker that made them (`dref::put`), a vector of
// refs to more such strings (also owned there: nested refs), and the
// worker's pid.
struct owned_texts {
  text_refs texts;
  ref<text_refs> nested;
  int32_t pid = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, owned_texts& x) {
  return f(caf::meta::type_name("test.owned_texts"), x.texts, x.nested,
           x.pid);
}

std::string text(const std::string& prefix, int i) {
  return prefix + "-" + std::to_string(i);
}

owned_texts make_texts(std::string prefix, int32_t n) {
  owned_texts result;
  text_refs inner;
  for (int32_t i = 0; i < n; ++i) {
    result.texts.push_back(dref::put(text(prefix, i)).value());
    inner.push_back(dref::put(text(prefix + "-inner", i)).value());
  }
  result.nested = dref::put(inner).value();
  result.pid = static_cast<int32_t>(getpid());
  return result;
}

// Strings of `kib` KiB each (above the inline limit) owned by the worker
// that made them: each sealed in the node store as that worker's object.
owned_texts make_large_texts(int32_t kib, int32_t n) {
  owned_texts result;
  for (int32_t i = 0; i < n; ++i)
    result.texts.push_back(
      dref::put(std::string(static_cast<size_t>(kib) * 1024,
                            static_cast<char>('a' + i)))
        .value());
  result.nested = dref::put(text_refs{}).value();
  result.pid = static_cast<int32_t>(getpid());
  return result;
}

// A value above the inline limit: sealed in the node store.
std::string make_large(int32_t kib) {
  return std::string(static_cast<size_t>(kib) * 1024, 'L');
}

// The value of `r` in a task; a failed get ends the task with its error.
template <class T>
T get_or_throw(const ref<T>& r) {
  auto v = dref::get(r, 20s);
  if (!v)
    throw std::runtime_error(caf::to_string(v.error()));
  return std::move(*v);
}

// Reads every ref (a task on some worker) and sums the lengths.
int64_t sum_lengths(text_refs refs) {
  int64_t n = 0;
  for (auto& r : refs)
    n += static_cast<int64_t>(get_or_throw(r).size());
  return n;
}

int64_t expected_length(const std::string& prefix, int n) {
  int64_t sum = 0;
  for (int i = 0; i < n; ++i)
    sum += static_cast<int64_t>(text(prefix, i).size());
  return sum;
}

// A durable actor keeping refs: plain ones and refs to vectors of refs.
class ref_vault {
public:
  void keep(text_refs refs) {
    kept_.insert(kept_.end(), refs.begin(), refs.end());
  }
  void keep_nested(ref<text_refs> r) {
    nested_.push_back(std::move(r));
  }
  void drop() {
    kept_.clear();
    nested_.clear();
  }
  int32_t tick() {
    return ++ticks_;
  }
  text_refs give() const {
    return kept_;
  }
  // Reads every kept value, and every value inside the nested ones.
  int64_t total() const {
    auto n = sum_lengths(kept_);
    for (auto& r : nested_)
      n += sum_lengths(get_or_throw(r));
    return n;
  }
  int32_t pid() const {
    return static_cast<int32_t>(getpid());
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, ref_vault& x) {
    return f(caf::meta::type_name("test.ref_vault"), x.kept_, x.nested_,
             x.ticks_);
  }

private:
  text_refs kept_;
  std::vector<ref<text_refs>> nested_;
  int32_t ticks_ = 0;
};

using test::durable_cluster;
using test::state_dir;

// Kept values on disk (no runtime may be running on `dir`).
size_t kept_on_disk(const state_dir& dir) {
  auto store = rocksdb_checkpoint_store::open(dir.path);
  REQUIRE_MESSAGE(store, test::why(store));
  auto keys = (*store)->keys(column_family::ref_values);
  REQUIRE(keys);
  return keys->size();
}

// Texts made by a task on a worker other than `not_pid`'s.
owned_texts texts_elsewhere(runtime& rt, int32_t not_pid,
                            const std::string& prefix, int32_t n) {
  for (int i = 0; i < 16; ++i) {
    auto made = rt.get(rt.call(make_texts, prefix, n), 20s);
    REQUIRE_MESSAGE(made, test::why(made));
    if (made->pid != not_pid)
      return std::move(*made);
  }
  FAIL("every task ran on the ref_vault's worker");
  return {};
}

} // namespace

DREF_REMOTE(make_texts);
DREF_REMOTE(make_large);
DREF_REMOTE(make_large_texts);
DREF_REMOTE(sum_lengths);
DREF_ACTOR(ref_vault, &ref_vault::keep, &ref_vault::keep_nested, &ref_vault::drop,
           &ref_vault::tick, &ref_vault::give, &ref_vault::total, &ref_vault::pid);

TEST_CASE("a ref kept in a durable actor's state is still readable after "
          "its owner process died") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 3), [](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("ref_vault-owner-death"));
    auto vault_pid = rt.get(v.call(&ref_vault::pid), 20s).value();
    auto made = texts_elsewhere(rt, vault_pid, "w", 6);
    REQUIRE(rt.get(v.call(&ref_vault::keep, made.texts), 20s));
    REQUIRE(rt.get(v.call(&ref_vault::keep_nested, made.nested), 20s));
    auto want = expected_length("w", 6) + expected_length("w-inner", 6);
    REQUIRE(rt.get(v.call(&ref_vault::total), 20s).value() == want);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->kept_values == 6 + 1 + 6); // texts, the vector, its texts
    // The owner goes; its objects are gone with it (fate-sharing) ...
    auto owner_pid = made.pid;
    made = owned_texts{};
    REQUIRE_EQ(::kill(owner_pid, SIGKILL), 0);
    // ... but the ref_vault's checkpoint kept their values: its worker reads
    // them, the driver reads them, and a task given them reads them.
    auto total = rt.get(v.call(&ref_vault::total), 30s);
    REQUIRE_MESSAGE(total, test::why(total));
    CHECK(*total == want);
    auto refs = rt.get(v.call(&ref_vault::give), 20s);
    REQUIRE_MESSAGE(refs, test::why(refs));
    REQUIRE(refs->size() == 6);
    for (int i = 0; i < 6; ++i) {
      auto s = rt.get((*refs)[i], 20s);
      REQUIRE_MESSAGE(s, test::why(s));
      CHECK(*s == text("w", i));
    }
    auto passed = rt.get(rt.call(sum_lengths, *refs), 30s);
    REQUIRE_MESSAGE(passed, test::why(passed));
    CHECK(*passed == expected_length("w", 6));
    refs = caf::error{};
    REQUIRE(rt.get(v.call(&ref_vault::drop), 20s));
  });
}

TEST_CASE("a ref kept in a durable actor's state is still readable after "
          "the whole cluster restarted") {
  state_dir dir;
  int64_t want = 0;
  test::with_cluster(durable_cluster(dir, 2), [&](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("ref_vault-restart"));
    // Owned by the driver: small values, and one sealed in the node store.
    text_refs mine{rt.put(std::string{"driver-0"}), rt.put(std::string{"d1"}),
                   rt.call(make_large, int32_t{300})};
    REQUIRE(rt.get(mine[2], 20s));
    REQUIRE(rt.get(v.call(&ref_vault::keep, mine), 20s));
    // Owned by a worker, with nested refs.
    auto made = rt.get(rt.call(make_texts, std::string{"r"}, int32_t{4}), 20s);
    REQUIRE(made);
    REQUIRE(rt.get(v.call(&ref_vault::keep, made->texts), 20s));
    REQUIRE(rt.get(v.call(&ref_vault::keep_nested, made->nested), 20s));
    want = 8 + 2 + 300 * 1024 + expected_length("r", 4)
           + expected_length("r-inner", 4);
    CHECK(rt.get(v.call(&ref_vault::total), 20s).value() == want);
  });
  // Every process of the first cluster is gone, its node store too.
  CHECK(kept_on_disk(dir) == 3 + 4 + 1 + 4);
  test::with_cluster(durable_cluster(dir, 2), [&](runtime& rt) {
    auto v = rt.actor<ref_vault>("ref_vault-restart");
    REQUIRE_MESSAGE(v, test::why(v));
    auto total = rt.get(v->call(&ref_vault::total), 30s);
    REQUIRE_MESSAGE(total, test::why(total));
    CHECK(*total == want);
    auto refs = rt.get(v->call(&ref_vault::give), 20s);
    REQUIRE_MESSAGE(refs, test::why(refs));
    REQUIRE(refs->size() == 3 + 4);
    CHECK(rt.get((*refs)[0], 20s).value() == "driver-0");
    CHECK(rt.get((*refs)[2], 20s).value() == make_large(300));
    CHECK(rt.get((*refs)[3], 20s).value() == "r-0");
    // The restored actor goes on; its next checkpoint keeps the same
    // values without sending them again.
    CHECK(rt.get(v->call(&ref_vault::tick), 20s).value() == 1);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->kept_values == 3 + 4 + 1 + 4);
  });
  CHECK(kept_on_disk(dir) == 3 + 4 + 1 + 4);
}

TEST_CASE("a task reads a ref to a result computed earlier in its batch on "
          "the same worker") {
  // Regression: the read asked the owner, which waited for the result
  // that this worker's executor had not sent yet: a timeout.
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 1), [](runtime& rt) {
    auto large = rt.call(make_large, int32_t{200});
    auto small = rt.call(make_large, int32_t{20});
    auto n = rt.call(sum_lengths, text_refs{large, small});
    auto got = rt.get(n, 30s);
    REQUIRE_MESSAGE(got, test::why(got));
    CHECK(*got == 220 * 1024);
  });
}

TEST_CASE("a ref to a result not computed yet can be kept at once") {
  // One worker: the result's task and the durable call run in one batch
  // on the same executor; the value is read where it was made.
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 1), [](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("vault-pending"));
    auto large = rt.call(make_large, int32_t{200});
    auto kept = v.call(&ref_vault::keep, text_refs{large});
    auto total = rt.get(v.call(&ref_vault::total), 30s);
    REQUIRE_MESSAGE(total, test::why(total));
    CHECK(*total == 200 * 1024);
    REQUIRE(rt.get(kept, 1s));
    CHECK(rt.stats().value().kept_values == 1);
    REQUIRE(rt.get(v.call(&ref_vault::drop), 20s));
  });
}

TEST_CASE("with a weaker checkpoint policy, kept refs survive the death of "
          "the worker that owned them and hosted the actor") {
  // The state is acknowledged but not written yet: the driver holds it
  // and the values it refers to; the actor comes back on another worker
  // from that state and reads the values from the driver.
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 2), [](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("vault-lazy").checkpoint_every(100));
    auto vault_pid = rt.get(v.call(&ref_vault::pid), 20s).value();
    std::optional<owned_texts> made;
    for (int i = 0; i < 16 && !made; ++i) {
      auto m = rt.get(rt.call(make_texts, std::string{"z"}, int32_t{3}), 20s);
      REQUIRE(m);
      if (m->pid == vault_pid)
        made = std::move(*m);
    }
    REQUIRE_MESSAGE(made, "no task ran on the vault's worker");
    REQUIRE(rt.get(v.call(&ref_vault::keep, made->texts), 20s));
    REQUIRE(rt.get(v.call(&ref_vault::keep_nested, made->nested), 20s));
    made.reset();
    REQUIRE_EQ(::kill(vault_pid, SIGKILL), 0);
    auto total = rt.get(v.call(&ref_vault::total), 30s);
    REQUIRE_MESSAGE(total, test::why(total));
    CHECK(*total == expected_length("z", 3) + expected_length("z-inner", 3));
    CHECK(rt.get(v.call(&ref_vault::pid), 20s).value() != vault_pid);
    REQUIRE(rt.get(v.call(&ref_vault::drop), 20s));
  });
}

TEST_CASE("two actors keeping one value each keep a copy, and one dropping "
          "it leaves the other's") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 2), [](runtime& rt) {
    auto a = rt.spawn<ref_vault>(durable("vault-share-a"));
    auto b = rt.spawn<ref_vault>(durable("vault-share-b"));
    text_refs shared{rt.put(std::string{"shared"})};
    REQUIRE(rt.get(a.call(&ref_vault::keep, shared), 20s));
    REQUIRE(rt.get(b.call(&ref_vault::keep, shared), 20s));
    CHECK(rt.stats().value().kept_values == 2);
    REQUIRE(rt.get(a.call(&ref_vault::drop), 20s));
    REQUIRE(rt.get(a.call(&ref_vault::tick), 20s));
    CHECK(rt.stats().value().kept_values == 1); // a's copy erased
    CHECK(rt.get(b.call(&ref_vault::total), 20s).value() == 6);
    REQUIRE(rt.get(b.call(&ref_vault::drop), 20s));
    REQUIRE(rt.get(b.call(&ref_vault::tick), 20s));
    CHECK(rt.stats().value().kept_values == 0);
  });
  CHECK(kept_on_disk(dir) == 0);
}

TEST_CASE("kept values are erased once neither of the actor's two "
          "checkpoints refers to them") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 2), [](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("ref_vault-drop"));
    text_refs mine{rt.put(std::string{"a"}), rt.put(std::string{"b"})};
    REQUIRE(rt.get(v.call(&ref_vault::keep, mine), 20s));
    CHECK(rt.stats().value().kept_values == 2);
    REQUIRE(rt.get(v.call(&ref_vault::drop), 20s));
    // The previous checkpoint (the one before the drop) still lists them.
    CHECK(rt.stats().value().kept_values == 2);
  });
  CHECK(kept_on_disk(dir) == 2);
  test::with_cluster(durable_cluster(dir, 2), [](runtime& rt) {
    auto v = rt.actor<ref_vault>("ref_vault-drop");
    REQUIRE(v);
    CHECK(rt.get(v->call(&ref_vault::tick), 20s).value() == 1);
    CHECK(rt.stats().value().kept_values == 0);
  });
  CHECK(kept_on_disk(dir) == 0);
}

TEST_CASE("a durable call whose state refers to a value nobody has fails "
          "and the actor goes on from its previous state") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 3), [](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("ref_vault-refused"));
    auto vault_pid = rt.get(v.call(&ref_vault::pid), 20s).value();
    text_refs mine{rt.put(std::string{"safe"})};
    REQUIRE(rt.get(v.call(&ref_vault::keep, mine), 20s));
    // A vector owned by the driver holding refs owned by a worker that
    // then dies: the vector is readable, the values inside it are not.
    auto made = texts_elsewhere(rt, vault_pid, "gone", 3);
    auto outer = rt.put(made.texts);
    auto owner_pid = made.pid;
    made = owned_texts{};
    REQUIRE_EQ(::kill(owner_pid, SIGKILL), 0);
    auto res = rt.get(v.call(&ref_vault::keep_nested, outer), 30s);
    REQUIRE_FALSE(res);
    INFO(caf::to_string(res.error()));
    CHECK(test::is(res.error(), persist_errc::io_error));
    CHECK(caf::to_string(res.error()).find("ref_vault-refused")
          != std::string::npos);
    // Not applied: the actor was rolled back to its last checkpoint.
    auto total = rt.get(v.call(&ref_vault::total), 20s);
    REQUIRE_MESSAGE(total, test::why(total));
    CHECK(*total == 4);
    CHECK(rt.get(v.call(&ref_vault::tick), 20s).value() == 1);
    outer = {};
  });
  test::with_cluster(durable_cluster(dir, 2), [](runtime& rt) {
    auto v = rt.actor<ref_vault>("ref_vault-refused");
    REQUIRE(v);
    CHECK(rt.get(v->call(&ref_vault::total), 20s).value() == 4);
    CHECK(rt.get(v->call(&ref_vault::tick), 20s).value() == 2);
  });
}

// Waits (at most 20 s) until the driver no longer lists the worker with
// pid `pid`: it has seen that worker die.
void wait_until_gone(runtime& rt, int32_t pid) {
  for (int i = 0; i < 2000; ++i) {
    auto ws = rt.workers();
    if (std::none_of(ws.begin(), ws.end(),
                     [pid](const worker_info& w) { return w.pid == pid; }))
      return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("the driver still lists worker " << pid);
}

TEST_CASE("a durable call keeping refs whose owner died before it fails "
          "with io_error naming the actor, and the state stays as it was") {
  // Regression (issue 17): the vault's worker never reached the refs'
  // owner, which is dead (and seen dead by the driver) before the call, so
  // borrowing the refs in the call's arguments fails before the call runs.
  // That failed with object_lost naming neither the actor nor the call;
  // the documented error is io_error naming the actor and the value, as
  // for a state whose values cannot be read ("Refs in durable state").
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 2), [](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("vault-dead-args"));
    auto vault_pid = rt.get(v.call(&ref_vault::pid), 20s).value();
    REQUIRE(rt.get(v.call(&ref_vault::keep,
                          text_refs{rt.put(std::string{"safe"})}),
                   20s));
    auto made = texts_elsewhere(rt, vault_pid, "dead", 3);
    made.nested = {};
    REQUIRE_EQ(::kill(made.pid, SIGKILL), 0);
    wait_until_gone(rt, made.pid);
    auto res = rt.get(v.call(&ref_vault::keep, made.texts), 30s);
    REQUIRE_FALSE(res);
    auto msg = caf::to_string(res.error());
    INFO(msg);
    CHECK(test::is(res.error(), persist_errc::io_error));
    CHECK(msg.find("vault-dead-args") != std::string::npos);
    CHECK(std::any_of(made.texts.begin(), made.texts.end(),
                      [&](const ref<std::string>& r) {
                        return msg.find(to_string(r.id())) != std::string::npos;
                      }));
    made = owned_texts{};
    // Not applied: the state is the one before the call.
    auto total = rt.get(v.call(&ref_vault::total), 20s);
    REQUIRE_MESSAGE(total, test::why(total));
    CHECK(*total == 4);
    CHECK(rt.get(v.call(&ref_vault::tick), 20s).value() == 1);
    REQUIRE(rt.get(v.call(&ref_vault::drop), 20s));
  });
}

// Two 300 KiB values put by a task that ran on the worker with pid
// `vault_pid` (`same`) or on another one; placement is least-loaded, so
// tasks are tried until one lands where wanted (at most 16).
std::optional<owned_texts> large_texts_made(runtime& rt, int32_t vault_pid,
                                            bool same) {
  for (int i = 0; i < 16; ++i) {
    auto m = rt.get(rt.call(make_large_texts, int32_t{300}, int32_t{2}), 20s);
    REQUIRE_MESSAGE(m, test::why(m));
    if ((m->pid == vault_pid) == same)
      return std::move(*m);
  }
  return std::nullopt;
}

TEST_CASE("a large value a task put, kept in a durable actor's state, is "
          "still readable after its owner process died") {
  // The values (300 KiB each) are sealed in the node store by the worker
  // that put them; the vault's worker asks that owner, which answers "in
  // the node store", and copies the bytes into the checkpoint. Then the
  // owner dies, its node-store copies go, and the kept copies serve.
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 2), [](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("vault-large-owner-death"));
    auto vault_pid = rt.get(v.call(&ref_vault::pid), 20s).value();
    auto made = large_texts_made(rt, vault_pid, false);
    REQUIRE_MESSAGE(made, "every task ran on the vault's worker");
    CHECK(rt.stats().value().node_objects >= 2);
    REQUIRE(rt.get(v.call(&ref_vault::keep, made->texts), 20s));
    int64_t want = 2 * 300 * 1024;
    REQUIRE(rt.get(v.call(&ref_vault::total), 20s).value() == want);
    auto owner_pid = made->pid;
    made.reset();
    REQUIRE_EQ(::kill(owner_pid, SIGKILL), 0);
    auto total = rt.get(v.call(&ref_vault::total), 30s);
    REQUIRE_MESSAGE(total, test::why(total));
    CHECK(*total == want);
    REQUIRE(rt.get(v.call(&ref_vault::drop), 20s));
  });
}

TEST_CASE("a large value a task put on the durable actor's own worker is "
          "kept with its bytes and readable after that worker died") {
  // The vault's own worker owns the values: it copies them from its node
  // store slot into the checkpoint. Killing that worker frees them from
  // the store; the vault comes back elsewhere and reads the kept copies.
  state_dir dir;
  test::with_cluster(durable_cluster(dir, 2), [](runtime& rt) {
    auto v = rt.spawn<ref_vault>(durable("vault-large-own-worker"));
    auto vault_pid = rt.get(v.call(&ref_vault::pid), 20s).value();
    auto made = large_texts_made(rt, vault_pid, true);
    REQUIRE_MESSAGE(made, "no task ran on the vault's worker");
    REQUIRE(rt.get(v.call(&ref_vault::keep, made->texts), 20s));
    made.reset();
    REQUIRE_EQ(::kill(vault_pid, SIGKILL), 0);
    auto total = rt.get(v.call(&ref_vault::total), 30s);
    REQUIRE_MESSAGE(total, test::why(total));
    CHECK(*total == int64_t{2} * 300 * 1024);
    CHECK(rt.get(v.call(&ref_vault::pid), 20s).value() != vault_pid);
    REQUIRE(rt.get(v.call(&ref_vault::drop), 20s));
  });
}
