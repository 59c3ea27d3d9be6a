// Borrowing and nested refs across real processes (issue 3): refs that
// travel inside values, through tasks, actor state and several workers,
// and what happens when a borrower or an owner dies. Every test ends with
// the no-leak check (owner tables, borrow tables, stores, processes).

#include "test_util.hpp"

#include <atomic>
#include <csignal>
#include <numeric>
#include <string>
#include <vector>

#include <unistd.h>

#include "caf/all.hpp"
#include "caf/io/middleman.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

using text_refs = std::vector<ref<std::string>>;

// Makes `n` strings as objects owned by this worker; returns refs to them.
text_refs make_owned(std::string prefix, int32_t n) {
  text_refs result;
  for (int32_t i = 0; i < n; ++i) {
    auto r = dref::put(prefix + "-" + std::to_string(i));
    if (!r)
      throw std::runtime_error("put failed");
    result.push_back(std::move(*r));
  }
  return result;
}

// The refs of `make_owned`, inside a vector this worker owns too.
ref<text_refs> make_nested(std::string prefix, int32_t n) {
  return dref::put(make_owned(std::move(prefix), n)).value();
}

// Reads every ref (as a borrower) and returns the total length.
int64_t total_length(text_refs refs) {
  int64_t n = 0;
  for (auto& r : refs) {
    auto s = dref::get(r);
    if (!s)
      throw std::runtime_error("get failed: " + caf::to_string(s.error()));
    n += static_cast<int64_t>(s->size());
  }
  return n;
}

// Passes refs on unchanged.
text_refs pass_on(text_refs refs) {
  return refs;
}

// Refs inside a struct.
struct bundle {
  std::string label;
  ref<std::string> item;
  std::vector<ref<int64_t>> numbers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, bundle& x) {
  return f(caf::meta::type_name("test.bundle"), x.label, x.item, x.numbers);
}

bundle make_bundle(std::string label, int32_t n) {
  bundle b;
  b.label = label;
  b.item = *dref::put(label + "!");
  for (int32_t i = 1; i <= n; ++i)
    b.numbers.push_back(*dref::put(int64_t{i}));
  return b;
}

int64_t bundle_sum(bundle b) {
  int64_t sum = 0;
  for (auto& r : b.numbers)
    sum += dref::get(r).value();
  return sum + static_cast<int64_t>(dref::get(b.item).value().size());
}

// A big value owned by this worker, and the worker's pid.
struct big_owned {
  ref<std::string> data;
  int32_t pid = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, big_owned& x) {
  return f(caf::meta::type_name("test.big_owned"), x.data, x.pid);
}

big_owned make_big(int32_t megabytes) {
  big_owned b;
  b.data = *dref::put(std::string(static_cast<size_t>(megabytes) << 20, 'x'));
  b.pid = static_cast<int32_t>(getpid());
  return b;
}

// Keeps refs in its state (a borrower for as long as it keeps them).
class keeper {
public:
  void keep(text_refs refs) {
    kept_.insert(kept_.end(), refs.begin(), refs.end());
  }
  text_refs give() const {
    return kept_;
  }
  void drop() {
    kept_.clear();
  }
  int64_t read_all() const {
    return total_length(kept_);
  }
  int32_t pid() const {
    return static_cast<int32_t>(getpid());
  }
  // Reads `r` again and again for up to `ms`; returns the first error's
  // text, or "ok" when every read succeeded.
  std::string read_until_error(ref<std::string> r, int32_t ms) const {
    auto until = std::chrono::steady_clock::now()
                 + std::chrono::milliseconds{ms};
    while (std::chrono::steady_clock::now() < until) {
      auto s = dref::get(r, std::chrono::seconds{10});
      if (!s)
        return caf::to_string(s.error().category()) + ":"
               + std::to_string(s.error().code());
    }
    return "ok";
  }
  int32_t kept() const {
    return static_cast<int32_t>(kept_.size());
  }

private:
  text_refs kept_;
};

// Total length of plain strings, to check values against.
int64_t expected_length(const std::string& prefix, int n) {
  int64_t sum = 0;
  for (int i = 0; i < n; ++i)
    sum += static_cast<int64_t>((prefix + "-" + std::to_string(i)).size());
  return sum;
}

// Entries of `rt.memory()` for `id`, as (role, state, borrowers, pid).
struct seen_entry {
  std::string role;
  std::string state;
  uint32_t borrowers = 0;
  int32_t pid = 0;
};

std::vector<seen_entry> seen(runtime& rt, const object_id& id) {
  std::vector<seen_entry> result;
  auto report = rt.memory();
  REQUIRE(report);
  for (auto& p : report->processes)
    for (auto& e : p.objects)
      if (e.id == id)
        result.push_back(seen_entry{p.role, e.state, e.borrowers, p.pid});
  return result;
}

text_refs driver_refs(runtime& rt, const std::string& prefix, int n) {
  text_refs result;
  for (int i = 0; i < n; ++i)
    result.push_back(rt.put(prefix + "-" + std::to_string(i)));
  return result;
}

using sink_total_atom = caf::atom_constant<caf::atom("sink_total")>;
using sink_stop_atom = caf::atom_constant<caf::atom("sink_stop")>;

// A plain CAF actor in a worker that keeps the refs it is sent.
caf::behavior sink_fn(caf::event_based_actor* self) {
  auto kept = std::make_shared<text_refs>();
  return {
    [kept](const ref<std::string>& r) { kept->push_back(r); },
    [kept](sink_total_atom) { return total_length(*kept); },
    [self, kept](sink_stop_atom) {
      kept->clear();
      self->quit();
    },
  };
}

// Starts a sink in this worker; returns its port on 127.0.0.1.
int32_t open_sink() {
  auto sys = dref::worker_system();
  if (sys == nullptr)
    throw std::runtime_error("not in a worker");
  // Detached: its handler reads refs with a blocking dref::get, which a
  // scheduler thread refuses (would_block).
  auto sink = sys->spawn<caf::detached>(sink_fn);
  auto port = sys->middleman().publish(sink, 0, "127.0.0.1");
  if (!port)
    throw std::runtime_error(sys->render(port.error()));
  return *port;
}

} // namespace

DREF_MESSAGE_TYPE(ref<std::string>, "test.text_ref");
DREF_REMOTE(open_sink);
DREF_REMOTE(make_owned);
DREF_REMOTE(make_nested);
DREF_REMOTE(total_length);
DREF_REMOTE(pass_on);
DREF_REMOTE(make_bundle);
DREF_REMOTE(bundle_sum);
DREF_REMOTE(make_big);
DREF_ACTOR(keeper, &keeper::keep, &keeper::give, &keeper::drop,
           &keeper::read_all, &keeper::pid, &keeper::read_until_error,
           &keeper::kept);

TEST_CASE("a value a task puts in its worker is readable by the driver and "
          "freed with its last ref") {
  test::with_cluster([](runtime& rt) {
    auto refs = rt.get(rt.call(make_owned, std::string{"w"}, int32_t{5}));
    REQUIRE(refs);
    REQUIRE_EQ(refs->size(), 5u);
    CHECK_EQ(rt.get((*refs)[3]).value(), "w-3");
    // The worker owns it; the driver is its borrower.
    auto entries = seen(rt, (*refs)[3].id());
    bool owner_counts_driver = false;
    for (auto& e : entries)
      if (e.role == "worker" && e.state == "ready" && e.borrowers == 1)
        owner_counts_driver = true;
    CHECK(owner_counts_driver);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK_EQ(st->borrowed_objects, 5u);
  });
}

TEST_CASE("a borrower tree three levels deep keeps values alive until the "
          "last borrower lets go") {
  auto cfg = test::small_cluster(3);
  cfg.inline_limit = 8; // results stay at their workers: workers pass refs on
  test::with_cluster(cfg, [](runtime& rt) {
    const int n = 20;
    auto a = rt.spawn<keeper>();
    auto b = rt.spawn<keeper>();
    // Level 0: a worker owns the strings. Level 1: the driver borrows them.
    auto owned = rt.call(make_owned, std::string{"tree"}, int32_t{n});
    // Level 2: actor a keeps them (it reads the vector from the owner's
    // worker, not through the driver).
    a.call(&keeper::keep, owned);
    CHECK_EQ(rt.get(a.call(&keeper::kept)).value(), n);
    // Level 3: b keeps what a gives (read from a's worker).
    auto given = a.call(&keeper::give);
    b.call(&keeper::keep, given);
    CHECK_EQ(rt.get(b.call(&keeper::read_all)).value(),
             expected_length("tree", n));
    auto first = rt.get(owned).value().front().id();
    // The driver lets go of everything: the borrowers keep the values.
    owned = {};
    given = {};
    CHECK_EQ(rt.get(a.call(&keeper::read_all)).value(),
             expected_length("tree", n));
    rt.get(a.call(&keeper::drop)).value();
    CHECK_EQ(rt.get(b.call(&keeper::read_all)).value(),
             expected_length("tree", n));
    // Only b's borrow is left on the owner's entry (releases are sent in
    // batches: wait for them, bounded).
    uint32_t borrowers = 0;
    for (int i = 0; i < 500; ++i) {
      for (auto& e : seen(rt, first))
        if (e.role == "worker" && e.state == "ready")
          borrowers = e.borrowers;
      if (borrowers == 1)
        break;
      std::this_thread::sleep_for(10ms);
    }
    CHECK_EQ(borrowers, 1u);
    rt.get(b.call(&keeper::drop)).value();
  });
}

TEST_CASE("refs returned through two workers still read the same values") {
  test::with_cluster([](runtime& rt) {
    auto mine = driver_refs(rt, "mine", 10);
    auto once = rt.call(pass_on, mine);
    auto twice = rt.call(pass_on, once);
    auto back = rt.get(twice);
    REQUIRE(back);
    REQUIRE_EQ(back->size(), 10u);
    for (size_t i = 0; i < back->size(); ++i) {
      CHECK_EQ((*back)[i].id(), mine[i].id());
      CHECK_EQ(rt.get((*back)[i]).value(), "mine-" + std::to_string(i));
    }
    // Worker-owned refs too.
    auto theirs = rt.call(make_owned, std::string{"theirs"}, int32_t{10});
    auto moved = rt.call(pass_on, rt.call(pass_on, theirs));
    CHECK_EQ(rt.get(rt.call(total_length, moved)).value(),
             expected_length("theirs", 10));
  });
}

TEST_CASE("refs inside returned vectors and structs stay alive with their "
          "outer value") {
  test::with_cluster([](runtime& rt) {
    auto made = rt.call(make_bundle, std::string{"box"}, int32_t{10});
    // Read by a worker that only has the outer ref.
    CHECK_EQ(rt.get(rt.call(bundle_sum, made)).value(), 55 + 4);
    auto b = rt.get(made);
    REQUIRE(b);
    CHECK_EQ(b->label, "box");
    CHECK_EQ(rt.get(b->item).value(), "box!");
    int64_t sum = 0;
    for (auto& r : b->numbers)
      sum += rt.get(r).value();
    CHECK_EQ(sum, 55);
    // A struct put by the driver, with refs it owns, read by a worker.
    bundle mine;
    mine.label = "mine";
    mine.item = rt.put(std::string{"abc"});
    for (int64_t i = 1; i <= 4; ++i)
      mine.numbers.push_back(rt.put(i));
    auto outer = rt.put(mine);
    mine = bundle{}; // only the outer object holds them now
    CHECK_EQ(rt.get(rt.call(bundle_sum, outer)).value(), 10 + 3);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK_EQ(st->owned_objects, 6u + 1u); // outer, item, 4 numbers + `made`
  });
}

TEST_CASE("a ref kept in an actor's state keeps its value until the actor "
          "drops it") {
  test::with_cluster([](runtime& rt) {
    auto k = rt.spawn<keeper>();
    {
      auto mine = driver_refs(rt, "kept", 8);
      rt.get(k.call(&keeper::keep, mine)).value();
    }
    // The driver holds no ref; the keeper's borrows keep all 8 alive.
    auto st = rt.stats();
    REQUIRE(st);
    CHECK_EQ(st->owned_objects, 8u + 1u); // + the keeper's `created`
    CHECK_EQ(rt.get(k.call(&keeper::read_all)).value(),
             expected_length("kept", 8));
    rt.get(k.call(&keeper::drop)).value();
  });
}

TEST_CASE("a borrower killed while holding refs releases its borrows") {
  test::with_cluster([](runtime& rt) {
    auto k = rt.spawn<keeper>();
    auto pid = rt.get(k.call(&keeper::pid)).value();
    {
      auto mine = driver_refs(rt, "doomed", 8);
      rt.get(k.call(&keeper::keep, mine)).value();
    }
    REQUIRE_EQ(::kill(pid, SIGKILL), 0);
    auto err = rt.get(k.call(&keeper::kept)).error();
    CHECK(test::is(err, actors_errc::worker_died));
    k = {};
  });
}

TEST_CASE("an owner killed while borrowers get ends every get with "
          "owner_died") {
  test::with_cluster(
    [](runtime& rt) {
      auto made = rt.get(rt.call(make_big, int32_t{16}));
      REQUIRE(made);
      auto owner_pid = made->pid;
      // A borrower actor on another worker than the owner.
      actor_handle<keeper> k;
      for (int i = 0; i < 8 && !k; ++i) {
        auto candidate = rt.spawn<keeper>();
        if (rt.get(candidate.call(&keeper::pid)).value() != owner_pid)
          k = candidate;
      }
      REQUIRE(k);
      CHECK_EQ(rt.get(made->data).value().size(), size_t{16} << 20);
      auto remote = k.call(&keeper::read_until_error, made->data,
                           int32_t{20000});
      // The driver gets too, over and over, until the owner is gone.
      std::atomic<bool> killed{false};
      std::chrono::steady_clock::time_point kill_time;
      caf::error driver_err;
      std::chrono::steady_clock::duration driver_lag{};
      std::thread reader{[&] {
        for (;;) {
          auto v = rt.get(made->data, std::chrono::seconds{10});
          if (!v) {
            driver_err = v.error();
            if (killed)
              driver_lag = std::chrono::steady_clock::now() - kill_time;
            return;
          }
        }
      }};
      std::this_thread::sleep_for(300ms);
      kill_time = std::chrono::steady_clock::now();
      killed = true;
      REQUIRE_EQ(::kill(owner_pid, SIGKILL), 0);
      reader.join();
      auto remote_err = rt.get(remote, std::chrono::seconds{30});
      auto remote_lag = std::chrono::steady_clock::now() - kill_time;
      CHECK(test::is(driver_err, refs_errc::owner_died));
      REQUIRE(remote_err);
      INFO(*remote_err);
      CHECK_EQ(*remote_err,
               "dref_refs:"
                 + std::to_string(static_cast<int>(refs_errc::owner_died)));
      // A get after the fact fails at once, without asking anyone.
      CHECK(test::is(rt.get(made->data).error(), refs_errc::owner_died));
      MESSAGE("owner_died after the kill: driver get "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                   driver_lag)
                   .count()
              << " ms, borrower task " << std::chrono::duration_cast<std::chrono::milliseconds>(remote_lag).count()
              << " ms (incl. its reply)");
      made->data = {};
    },
    3);
}

TEST_CASE("an owner dropping its ref while a borrower passes it on loses "
          "nothing") {
  auto cfg = test::small_cluster(3);
  cfg.inline_limit = 8;
  test::with_cluster(cfg, [](runtime& rt) {
    auto a = rt.spawn<keeper>();
    auto b = rt.spawn<keeper>();
    for (int round = 0; round < 30; ++round) {
      {
        auto mine = driver_refs(rt, "race" + std::to_string(round), 3);
        a.call(&keeper::keep, mine);
      } // the owner's own refs are gone while a is still receiving them
      auto given = a.call(&keeper::give);
      a.call(&keeper::drop); // a lets go while b is being handed them
      b.call(&keeper::keep, given);
      given = {};
      auto n = rt.get(b.call(&keeper::read_all));
      REQUIRE(n);
      int64_t expected = 0;
      for (int r = 0; r <= round; ++r)
        expected += expected_length("race" + std::to_string(r), 3);
      CHECK_EQ(*n, expected);
    }
    rt.get(b.call(&keeper::drop)).value();
  });
}

TEST_CASE("a ref sent in a plain CAF message makes the receiving actor's "
          "process a borrower") {
  test::with_cluster([](runtime& rt) {
    auto port = rt.get(rt.call(open_sink));
    REQUIRE(port);
    auto sink = rt.system().middleman().remote_actor(
      "127.0.0.1", static_cast<uint16_t>(*port));
    REQUIRE(sink);
    {
      // Sent and dropped at once: the transit hold keeps the value alive
      // until the sink's process is a registered borrower.
      auto mine = rt.put(std::string{"hello"});
      caf::anon_send(*sink, mine);
      // A worker-owned one, borrowed here, passed on the same way.
      auto theirs = rt.get(rt.call(make_owned, std::string{"far"}, 2));
      REQUIRE(theirs);
      caf::anon_send(*sink, (*theirs)[1]);
    }
    caf::scoped_actor self{rt.system()};
    int64_t total = -1;
    for (int i = 0; i < 500 && total != 10; ++i) {
      self->request(*sink, std::chrono::seconds{30}, sink_total_atom::value)
        .receive([&](int64_t n) { total = n; },
                 [&](caf::error& err) { FAIL(rt.system().render(err)); });
      if (total != 10)
        std::this_thread::sleep_for(10ms);
    }
    CHECK_EQ(total, 5 + 5); // "hello" and "far-1"
    // The driver holds no ref of its own to "hello" any more, and its
    // transit holds are released once the sink's process registered: only
    // the sink's borrow keeps the value (the sink read it above).
    runtime_stats st;
    for (int i = 0; i < 500; ++i) {
      st = rt.stats().value();
      if (st.transit_holds == 0)
        break;
      std::this_thread::sleep_for(10ms);
    }
    CHECK_EQ(st.transit_holds, 0u);
    CHECK_EQ(st.owned_objects, 1u); // "hello", held by the sink alone

    caf::anon_send(*sink, sink_stop_atom::value);
  });
}

TEST_CASE("a borrow dropped and taken back at once is not undone by its "
          "late release") {
  test::with_cluster([](runtime& rt) {
    for (int round = 0; round < 20; ++round) {
      // A worker owns both the strings and the vector holding them; the
      // driver only borrows. It drops its borrows of the strings (releases
      // queued) and reads the vector again at once (new borrows of the same
      // objects, while the old releases may still wait).
      auto outer = rt.get(rt.call(make_nested, "again" + std::to_string(round),
                                   int32_t{3}));
      REQUIRE(outer);
      auto first = rt.get(*outer);
      REQUIRE(first);
      first->clear();
      auto second = rt.get(*outer);
      REQUIRE(second);
      // Drop the vector: its owner's hold on the strings goes; only the
      // driver's new borrows keep them now.
      *outer = {};
      std::this_thread::sleep_for(50ms); // past the 20 ms free batching
      for (size_t i = 0; i < second->size(); ++i) {
        auto v = rt.get((*second)[i], std::chrono::seconds{10});
        REQUIRE_MESSAGE(v, "round " << round << ": "
                             << caf::to_string(v.error()));
        CHECK_EQ(*v, "again" + std::to_string(round) + "-"
                       + std::to_string(i));
      }
    }
  });
}
