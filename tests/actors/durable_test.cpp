// Durable actors: state on disk before each acknowledgement, found again
// after the whole runtime restarts, and recovered on another worker when
// its worker is SIGKILLed, with in-flight calls applied exactly once.

#include "durable_util.hpp"

#include <csignal>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include <stdlib.h>
#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

class account {
public:
  int64_t deposit(int64_t x) {
    balance_ += x;
    ++deposits_;
    return balance_;
  }

  int64_t balance() const {
    return balance_;
  }

  int64_t deposits() const {
    return deposits_;
  }

  int32_t pid() const {
    return static_cast<int32_t>(getpid());
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, account& x) {
    return f(caf::meta::type_name("test.account"), x.balance_, x.deposits_);
  }

private:
  int64_t balance_ = 0;
  int64_t deposits_ = 0;
};

using test::durable_cluster;
using test::state_dir;

} // namespace

DREF_ACTOR(account, &account::deposit, &account::balance, &account::deposits,
           &account::pid);

TEST_CASE("a durable actor's state survives a restart of the whole runtime") {
  state_dir dir;
  {
    runtime rt{durable_cluster(dir)};
    REQUIRE(rt.running());
    auto acct = rt.spawn<account>(durable("acct-1"));
    for (int64_t i = 1; i <= 10; ++i)
      REQUIRE(rt.get(acct.call(&account::deposit, i), 10s));
  }
  {
    runtime rt{durable_cluster(dir)};
    REQUIRE(rt.running());
    auto acct = rt.spawn<account>(durable("acct-1"));
    REQUIRE(rt.get(acct.created(), 10s));
    auto b = rt.get(acct.call(&account::balance), 10s);
    REQUIRE(b);
    CHECK(*b == 55);
    auto other = rt.spawn<account>(durable("acct-2")); // a new name: fresh
    auto ob = rt.get(other.call(&account::balance), 10s);
    REQUIRE(ob);
    CHECK(*ob == 0);
  }
  test::check_no_children();
}

TEST_CASE("a durable actor comes back after its worker is killed") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto acct = rt.spawn<account>(durable("acct-kill"));
    for (int64_t i = 1; i <= 20; ++i)
      REQUIRE(rt.get(acct.call(&account::deposit, i), 10s));
    auto pid = rt.get(acct.call(&account::pid), 10s);
    REQUIRE(pid);
    REQUIRE(::kill(*pid, SIGKILL) == 0);
    for (int64_t i = 21; i <= 30; ++i) {
      auto r = rt.get(acct.call(&account::deposit, i), 10s);
      REQUIRE_MESSAGE(r, test::why(r));
    }
    auto b = rt.get(acct.call(&account::balance), 10s);
    REQUIRE(b);
    CHECK(*b == 30 * 31 / 2);
    auto where = rt.get(acct.call(&account::pid), 10s);
    REQUIRE(where);
    CHECK(*where != *pid);
    test::check_reaped({*pid});
  });
}

TEST_CASE("calls in flight when a durable actor's worker dies apply exactly once") {
  state_dir dir;
  test::with_cluster(durable_cluster(dir), [](runtime& rt) {
    auto acct = rt.spawn<account>(durable("acct-flight"));
    auto pid = rt.get(acct.call(&account::pid), 10s);
    REQUIRE(pid);
    std::vector<ref<int64_t>> acks;
    for (int64_t i = 1; i <= 400; ++i) {
      acks.push_back(acct.call(&account::deposit, int64_t{1}));
      if (i == 200)
        ::kill(*pid, SIGKILL); // some calls done, some in flight, some queued
    }
    for (auto& a : acks) {
      auto r = rt.get(a, 20s);
      REQUIRE_MESSAGE(r, test::why(r));
    }
    auto n = rt.get(acct.call(&account::deposits), 10s);
    auto b = rt.get(acct.call(&account::balance), 10s);
    REQUIRE(n);
    REQUIRE(b);
    CHECK(*n == 400);
    CHECK(*b == 400);
    test::check_reaped({*pid});
  });
}
