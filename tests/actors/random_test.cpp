// A randomized workload: many rounds of random puts, calls (with values,
// with refs, fan-in of refs made on different workers), actor calls and
// drops, checking every value a live ref can still be fetched with the value
// computed locally, and at the end that every table and store is empty.
//
// Fixed seed by default (reproducible in CI); DREF_SEED=<n> and
// DREF_ROUNDS=<n> run other or longer workloads.

#include "test_util.hpp"

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace dref;
using namespace std::chrono_literals;

namespace {

int64_t r_add(int64_t a, int64_t b) {
  return a + b;
}

int64_t r_mix(int64_t a, int64_t b, int64_t c) {
  return a * 3 + b * 5 - c;
}

int64_t r_slow(int64_t a, int32_t us) {
  std::this_thread::sleep_for(std::chrono::microseconds{us});
  return a + 1;
}

std::vector<int64_t> r_spread(int64_t a, int32_t n) {
  return std::vector<int64_t>(static_cast<size_t>(n), a);
}

int64_t r_first(const std::vector<int64_t>& v) {
  return v.empty() ? -1 : v.front() + static_cast<int64_t>(v.size());
}

struct r_acc {
  int64_t total = 0;
  int64_t add(int64_t x) {
    return total += x;
  }
};

// A live ref and the value it must resolve to.
struct tracked {
  ref<int64_t> r;
  int64_t expect;
};

uint64_t env_or(const char* name, uint64_t fallback) {
  auto v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

} // namespace

DREF_REMOTE(r_add);
DREF_REMOTE(r_mix);
DREF_REMOTE(r_slow);
DREF_REMOTE(r_spread);
DREF_REMOTE(r_first);
DREF_ACTOR(r_acc, &r_acc::add);

TEST_CASE("random puts, calls, actor calls and drops keep every live ref "
          "correct and leave nothing behind") {
  auto seed = env_or("DREF_SEED", 20261126);
  auto rounds = env_or("DREF_ROUNDS", 300);
  INFO("seed " << seed << ", rounds " << rounds);
  test::with_cluster([&](runtime& rt) {
    std::mt19937_64 rng{seed};
    auto pick = [&](size_t n) {
      return static_cast<size_t>(rng() % n);
    };
    std::vector<tracked> live;
    auto acc = rt.spawn<r_acc>();
    int64_t acc_total = 0;
    std::vector<std::pair<ref<int64_t>, int64_t>> acc_results;
    for (uint64_t round = 0; round < rounds; ++round) {
      auto value = static_cast<int64_t>(rng() % 1000);
      switch (pick(8)) {
        case 0: // put
          live.push_back({rt.put(value), value});
          break;
        case 1: // call with values
          live.push_back({rt.call(r_add, value, int64_t{1}), value + 1});
          break;
        case 2: // call with a ref (chain)
          if (!live.empty()) {
            auto& a = live[pick(live.size())];
            live.push_back({rt.call(r_add, a.r, value), a.expect + value});
          }
          break;
        case 3: // fan-in of three refs, possibly from different workers
          if (live.size() >= 3) {
            auto& a = live[pick(live.size())];
            auto& b = live[pick(live.size())];
            auto& c = live[pick(live.size())];
            live.push_back({rt.call(r_mix, a.r, b.r, c.r),
                            a.expect * 3 + b.expect * 5 - c.expect});
          }
          break;
        case 4: // a slow producer with a consumer queued behind it
          if (!live.empty()) {
            auto& a = live[pick(live.size())];
            auto s = rt.call(r_slow, a.r, static_cast<int32_t>(pick(2000)));
            live.push_back({rt.call(r_add, s, a.r), a.expect + 1 + a.expect});
          }
          break;
        case 5: { // a large intermediate value (stored at its worker)
          auto v = rt.call(r_spread, value, int32_t{20000});
          live.push_back({rt.call(r_first, v), value + 20000});
          break;
        }
        case 6: // actor call
          if (!live.empty() && pick(2) == 0) {
            auto& a = live[pick(live.size())];
            acc_total += a.expect;
            acc_results.emplace_back(acc.call(&r_acc::add, a.r), acc_total);
          } else {
            acc_total += value;
            acc_results.emplace_back(acc.call(&r_acc::add, value), acc_total);
          }
          break;
        default: // drop a few refs
          for (size_t k = pick(4); k > 0 && !live.empty(); --k) {
            auto i = pick(live.size());
            live[i] = std::move(live.back());
            live.pop_back();
          }
      }
      // Every 25 rounds: every live ref still resolves to its value.
      if (round % 25 == 24) {
        for (auto& t : live) {
          auto v = rt.get(t.r, 30s);
          REQUIRE_MESSAGE(v, test::why(v));
          CHECK(*v == t.expect);
        }
      }
    }
    for (auto& t : live) {
      auto v = rt.get(t.r, 30s);
      REQUIRE_MESSAGE(v, test::why(v));
      CHECK(*v == t.expect);
    }
    for (auto& [r, expect] : acc_results) {
      auto v = rt.get(r, 30s);
      REQUIRE(v);
      CHECK(*v == expect);
    }
    live.clear();
    acc_results.clear();
  });
}
