// Calls, refs as arguments, chains, put, wait and large values, each against
// a real local cluster of worker processes.

#include "test_util.hpp"

#include <numeric>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

int32_t add(int32_t a, int32_t b) {
  return a + b;
}

int32_t my_pid() {
  return static_cast<int32_t>(getpid());
}

int32_t slow_echo(int32_t x, int32_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return x;
}

std::string greet(const std::string& name) {
  return "hello " + name;
}

std::vector<int64_t> iota_vec(int32_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

int64_t sum_vec(const std::vector<int64_t>& v) {
  return std::accumulate(v.begin(), v.end(), int64_t{0});
}

struct point {
  int32_t x = 0;
  int32_t y = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, point& p) {
  return f(caf::meta::type_name("test.point"), p.x, p.y);
}

point flip(point p) {
  return point{p.y, p.x};
}

// A large value that knows which process made it.
struct tagged {
  int32_t pid = 0;
  std::vector<int64_t> data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tagged& x) {
  return f(caf::meta::type_name("test.tagged"), x.pid, x.data);
}

tagged tagged_iota(int32_t n) {
  return tagged{static_cast<int32_t>(getpid()), iota_vec(n)};
}

int32_t holder_pid(const tagged& t) {
  return t.pid;
}

// pid of the executing process * 1e6 + number of elements.
int64_t sum_where(const tagged& t, int32_t) {
  return int64_t{getpid()} * 1000000 + static_cast<int64_t>(t.data.size());
}

} // namespace

DREF_REMOTE(add);
DREF_REMOTE(my_pid);
DREF_REMOTE(slow_echo);
DREF_REMOTE(greet);
DREF_REMOTE(iota_vec);
DREF_REMOTE(sum_vec);
DREF_REMOTE(flip);
DREF_REMOTE(tagged_iota);
DREF_REMOTE(holder_pid);
DREF_REMOTE(sum_where);

TEST_CASE("tasks run in separate worker processes") {
  test::with_cluster([](runtime& rt) {
    std::set<int32_t> workers;
    for (auto& w : rt.workers())
      workers.insert(w.pid);
    REQUIRE(workers.size() == 2);
    std::vector<ref<int32_t>> refs;
    for (int i = 0; i < 20; ++i)
      refs.push_back(rt.call(my_pid));
    std::set<int32_t> seen;
    for (auto& r : refs) {
      auto pid = rt.get(r, 10s);
      REQUIRE(pid);
      CHECK(*pid != getpid());
      CHECK(workers.count(*pid) == 1);
      seen.insert(*pid);
    }
    CHECK(seen.size() == 2); // independent tasks spread over both workers
  });
}

TEST_CASE("a call returns at once and get waits for the value") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.call(slow_echo, 7, 300);
    auto early = rt.wait(std::vector<ref<int32_t>>{r}, 1, 0ms);
    CHECK(early.ready.empty());
    CHECK(early.not_ready.size() == 1);
    auto v = rt.get(r, 10s);
    REQUIRE(v);
    CHECK(*v == 7);
  });
}

TEST_CASE("a ref passed as an argument makes the task wait for it") {
  test::with_cluster([](runtime& rt) {
    auto a = rt.call(slow_echo, 5, 100);
    auto b = rt.call(add, a, 10);
    auto c = rt.call(add, a, b);
    auto v = rt.get(c, 10s);
    REQUIRE(v);
    CHECK(*v == 20);
  });
}

TEST_CASE("a chain of 200 calls each taking the previous ref adds up") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.call(add, 0, 1);
    for (int i = 1; i < 200; ++i)
      r = rt.call(add, r, 1);
    auto v = rt.get(r, 30s);
    REQUIRE(v);
    CHECK(*v == 200);
  });
}

TEST_CASE("values made by tasks on two workers meet in a third task") {
  test::with_cluster([](runtime& rt) {
    // Both slow, so they run at the same time on different workers.
    auto a = rt.call(slow_echo, 1, 200);
    auto b = rt.call(slow_echo, 2, 200);
    auto c = rt.call(add, a, b);
    auto v = rt.get(c, 10s);
    REQUIRE(v);
    CHECK(*v == 3);
  });
}

TEST_CASE("a put value can be fetched and passed to calls") {
  test::with_cluster([](runtime& rt) {
    auto p = rt.put(int32_t{40});
    auto v = rt.get(p);
    REQUIRE(v);
    CHECK(*v == 40);
    auto s = rt.get(rt.call(add, p, 2), 10s);
    REQUIRE(s);
    CHECK(*s == 42);
  });
}

TEST_CASE("strings, vectors and inspectable structs travel both ways") {
  test::with_cluster([](runtime& rt) {
    auto g = rt.get(rt.call(greet, "dref"), 10s);
    REQUIRE(g);
    CHECK(*g == "hello dref");
    auto v = rt.call(iota_vec, 100);
    auto s = rt.get(rt.call(sum_vec, v), 10s);
    REQUIRE(s);
    CHECK(*s == 4950);
    auto f = rt.get(rt.call(flip, point{1, 2}), 10s);
    REQUIRE(f);
    CHECK(f->x == 2);
    CHECK(f->y == 1);
  });
}

TEST_CASE("wait returns when n refs are ready, with the rest not ready") {
  test::with_cluster([](runtime& rt) {
    std::vector<ref<int32_t>> refs{rt.call(slow_echo, 1, 0),
                                   rt.call(slow_echo, 2, 2000),
                                   rt.call(slow_echo, 3, 0)};
    auto t0 = std::chrono::steady_clock::now();
    auto res = rt.wait(refs, 2, 10s);
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    CHECK(res.ready.size() == 2);
    REQUIRE(res.not_ready.size() == 1);
    CHECK(res.not_ready[0].id() == refs[1].id());
    auto all = rt.wait(refs, 3, 10s);
    CHECK(all.ready.size() == 3);
  });
}

TEST_CASE("wait with a timeout returns what is ready when time is up") {
  test::with_cluster([](runtime& rt) {
    std::vector<ref<int32_t>> refs{rt.call(slow_echo, 1, 0),
                                   rt.call(slow_echo, 2, 1000)};
    rt.get(refs[0], 10s);
    auto res = rt.wait(refs, 2, 100ms);
    CHECK(res.ready.size() == 1);
    CHECK(res.not_ready.size() == 1);
    rt.get(refs[1], 10s);
  });
}

TEST_CASE("a large result lives once in the node store and get reads it") {
  test::with_cluster([](runtime& rt) {
    auto big = rt.call(iota_vec, 100000); // 800 KB > inline limit
    auto v = rt.get(big, 10s);
    REQUIRE(v);
    CHECK(v->size() == 100000);
    CHECK((*v)[99999] == 99999);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1);
    CHECK(st->node_bytes > 800000);
    uint64_t stored = 0;
    for (auto& w : st->workers)
      stored += w.bytes;
    CHECK(stored == 0); // the producing worker keeps a slot, not the bytes
  });
}

TEST_CASE("a large result the node store refuses stays in its worker and "
          "get fetches it") {
  auto cfg = test::small_cluster();
  cfg.store_capacity = 1000; // far too small for 800 KB, and no room to spill
  test::with_cluster(cfg, [](runtime& rt) {
    auto big = rt.call(iota_vec, 100000);
    auto v = rt.get(big, 10s);
    REQUIRE(v);
    CHECK(v->size() == 100000);
    CHECK((*v)[99999] == 99999);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 0);
    uint64_t stored = 0;
    for (auto& w : st->workers)
      stored += w.bytes;
    CHECK(stored > 800000);
  });
}

TEST_CASE("a large value is read by tasks on both workers, not through the "
          "driver") {
  test::with_cluster([](runtime& rt) {
    auto big = rt.call(tagged_iota, 100000);
    auto holder = rt.get(rt.call(holder_pid, big), 10s);
    REQUIRE(holder);
    // Each reader waits for a slow pending argument, so it runs where that
    // argument is being made: at least one lands on the other worker and
    // must pull the big value from the holder directly.
    std::vector<ref<int64_t>> readers;
    for (int i = 0; i < 4; ++i)
      readers.push_back(rt.call(sum_where, big, rt.call(slow_echo, i, 100)));
    std::set<int64_t> pids;
    for (auto& r : readers) {
      auto v = rt.get(r, 10s);
      REQUIRE(v);
      CHECK(*v % 1000000 == 100000 % 1000000);
      pids.insert(*v / 1000000);
    }
    CHECK(pids.size() == 2);
    CHECK(pids.count(*holder) == 1);
  });
}
