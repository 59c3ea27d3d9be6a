// Task trees (issue 11): tasks in workers call tasks, the calling worker
// owns the results, a waiting task hands its slot on, and a dead owner's
// objects fail with `owner_died`. Every test ends with the no-leak check.

#include "test_util.hpp"

#include <csignal>
#include <numeric>
#include <string>
#include <vector>

#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

// Sums [lo, hi) by splitting it: the first `chunk` numbers in one call, the
// rest in another, each a call of this function, until one chunk is left
// (so the tree is `ceil((hi - lo) / chunk)` levels deep). Every level waits
// for its two children.
int64_t split_sum(int64_t lo, int64_t hi, int64_t chunk) {
  if (hi - lo <= chunk) {
    int64_t s = 0;
    for (auto i = lo; i < hi; ++i)
      s += i;
    return s;
  }
  auto head = dref::call(split_sum, lo, lo + chunk, chunk);
  auto rest = dref::call(split_sum, lo + chunk, hi, chunk);
  auto a = dref::get(head);
  auto b = dref::get(rest);
  if (!a || !b)
    throw std::runtime_error("child failed: "
                             + caf::to_string(a ? b.error() : a.error()));
  return *a + *b;
}

// A balanced tree of `depth` levels: two calls per level.
int64_t binary_sum(int64_t lo, int64_t hi, int32_t depth) {
  if (depth == 0) {
    int64_t s = 0;
    for (auto i = lo; i < hi; ++i)
      s += i;
    return s;
  }
  auto mid = lo + (hi - lo) / 2;
  std::vector<ref<int64_t>> kids{dref::call(binary_sum, lo, mid, depth - 1),
                                 dref::call(binary_sum, mid, hi, depth - 1)};
  auto done = dref::wait(kids, 2);
  if (done.ready.size() != 2)
    throw std::runtime_error("children not ready");
  int64_t s = 0;
  for (auto& k : kids)
    s += dref::get(k).value();
  return s;
}

std::string shout(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

int64_t length_of(std::string s) {
  return static_cast<int64_t>(s.size());
}

// Returns refs this worker owns: its pid (put here), and the result of a
// call it made (run on any worker).
std::vector<ref<std::string>> owned_results(std::string s) {
  std::vector<ref<std::string>> out;
  out.push_back(dref::put(std::to_string(getpid())).value());
  out.push_back(dref::call(shout, std::move(s)));
  return out;
}

// A worker's call passing one of its results to the next call.
int64_t chained(std::string s) {
  auto up = dref::call(shout, std::move(s));
  auto n = dref::call(length_of, up);
  return dref::get(n).value() * 10 + (dref::get(up).value() == "ABC" ? 1 : 0);
}

} // namespace

DREF_REMOTE(split_sum);
DREF_REMOTE(binary_sum);
DREF_REMOTE(shout);
DREF_REMOTE(length_of);
DREF_REMOTE(owned_results);
DREF_REMOTE(chained);

TEST_CASE("a task that splits its input and calls itself twelve levels deep "
          "completes on two workers with the right sum") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  // 12 chunks of 10: 12 levels, each waiting for its two children.
  auto r = rt.get(rt.call(split_sum, int64_t{0}, int64_t{120}, int64_t{10}),
                  60s);
  REQUIRE_MESSAGE(r, test::why(r));
  CHECK(*r == 119 * 120 / 2);
  test::check_no_leaks(rt);
}

TEST_CASE("a balanced task tree of depth five waits through dref::wait and "
          "adds up") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  auto r = rt.get(rt.call(binary_sum, int64_t{0}, int64_t{3200}, int32_t{5}),
                  60s);
  REQUIRE_MESSAGE(r, test::why(r));
  CHECK(*r == int64_t{3199} * 3200 / 2);
  test::check_no_leaks(rt);
}

TEST_CASE("a worker passes the result of its call to its next call") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  auto r = rt.get(rt.call(chained, std::string{"abc"}), 30s);
  REQUIRE_MESSAGE(r, test::why(r));
  CHECK(*r == 31);
  test::check_no_leaks(rt);
}

TEST_CASE("a worker-owned result is read by the driver and by another "
          "worker, and freed when the last ref is gone") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  {
    auto refs = rt.get(rt.call(owned_results, std::string{"hello"}), 30s);
    REQUIRE_MESSAGE(refs, test::why(refs));
    REQUIRE(refs->size() == 2);
    auto& child = (*refs)[1];
    CHECK(child.id().owner != 0);
    auto v = rt.get(child, 30s);
    REQUIRE_MESSAGE(v, test::why(v));
    CHECK(*v == "HELLO");
    // Another task reads it from its owner (a worker), wherever it runs.
    std::vector<ref<int64_t>> lengths;
    for (int i = 0; i < 4; ++i)
      lengths.push_back(rt.call(length_of, child));
    for (auto& l : lengths) {
      auto n = rt.get(l, 30s);
      REQUIRE_MESSAGE(n, test::why(n));
      CHECK(*n == 5);
    }
  }
  test::check_no_leaks(rt);
}

TEST_CASE("the SIGKILL of a worker that owns results fails their readers "
          "with owner_died within a second") {
  runtime rt{test::small_cluster(2)};
  REQUIRE(rt.running());
  {
    auto refs = rt.get(rt.call(owned_results, std::string{"x"}), 30s);
    REQUIRE_MESSAGE(refs, test::why(refs));
    auto pid = rt.get((*refs)[0], 30s);
    REQUIRE_MESSAGE(pid, test::why(pid));
    auto owner = std::stoi(*pid);
    REQUIRE(owner > 0);
    REQUIRE(::kill(owner, SIGKILL) == 0);
    // Not read before: the driver holds no copy; its owner is gone. The
    // bound is the promise: `owner_died`, not `timeout`, within 1 s.
    auto v = rt.get((*refs)[1], 1s);
    REQUIRE_FALSE(v);
    CHECK_MESSAGE(test::is(v.error(), refs_errc::owner_died),
                  caf::to_string(v.error()));
    // A task reading it fails too, naming the dead owner.
    auto n = rt.get(rt.call(length_of, (*refs)[1]), 10s);
    REQUIRE_FALSE(n);
    CHECK_MESSAGE(caf::to_string(n.error()).find("died")
                    != std::string::npos,
                  caf::to_string(n.error()));
  }
  test::check_no_leaks(rt);
}
