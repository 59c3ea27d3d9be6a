// A stateful service from durable actors that is killed and comes back.
//
// 1. Three durable accounts take deposits; each deposit is acknowledged only
//    after the account's state is synced to disk.
// 2. The worker process hosting an account is SIGKILLed while deposits are
//    in flight; the account comes back on another worker from its last
//    checkpoint and the in-flight deposits are applied exactly once.
// 3. The whole runtime stops and starts again on the same state directory:
//    the accounts come back by name (`rt.actor<account>(name)`) with their
//    balances; a name never stored gives a clear error.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <stdlib.h>
#include <unistd.h>

#include "dref/actors/all.hpp"

namespace {

class account {
public:
  int64_t deposit(int64_t amount) {
    balance_ += amount;
    return balance_;
  }

  int64_t balance() const {
    return balance_;
  }

  int32_t pid() const {
    return static_cast<int32_t>(getpid());
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, account& x) {
    return f(caf::meta::type_name("bank.account"), x.balance_);
  }

private:
  int64_t balance_ = 0;
};

} // namespace

DREF_ACTOR(account, &account::deposit, &account::balance, &account::pid);

int main() {
  using namespace std::chrono_literals;
  if (auto rc = dref::run_worker_if_requested())
    return *rc;
  char tmpl[] = "/tmp/dref-bank-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    return 1;
  dref::config cfg;
  cfg.state_dir = tmpl;
  const std::vector<std::string> names{"alice", "bob", "carol"};
  int64_t expected = 0;
  bool ok = true;
  {
    dref::runtime rt{cfg};
    if (!rt.running())
      return 1;
    std::vector<dref::actor_handle<account>> accounts;
    for (auto& n : names)
      accounts.push_back(rt.spawn<account>(dref::durable(n)));
    // 1. Acknowledged deposits.
    for (int64_t i = 1; i <= 100; ++i)
      for (auto& a : accounts)
        rt.get(a.call(&account::deposit, i), 10s);
    expected = 100 * 101 / 2;
    auto victim = rt.get(accounts[0].call(&account::pid), 10s);
    std::printf("state in %s; 3 accounts at %lld each; alice lives in pid %d\n",
                tmpl, static_cast<long long>(expected), victim ? *victim : -1);
    // 2. Deposits in flight while alice's worker is killed.
    std::vector<dref::ref<int64_t>> acks;
    for (int i = 0; i < 300; ++i) {
      acks.push_back(accounts[0].call(&account::deposit, int64_t{1}));
      if (i == 100 && victim)
        ::kill(*victim, SIGKILL);
    }
    size_t acked = 0;
    for (auto& a : acks)
      acked += rt.get(a, 20s) ? 1 : 0;
    auto now = rt.get(accounts[0].call(&account::pid), 10s);
    auto bal = rt.get(accounts[0].call(&account::balance), 10s);
    std::printf("killed pid %d during 300 deposits: %zu acknowledged; alice "
                "now in pid %d with balance %lld (expected %lld)\n",
                victim ? *victim : -1, acked, now ? *now : -1,
                bal ? static_cast<long long>(*bal) : -1LL,
                static_cast<long long>(expected + 300));
    ok = ok && acked == 300 && bal && *bal == expected + 300;
  }
  // 3. A new runtime on the same state directory.
  {
    dref::runtime rt{cfg};
    if (!rt.running())
      return 1;
    std::printf("after a full restart:");
    for (auto& n : names) {
      auto a = rt.actor<account>(n);
      if (!a) {
        std::printf("\n%s: %s\n", n.c_str(),
                    caf::to_string(a.error()).c_str());
        ok = false;
        continue;
      }
      auto bal = rt.get(a->call(&account::balance), 10s);
      auto want = expected + (n == "alice" ? 300 : 0);
      std::printf(" %s=%lld", n.c_str(), bal ? static_cast<long long>(*bal) : -1LL);
      ok = ok && bal && *bal == want;
    }
    auto nobody = rt.actor<account>("dave");
    std::printf("\nrt.actor(\"dave\"): %s\n",
                nobody ? "found?!" : caf::to_string(nobody.error()).c_str());
    ok = ok && !nobody;
    std::printf("every acknowledged deposit applied exactly once: %s\n",
                ok ? "yes" : "NO");
  }
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return ok ? 0 : 1;
}
