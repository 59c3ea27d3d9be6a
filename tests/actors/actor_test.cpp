// Actors: creation, calls in submission order, refs as arguments, and
// destruction when the last handle goes.

#include "test_util.hpp"

#include <string>
#include <vector>

#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

class journal {
public:
  journal() = default;
  explicit journal(std::string prefix) : prefix_(std::move(prefix)) {
  }

  int64_t append(int64_t x) {
    entries_.push_back(x);
    return static_cast<int64_t>(entries_.size());
  }

  std::vector<int64_t> entries() const {
    return entries_;
  }

  std::string name() const {
    return prefix_ + ":" + std::to_string(getpid());
  }

  void clear() {
    entries_.clear();
  }

private:
  std::string prefix_ = "journal";
  std::vector<int64_t> entries_;
};

struct fragile {
  explicit fragile(int32_t x) {
    if (x < 0)
      throw std::invalid_argument("negative size");
  }
  int32_t get() const {
    return 1;
  }
};

int64_t later(int64_t x, int32_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds{ms});
  return x;
}

} // namespace

DREF_ACTOR(journal, &journal::append, &journal::entries, &journal::name,
           &journal::clear);
DREF_ACTOR(fragile, &fragile::get);
DREF_REMOTE(later);

TEST_CASE("an actor's calls run in the order they were submitted") {
  test::with_cluster([](runtime& rt) {
    auto j = rt.spawn<journal>();
    std::vector<ref<int64_t>> sizes;
    for (int64_t i = 0; i < 500; ++i)
      sizes.push_back(j.call(&journal::append, i));
    auto all = rt.get(j.call(&journal::entries), 10s);
    REQUIRE(all);
    REQUIRE(all->size() == 500);
    for (int64_t i = 0; i < 500; ++i)
      CHECK((*all)[static_cast<size_t>(i)] == i);
    auto last = rt.get(sizes.back(), 10s);
    REQUIRE(last);
    CHECK(*last == 500);
  });
}

TEST_CASE("an actor lives in a worker process and takes constructor values") {
  test::with_cluster([](runtime& rt) {
    auto j = rt.spawn<journal>(std::string{"orders"});
    REQUIRE(rt.get(j.created(), 10s));
    auto name = rt.get(j.call(&journal::name), 10s);
    REQUIRE(name);
    CHECK(name->rfind("orders:", 0) == 0);
    CHECK(*name != "orders:" + std::to_string(getpid()));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->actors == 1);
  });
}

TEST_CASE("a call waiting for a ref argument keeps later calls behind it") {
  test::with_cluster([](runtime& rt) {
    auto j = rt.spawn<journal>();
    // The first append needs a value that takes a while (made on whichever
    // worker); the later appends have plain values but must still come after.
    auto slow = rt.call(later, int64_t{100}, 300);
    j.call(&journal::append, slow);
    for (int64_t i = 1; i <= 5; ++i)
      j.call(&journal::append, i);
    auto all = rt.get(j.call(&journal::entries), 10s);
    REQUIRE(all);
    CHECK(*all == std::vector<int64_t>{100, 1, 2, 3, 4, 5});
  });
}

TEST_CASE("calls through copies of a handle share one instance") {
  test::with_cluster([](runtime& rt) {
    auto a = rt.spawn<journal>();
    auto b = a;
    a.call(&journal::append, int64_t{1});
    b.call(&journal::append, int64_t{2});
    auto all = rt.get(a.call(&journal::entries), 10s);
    REQUIRE(all);
    CHECK(*all == std::vector<int64_t>{1, 2});
  });
}

TEST_CASE("an actor is destroyed after the last handle is gone") {
  test::with_cluster([](runtime& rt) {
    {
      auto j = rt.spawn<journal>();
      auto n = rt.get(j.call(&journal::append, int64_t{1}), 10s);
      REQUIRE(n);
      auto st = rt.stats();
      REQUIRE(st);
      uint64_t hosted = 0;
      for (auto& w : st->workers)
        hosted += w.actors;
      CHECK(hosted == 1);
    }
    // check_no_leaks (run by with_cluster) asserts the instance is gone.
  });
}

TEST_CASE("a constructor that throws fails creation and every call") {
  test::with_cluster([](runtime& rt) {
    auto f = rt.spawn<fragile>(int32_t{-1});
    auto created = rt.get(f.created(), 10s);
    REQUIRE_FALSE(created);
    CHECK(test::is(created.error(), actors_errc::task_failed));
    CHECK(test::context_of(created.error()).find("negative size")
          != std::string::npos);
    auto r = rt.get(f.call(&fragile::get), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), actors_errc::task_failed));
  });
}
