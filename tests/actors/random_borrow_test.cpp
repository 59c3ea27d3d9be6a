// A randomized workload of refs that travel: values put by the driver and
// by workers, refs nested in vectors (by the driver and by tasks), passed
// through tasks, kept in actors' state, and dropped in random order. After
// every step every live ref (and every ref nested in a live value) must
// still be fetchable with the value computed locally; at the end every
// owner table, borrow table and store must be empty.
//
// Fixed seed by default (CI); `--seed=N --rounds=N` (or DREF_SEED /
// DREF_ROUNDS) run other or longer workloads.

#include "test_util.hpp"

#include <cstdlib>
#include <random>
#include <vector>

using namespace dref;
using namespace std::chrono_literals;

namespace {

using int_refs = std::vector<ref<int64_t>>;

// A value owned by the worker that runs this.
ref<int64_t> rb_own(int64_t x) {
  auto r = dref::put(x);
  if (!r)
    throw std::runtime_error("put failed");
  return std::move(*r);
}

// The refs, nested again by a worker (the result holds them).
int_refs rb_nest(int_refs xs) {
  return xs;
}

// Sum of the values of the refs (the worker borrows and reads them).
int64_t rb_sum(int_refs xs) {
  int64_t sum = 0;
  for (auto& x : xs) {
    auto v = dref::get(x);
    if (!v) // a failed get ends the task with its error (never UB)
      throw std::runtime_error(caf::to_string(v.error()));
    sum += *v;
  }
  return sum;
}

// Keeps refs in its state.
struct rb_keeper {
  int_refs kept;
  int64_t keep(int_refs xs) {
    kept.insert(kept.end(), xs.begin(), xs.end());
    return static_cast<int64_t>(kept.size());
  }
  int64_t sum() const {
    return rb_sum(kept);
  }
  void clear() {
    kept.clear();
  }
};

// A live ref and what it must resolve to.
struct live_int {
  ref<int64_t> r;
  int64_t expect;
};

struct live_nest {
  ref<int_refs> r;
  std::vector<int64_t> expect;
};

uint64_t env_or(const char* name, uint64_t fallback) {
  auto v = std::getenv(name);
  return v != nullptr ? std::strtoull(v, nullptr, 10) : fallback;
}

} // namespace

DREF_REMOTE(rb_own);
DREF_REMOTE(rb_nest);
DREF_REMOTE(rb_sum);
DREF_ACTOR(rb_keeper, &rb_keeper::keep, &rb_keeper::sum, &rb_keeper::clear);

TEST_CASE("random passing, nesting, keeping and dropping of refs across "
          "workers keeps every live ref fetchable and leaves nothing "
          "behind") {
  auto seed = env_or("DREF_SEED", 7);
  auto rounds = env_or("DREF_ROUNDS", 150);
  INFO("seed " << seed << ", rounds " << rounds);
  auto cfg = test::small_cluster(3);
  cfg.inline_limit = 64; // some values stay at workers, some travel inline
  test::with_cluster(cfg, [&](runtime& rt) {
    std::mt19937_64 rng{seed};
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    std::vector<live_int> ints;
    std::vector<live_nest> nests;
    std::vector<actor_handle<rb_keeper>> keepers{rt.spawn<rb_keeper>(),
                                                 rt.spawn<rb_keeper>()};
    std::vector<int64_t> kept_sum(keepers.size(), 0);
    auto some_ints = [&](size_t k, int_refs& refs, std::vector<int64_t>& xs) {
      for (size_t i = 0; i < k && !ints.empty(); ++i) {
        auto& x = ints[pick(ints.size())];
        refs.push_back(x.r);
        xs.push_back(x.expect);
      }
    };
    for (uint64_t round = 0; round < rounds; ++round) {
      auto value = static_cast<int64_t>(rng() % 1000);
      switch (pick(9)) {
        case 0: // put by the driver
          ints.push_back({rt.put(value), value});
          break;
        case 1: { // put by a worker (owned there, borrowed here)
          auto outer = rt.call(rb_own, value);
          auto inner = rt.get(outer);
          REQUIRE(inner);
          ints.push_back({std::move(*inner), value});
          break;
        }
        case 2: { // nest refs in a vector put by the driver
          int_refs refs;
          std::vector<int64_t> xs;
          some_ints(1 + pick(5), refs, xs);
          nests.push_back({rt.put(refs), xs});
          break;
        }
        case 3: // a worker nests them again
          if (!nests.empty()) {
            auto& n = nests[pick(nests.size())];
            nests.push_back({rt.call(rb_nest, n.r), n.expect});
          }
          break;
        case 4: // a worker reads a nested vector's refs
          if (!nests.empty()) {
            auto& n = nests[pick(nests.size())];
            int64_t sum = 0;
            for (auto x : n.expect)
              sum += x;
            ints.push_back({rt.call(rb_sum, n.r), sum});
          }
          break;
        case 5: // an actor keeps refs in its state
          if (!nests.empty()) {
            auto i = pick(keepers.size());
            auto& n = nests[pick(nests.size())];
            keepers[i].call(&rb_keeper::keep, n.r);
            for (auto x : n.expect)
              kept_sum[i] += x;
          }
          break;
        case 6: { // an actor reads what it keeps, or lets go of it
          auto i = pick(keepers.size());
          if (pick(3) == 0) {
            keepers[i].call(&rb_keeper::clear);
            kept_sum[i] = 0;
          } else {
            ints.push_back({keepers[i].call(&rb_keeper::sum), kept_sum[i]});
          }
          break;
        }
        default: // drop a few refs of either kind
          for (size_t k = 1 + pick(3); k > 0; --k) {
            if (!ints.empty() && pick(2) == 0) {
              auto i = pick(ints.size());
              ints[i] = std::move(ints.back());
              ints.pop_back();
            } else if (!nests.empty()) {
              auto i = pick(nests.size());
              nests[i] = std::move(nests.back());
              nests.pop_back();
            }
          }
      }
      // Bound the live set so that checking all of it every step is cheap.
      while (ints.size() > 24)
        ints.erase(ints.begin() + static_cast<long>(pick(ints.size())));
      while (nests.size() > 12)
        nests.erase(nests.begin() + static_cast<long>(pick(nests.size())));
      // After every step, every live ref and every nested ref resolves.
      for (auto& x : ints) {
        auto v = rt.get(x.r, 30s);
        REQUIRE_MESSAGE(v, "round " << round << ": "
                             << caf::to_string(v.error()));
        CHECK(*v == x.expect);
      }
      for (auto& n : nests) {
        auto v = rt.get(n.r, 30s);
        REQUIRE_MESSAGE(v, "round " << round << ": "
                             << caf::to_string(v.error()));
        REQUIRE(v->size() == n.expect.size());
        for (size_t i = 0; i < v->size(); ++i) {
          auto inner = rt.get((*v)[i], 30s);
          REQUIRE_MESSAGE(inner, "round " << round << ": "
                                   << caf::to_string(inner.error()));
          CHECK(*inner == n.expect[i]);
        }
      }
    }
    ints.clear();
    nests.clear();
    for (auto& k : keepers)
      rt.get(k.call(&rb_keeper::clear), 30s).value();
  });
}
