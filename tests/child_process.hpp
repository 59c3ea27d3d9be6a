#pragma once

// Test programs that run as a child process of a test: a test re-executes
// its own binary with DREF_TEST_CHILD=<name> (see `spawn_child`), and
// tests/test_main.cpp runs the function registered under that name instead
// of the tests. Used to kill a whole driver (with its workers) by pid.

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dref::test {

/// The child programs by name. Filled before `main` (`child_program`).
std::map<std::string, std::function<int()>>& child_programs();

/// Registers `fn` as child program `name` at static-initialization time.
struct child_program {
  child_program(const char* name, std::function<int()> fn) {
    child_programs()[name] = std::move(fn);
  }
};

/// Starts this test binary again as child program `name`, with `env`
/// ("KEY=value") added to the environment; returns its pid or -1. The
/// caller reaps it.
int spawn_child(const std::string& name, const std::vector<std::string>& env);

/// Waits up to `limit_ms` for the child (or orphan adopted by this
/// subreaper) `pid` to exit and reaps it; false if it is still running.
bool wait_reaped(int pid, int limit_ms);

/// If DREF_TEST_CHILD names a child program, runs it and returns its exit
/// code (127 for an unknown name); otherwise returns -1.
int run_child_if_requested();

} // namespace dref::test
