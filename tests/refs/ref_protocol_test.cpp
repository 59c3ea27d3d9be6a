// Deterministic tests of the reference protocol (issue 17): simulated
// processes, each with its own ref_core, whose messages the test delivers
// in every order it can (small scenarios) or in seeded random orders
// (larger ones, `--seed=N`), with processes killed at chosen steps. After
// every event every live ref must be readable (its owner still has the
// object, or the owner died); at the end every table must be empty. The
// model of the network is in sim_cluster.hpp. Each test prints how many
// orders it explored.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>

#include "sim_cluster.hpp"

using namespace dref;
using namespace dref::sim;

namespace {

// Under the sanitizers (Debug, ASan+UBSan: some 20x slower) the larger
// scenarios are cut off after this many orders, so that each test stays
// well within its ctest timeout; the plain build explores every order.
#ifdef DREF_SANITIZED_BUILD
constexpr size_t order_budget = 4000;
#else
constexpr size_t order_budget = 200000;
#endif

// Runs every order of `f` and checks the outcome; prints the count.
void explore(const char* what, size_t procs, const explorer::scenario& f,
             explorer::options opts = {}) {
  opts.max_orders = std::min(opts.max_orders, order_budget);
  auto res = explorer::all(procs, f, opts);
  std::printf("%s: %zu orders explored%s\n", what, res.orders,
              !res.failure.empty() ? " (stopped at a failure)"
              : res.exhaustive     ? " (all of them)"
                                   : " (cut off)");
  INFO(res.failure);
  CHECK(res.failure.empty());
  CHECK(res.orders > 1);
}

bool registered(const cluster& c, size_t p, const object_id& id) {
  auto e = const_cast<cluster&>(c).core(p).borrowed().find(id);
  return e != nullptr && e->registered;
}

// Drops the user's ref at `p` if it has one (a message carrying it may
// have been lost with its sender).
step drop_if_held(size_t p, const object_id* id, size_t sender) {
  return step{"drop at " + std::to_string(p) + " if it arrived",
              [=](cluster& c) {
                if (c.holds(p, *id))
                  c.drop(p, *id);
              },
              [=](const cluster& c) {
                if (c.holds(p, *id))
                  return true;
                for (auto& m : c.in_flight())
                  if (m.from == sender && m.to == p
                      && m.what == message::kind::carry)
                    return false;
                return true;
              }};
}

} // namespace

TEST_CASE("a ref passed on through two processes stays readable until the "
          "last one drops it, in every order") {
  explore("borrower chain", 3, [](cluster&) {
    auto x = std::make_shared<object_id>();
    return std::vector<step>{
      {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
      {"0 sends X to 1", [x](cluster& c) { c.send_ref(0, 1, *x); }},
      {"1 sends X to 2", [x](cluster& c) { c.send_ref(1, 2, *x); },
       [x](const cluster& c) { return c.holds(1, *x); }},
      {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
      {"1 drops X", [x](cluster& c) { c.drop(1, *x); }},
      {"2 drops X", [x](cluster& c) { c.drop(2, *x); },
       [x](const cluster& c) { return c.holds(2, *x); }},
    };
  });
}

TEST_CASE("a borrow made again while the release of the earlier one is late "
          "is not undone by that release") {
  explore("re-borrow against a late release", 2, [](cluster&) {
    auto x = std::make_shared<object_id>();
    return std::vector<step>{
      {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
      {"0 sends X to 1", [x](cluster& c) { c.send_ref(0, 1, *x); }},
      {"1 drops X once registered", [x](cluster& c) { c.drop(1, *x); },
       [x](const cluster& c) { return registered(c, 1, *x); }},
      {"0 sends X to 1 again", [x](cluster& c) { c.send_ref(0, 1, *x); }},
      {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
      {"1 reads X, then drops it", [x](cluster& c) { c.drop(1, *x); },
       [x](const cluster& c) { return registered(c, 1, *x); }},
    };
  });
}

TEST_CASE("an owner dropping its ref while a borrower forwards it frees the "
          "object only after the last borrower") {
  explore("owner drops while a borrower forwards", 3, [](cluster&) {
    auto x = std::make_shared<object_id>();
    return std::vector<step>{
      {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
      {"0 sends X to 1", [x](cluster& c) { c.send_ref(0, 1, *x); }},
      {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
      {"1 forwards X to 2", [x](cluster& c) { c.send_ref(1, 2, *x); },
       [x](const cluster& c) { return c.holds(1, *x); }},
      {"1 drops X", [x](cluster& c) { c.drop(1, *x); }},
      {"2 drops X", [x](cluster& c) { c.drop(2, *x); },
       [x](const cluster& c) { return c.holds(2, *x); }},
    };
  });
}

TEST_CASE("a release cannot overtake its own registration") {
  explore("release right after arrival", 2, [](cluster&) {
    auto x = std::make_shared<object_id>();
    return std::vector<step>{
      {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
      {"0 sends X to 1", [x](cluster& c) { c.send_ref(0, 1, *x); }},
      {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
      {"1 copies X and drops one copy at once",
       [x](cluster& c) {
         c.copy(1, *x);
         c.drop(1, *x);
       },
       [x](const cluster& c) { return c.holds(1, *x); }},
      {"1 drops X", [x](cluster& c) { c.drop(1, *x); }},
    };
  });
}

TEST_CASE("a borrower that dies during its registration leaves nothing "
          "behind once its holds expire") {
  for (bool lose : {false, true})
    explore(lose ? "borrower dies mid-registration, losing its messages"
                 : "borrower dies mid-registration",
            2, [lose](cluster&) {
              auto x = std::make_shared<object_id>();
              return std::vector<step>{
                {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
                {"0 sends X to 1", [x](cluster& c) { c.send_ref(0, 1, *x); }},
                {"1 dies", [lose](cluster& c) { c.kill(1, lose); },
                 [x](const cluster& c) { return c.holds(1, *x); }},
                {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
              };
            });
}

TEST_CASE("a borrower that hands a ref on in a plain message and dies at "
          "once does not get it freed under the receiver") {
  // Defect (a) of issue 17: P (1) borrows X from O (0), O drops its ref, P
  // sends X to Q (2) and dies at once. P's transit hold dies with P; O must
  // keep X until Q's registration arrives.
  for (bool lose : {false, true})
    explore(lose ? "borrower forwards and dies, losing its messages"
                 : "borrower forwards and dies",
            3, [lose](cluster&) {
              auto x = std::make_shared<object_id>();
              return std::vector<step>{
                {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
                {"0 sends X to 1", [x](cluster& c) { c.send_ref(0, 1, *x); }},
                {"0 drops X once 1 is registered",
                 [x](cluster& c) { c.drop(0, *x); },
                 [x](const cluster& c) { return registered(c, 1, *x); }},
                {"1 sends X to 2", [x](cluster& c) { c.send_ref(1, 2, *x); }},
                {"1 dies at once", [lose](cluster& c) { c.kill(1, lose); }},
                drop_if_held(2, x.get(), 1),
              };
            });
}

TEST_CASE("a worker that keeps a task's argument, passes it on and dies "
          "does not get it freed under the receiver") {
  explore("task argument forwarded by a dying worker", 3, [](cluster&) {
    auto x = std::make_shared<object_id>();
    return std::vector<step>{
      {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
      {"0 submits a task keeping X to 1",
       [x](cluster& c) { c.submit(0, 1, *x, true); }},
      {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
      {"1 sends X to 2", [x](cluster& c) { c.send_ref(1, 2, *x); },
       [x](const cluster& c) { return c.holds(1, *x); }},
      {"1 dies at once", [](cluster& c) { c.kill(1, false); }},
      drop_if_held(2, x.get(), 1),
    };
  });
}

TEST_CASE("an owner that dies while a borrower holds its object leaves the "
          "borrower a failed ref and nothing to release") {
  for (bool lose : {false, true})
    explore(lose ? "owner dies mid-transfer, losing its messages"
                 : "owner dies mid-transfer",
            2, [lose](cluster&) {
              auto x = std::make_shared<object_id>();
              return std::vector<step>{
                {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
                {"0 sends X to 1", [x](cluster& c) { c.send_ref(0, 1, *x); }},
                {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
                {"0 dies", [lose](cluster& c) { c.kill(0, lose); }},
                drop_if_held(1, x.get(), 0),
              };
            });
}

TEST_CASE("a result holding a ref keeps that ref alive until its owner's "
          "registration is answered, though the result is freed at once") {
  explore("nested ref in a freed result", 2, [](cluster&) {
    auto x = std::make_shared<object_id>();
    auto r = std::make_shared<object_id>();
    return std::vector<step>{
      {"1 puts X", [x](cluster& c) { *x = c.put(1); }},
      {"1 makes result R for 0, holding X",
       [x, r](cluster& c) { *r = c.produce(1, 0, *x); }},
      {"0 reads R (gets X)", [r](cluster& c) { c.read_contained(0, *r); },
       [r](const cluster& c) {
         auto e = const_cast<cluster&>(c).core(0).owned().find(*r);
         return e != nullptr && e->state == object_state::ready;
       }},
      {"0 drops R", [r](cluster& c) { c.drop(0, *r); }},
      {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
    };
  });
}

TEST_CASE("duplicated protocol messages change no count") {
  explorer::options opts;
  opts.duplicates = true;
  explore("borrow and release with duplicates", 2,
          [](cluster&) {
            auto x = std::make_shared<object_id>();
            return std::vector<step>{
              {"0 puts X", [x](cluster& c) { *x = c.put(0); }},
              {"0 sends X to 1", [x](cluster& c) { c.send_ref(0, 1, *x); }},
              {"0 drops X", [x](cluster& c) { c.drop(0, *x); }},
              {"1 drops X", [x](cluster& c) { c.drop(1, *x); },
               [x](const cluster& c) { return c.holds(1, *x); }},
            };
          },
          opts);
}

// -- randomized ---------------------------------------------------------------

namespace {

// A random program of `n` steps over 4 processes: puts, sends, copies,
// drops, tasks, and one death; drawn from `rng`, each step choosing its
// arguments from the state it finds.
std::vector<step> random_program(std::mt19937_64& rng, size_t n) {
  std::vector<step> steps;
  auto held = [](cluster& c, size_t p, uint64_t pick) -> object_id {
    std::vector<object_id> ids;
    for (uint64_t q = 1; q <= c.size(); ++q)
      for (uint64_t s = 1; s <= 16; ++s)
        if (c.holds(p, object_id{q, s}))
          ids.push_back(object_id{q, s});
    return ids.empty() ? object_id{} : ids[pick % ids.size()];
  };
  auto victim = static_cast<size_t>(rng() % 4);
  auto death_at = static_cast<size_t>(rng() % n);
  for (size_t i = 0; i < n; ++i) {
    auto p = static_cast<size_t>(rng() % 4);
    auto q = static_cast<size_t>(rng() % 4);
    auto pick = rng();
    auto what = rng() % 6;
    if (i == death_at) {
      bool lose = rng() % 2 == 0;
      steps.push_back({"kill " + std::to_string(victim),
                       [victim, lose](cluster& c) { c.kill(victim, lose); }});
      continue;
    }
    steps.push_back(
      {"random action",
       [=](cluster& c) {
         if (!c.alive(p))
           return;
         auto id = held(c, p, pick);
         switch (what) {
           case 0:
             c.put(p);
             break;
           case 1:
             if (id.valid() && q != p && c.alive(q))
               c.send_ref(p, q, id);
             break;
           case 2:
             if (id.valid())
               c.copy(p, id);
             break;
           case 3:
           case 4:
             if (id.valid())
               c.drop(p, id);
             break;
           case 5:
             if (id.valid() && q != p && c.alive(q))
               c.submit(p, q, id, pick % 2 == 0);
             break;
         }
       }});
  }
  // At the end every live process drops what it holds.
  steps.push_back({"everyone drops everything", [held](cluster& c) {
                     for (size_t p = 0; p < c.size(); ++p)
                       for (auto id = held(c, p, 0); c.alive(p) && id.valid();
                            id = held(c, p, 0))
                         c.drop(p, id);
                   }});
  return steps;
}

} // namespace

TEST_CASE("random programs over four processes with a death keep every live "
          "ref readable and leave nothing behind") {
  auto seed = explorer::seed(20261204);
  constexpr size_t programs = 300;
  size_t orders = 0;
  for (size_t i = 0; i < programs; ++i) {
    std::mt19937_64 rng{seed + i};
    auto prog = random_program(rng, 14);
    // The last step may leave refs arriving later (in flight): it runs
    // again until nothing is held, through a final step that waits.
    auto f = [&prog](cluster&) {
      auto steps = prog;
      steps.push_back({"drop what arrived late",
                       [](cluster& c) {
                         for (size_t p = 0; p < c.size(); ++p)
                           for (uint64_t q = 1; q <= c.size(); ++q)
                             for (uint64_t s = 1; s <= 16; ++s)
                               while (c.alive(p) && c.holds(p, {q, s}))
                                 c.drop(p, {q, s});
                       },
                       [](const cluster& c) {
                         for (auto& m : c.in_flight())
                           if (m.what == message::kind::carry
                               || m.what == message::kind::task)
                             return false;
                         return c.tasks().empty();
                       }});
      return steps;
    };
    auto res = explorer::random(4, f, seed * 31 + i, 20, {});
    orders += res.orders;
    INFO("program " << i << " of seed " << seed);
    REQUIRE_MESSAGE(res.failure.empty(), res.failure);
  }
  std::printf("random programs: %zu orders explored (seed %llu)\n", orders,
              static_cast<unsigned long long>(seed));
}
