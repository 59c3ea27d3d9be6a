// The freeing rule end to end: values are freed in the owner and in every
// worker once no ref and no pending task needs them.

#include "test_util.hpp"

#include <vector>

using namespace dref;
using namespace std::chrono_literals;

namespace {

int64_t ident(int64_t x) {
  return x;
}

int64_t plus(int64_t x, int64_t y) {
  return x + y;
}

std::vector<char> blob_of(int32_t n) {
  return std::vector<char>(static_cast<size_t>(n), 'b');
}

int64_t size_of(const std::vector<char>& v) {
  return static_cast<int64_t>(v.size());
}

int64_t slow_ident(int64_t x) {
  std::this_thread::sleep_for(200ms);
  return x;
}

} // namespace

DREF_REMOTE(ident);
DREF_REMOTE(plus);
DREF_REMOTE(blob_of);
DREF_REMOTE(size_of);
DREF_REMOTE(slow_ident);

TEST_CASE("after 100000 tasks whose refs are dropped every table is empty") {
  test::with_cluster([](runtime& rt) {
    constexpr int64_t total = 100000;
    constexpr int64_t batch = 10000;
    int64_t sum = 0;
    for (int64_t done = 0; done < total; done += batch) {
      std::vector<ref<int64_t>> refs;
      refs.reserve(batch);
      for (int64_t i = 0; i < batch; ++i)
        refs.push_back(rt.call(ident, done + i));
      auto res = rt.wait(refs, refs.size(), 60s);
      REQUIRE(res.not_ready.empty());
      // Read a few values back, then drop every ref of this round.
      for (size_t i = 0; i < refs.size(); i += 1000) {
        auto v = rt.get(refs[i], 10s);
        REQUIRE(v);
        sum += *v;
      }
    }
    CHECK(sum > 0);
    // Dropping happened round by round; the no-leak check of with_cluster
    // asserts that the owner's table and both workers' stores are empty.
  });
}

TEST_CASE("a ref dropped while its task runs is freed when the task ends") {
  test::with_cluster([](runtime& rt) {
    rt.call(slow_ident, int64_t{1}); // ref dropped at once
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->owned_objects == 1); // pending: kept until the result arrives
  });
}

TEST_CASE("an argument lives while a task needs it even if its ref is gone") {
  test::with_cluster([](runtime& rt) {
    ref<int64_t> out;
    {
      auto slow = rt.call(slow_ident, int64_t{20});
      out = rt.call(plus, slow, int64_t{22});
    } // `slow` dropped before `plus` ran
    auto v = rt.get(out, 10s);
    REQUIRE(v);
    CHECK(*v == 42);
  });
}

TEST_CASE("large values are freed in the node store and in their workers") {
  test::with_cluster([](runtime& rt) {
    std::vector<ref<int64_t>> sizes;
    for (int i = 0; i < 8; ++i)
      sizes.push_back(rt.call(size_of, rt.call(blob_of, 300 * 1024)));
    for (auto& s : sizes) {
      auto v = rt.get(s, 10s);
      REQUIRE(v);
      CHECK(*v == 300 * 1024);
    }
  });
}

TEST_CASE("intermediate values of a chain are freed as the chain moves on") {
  test::with_cluster([](runtime& rt) {
    auto r = rt.call(ident, int64_t{0});
    for (int i = 0; i < 1000; ++i)
      r = rt.call(plus, r, int64_t{1});
    auto v = rt.get(r, 30s);
    REQUIRE(v);
    CHECK(*v == 1000);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->owned_objects <= 1001);
  });
}
