#pragma once

// Helpers shared by the distributed tests.

#include <doctest/doctest.h>

#include "caf/expected.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>

#include <sys/wait.h>
#include <string>
#include <thread>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/error.hpp"

#include "dref/actors/all.hpp"

namespace dref::test {

/// Why `x` holds no value, for a test's failure message: "a value" when it
/// holds one (doctest may render messages of passing checks, e.g. with
/// `-s`, and `error()` of a valued `expected` is not an error).
template <class T>
std::string why(const caf::expected<T>& x) {
  return x ? std::string{"a value"} : caf::to_string(x.error());
}


/// A small local cluster for one test.
inline config small_cluster(size_t workers = 2) {
  config cfg;
  cfg.num_workers = workers;
  cfg.start_timeout = std::chrono::seconds{20};
  return cfg;
}

/// True if `err` has code `code` of the enum's category.
template <class E>
bool is(const caf::error& err, E code) {
  return err.code() == static_cast<uint8_t>(code)
         && err.category() == caf::error{make_error(code)}.category();
}

/// The rendered context of an error (its message).
inline std::string context_of(const caf::error& err) {
  return caf::to_string(err.context());
}

/// Waits (bounded) until the owner's table and borrow table, the node
/// store, every worker's store, ref tables and actor table are empty, then
/// asserts it: the no-leak check every distributed test ends with. A
/// worker that just died may still be listed (marked dead, its tables gone
/// with it) until the runtime drops it and frees what it owned: the check
/// waits for that too.
inline void check_no_leaks(runtime& rt) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  runtime_stats st;
  for (;;) {
    auto s = rt.stats(std::chrono::seconds{1});
    if (!s) {
      // A live worker that did not answer in time: ask again.
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                      caf::to_string(s.error()));
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
      continue;
    }
    st = *s;
    bool empty = st.owned_objects == 0 && st.borrowed_objects == 0
                 && st.transit_holds == 0 && st.lingering_holds == 0
                 && st.pending_registrations == 0
                 && st.pending_releases == 0 && st.in_flight_tasks == 0
                 && st.held_tasks == 0 && st.actors == 0
                 && st.node_objects == 0 && st.node_bytes == 0;
    for (auto& w : st.workers)
      empty = empty && w.alive && w.objects == 0 && w.bytes == 0
              && w.actors == 0 && w.refs == 0;
    if (empty || std::chrono::steady_clock::now() > deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  CHECK(st.owned_objects == 0);
  CHECK(st.borrowed_objects == 0);
  CHECK(st.transit_holds == 0);
  CHECK(st.lingering_holds == 0);
  CHECK(st.pending_registrations == 0);
  CHECK(st.pending_releases == 0);
  CHECK(st.in_flight_tasks == 0);
  CHECK(st.held_tasks == 0);
  CHECK(st.actors == 0);
  CHECK(st.node_objects == 0);
  CHECK(st.node_bytes == 0);
  for (auto& w : st.workers) {
    INFO("worker " << w.id << " pid " << w.pid);
    CHECK_MESSAGE(w.alive, "a dead worker is still listed");
    CHECK(w.objects == 0);
    CHECK(w.bytes == 0);
    CHECK(w.actors == 0);
    CHECK(w.refs == 0);
  }
}

/// True while a process with this pid exists.
inline bool process_exists(int pid) {
  return ::kill(pid, 0) == 0 || errno != ESRCH;
}

/// Asserts that none of `pids` exists any more (the runtime reaped them).
inline void check_reaped(const std::vector<int>& pids) {
  for (auto pid : pids) {
    INFO("pid " << pid);
    CHECK_FALSE(process_exists(pid));
  }
}

/// Asserts that this process has no child process left (each ctest case runs
/// in its own process, so every child was started by the test's runtimes).
inline void check_no_children() {
  int status = 0;
  auto res = ::waitpid(-1, &status, WNOHANG);
  auto err = errno; // before a CHECK (its output) can change errno
  CHECK(res == -1);
  CHECK(err == ECHILD);
}

/// Runs a test body against a fresh cluster made with `cfg`, then checks no
/// object, ref or process leaked.
template <class F>
void with_cluster(const config& cfg, F body) {
  std::vector<int> pids;
  {
    runtime rt{cfg};
    REQUIRE_MESSAGE(rt.running(), caf::to_string(rt.status()));
    for (auto& w : rt.workers())
      pids.push_back(w.pid);
    body(rt);
    check_no_leaks(rt);
    for (auto& w : rt.workers())
      pids.push_back(w.pid);
  }
  check_reaped(pids);
  check_no_children();
}

/// The same with `small_cluster(workers)`.
template <class F>
void with_cluster(F body, size_t workers = 2) {
  with_cluster(small_cluster(workers), std::move(body));
}

} // namespace dref::test
