#pragma once

// The bank the chaos tests run: durable accounts that record the id of
// every operation they apply, transfers as two calls (withdraw, then
// deposit) with ids derived from the transfer's number, and the checks
// that the total is conserved and every acknowledged operation was applied
// exactly once.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "caf/meta/type_name.hpp"

namespace dref::test::chaos {

/// A durable account. `ops_` lists every operation applied, in order, so a
/// duplicate or a lost operation shows in its state (it does not dedup:
/// that would hide the runtime's mistakes).
class account {
public:
  int64_t apply(int64_t op, int64_t amount) {
    balance_ += amount;
    ops_.push_back(op);
    return balance_;
  }

  int64_t balance() const {
    return balance_;
  }

  std::vector<int64_t> ops() const {
    return ops_;
  }

  int32_t pid() const {
    return static_cast<int32_t>(::getpid());
  }

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, account& x) {
    return f(caf::meta::type_name("chaos.account"), x.balance_, x.ops_);
  }

private:
  int64_t balance_ = 0;
  std::vector<int64_t> ops_;
};

constexpr int accounts = 100;
constexpr int64_t initial_balance = 1000;

/// The operation that gives account `i` its initial balance.
inline int64_t init_op(int i) {
  return -(i + 1);
}

/// Transfer `t` withdraws with op 2t and deposits with op 2t+1.
inline int64_t withdraw_op(int64_t t) {
  return 2 * t;
}

inline int64_t deposit_op(int64_t t) {
  return 2 * t + 1;
}

inline std::string account_name(int i) {
  return "chaos-acct-" + std::to_string(i);
}

/// One transfer as the driver saw it.
struct transfer {
  int from = 0;
  int to = 0;
  int64_t amount = 0;
  bool withdraw_acked = false;
  bool deposit_acked = false;
};

/// Checks the bank against what the drivers saw; returns the violations
/// found (empty: the bank is right). `ops` and `balances` are per account
/// as read from the actors; `transfers` by transfer number. Every
/// transfer must be all or nothing, every acknowledged operation applied
/// exactly once, no operation applied twice or made up, each balance the
/// sum of its operations, and the total conserved.
inline std::vector<std::string>
check_bank(const std::vector<std::vector<int64_t>>& ops,
           const std::vector<int64_t>& balances,
           const std::map<int64_t, transfer>& transfers) {
  std::vector<std::string> bad;
  std::vector<std::set<int64_t>> applied(ops.size());
  int64_t total = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    int64_t sum = 0;
    for (auto op : ops[i]) {
      if (!applied[i].insert(op).second)
        bad.push_back(account_name(static_cast<int>(i)) + " applied op "
                      + std::to_string(op) + " twice");
      if (op < 0) {
        if (op != init_op(static_cast<int>(i)))
          bad.push_back(account_name(static_cast<int>(i))
                        + " applied a foreign init op");
        sum += initial_balance;
        continue;
      }
      auto t = transfers.find(op / 2);
      if (t == transfers.end()) {
        bad.push_back(account_name(static_cast<int>(i)) + " applied op "
                      + std::to_string(op) + " of no transfer");
        continue;
      }
      sum += op % 2 == 0 ? -t->second.amount : t->second.amount;
    }
    if (applied[i].count(init_op(static_cast<int>(i))) == 0)
      bad.push_back(account_name(static_cast<int>(i)) + " lacks its init op");
    if (sum != balances[i])
      bad.push_back(account_name(static_cast<int>(i)) + " has balance "
                    + std::to_string(balances[i]) + " but its ops sum to "
                    + std::to_string(sum));
    total += balances[i];
  }
  for (auto& [t, x] : transfers) {
    bool w = applied[x.from].count(withdraw_op(t)) > 0;
    bool d = applied[x.to].count(deposit_op(t)) > 0;
    if (x.withdraw_acked && !w)
      bad.push_back("acknowledged withdraw of transfer " + std::to_string(t)
                    + " is not applied");
    if (x.deposit_acked && !d)
      bad.push_back("acknowledged deposit of transfer " + std::to_string(t)
                    + " is not applied");
    if (w != d)
      bad.push_back("transfer " + std::to_string(t) + " is half done");
  }
  auto want = static_cast<int64_t>(ops.size()) * initial_balance;
  if (total != want)
    bad.push_back("total is " + std::to_string(total) + ", not "
                  + std::to_string(want));
  return bad;
}

} // namespace dref::test::chaos
