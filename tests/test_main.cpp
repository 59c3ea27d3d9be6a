#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "dref/actors/runtime.hpp"

#include "child_process.hpp"

int main(int argc, char** argv) {
  // Workers of the runtimes started by tests are this binary again.
  if (auto rc = dref::run_worker_if_requested())
    return *rc;
  // A test started this binary as a child program (child_process.hpp).
  if (auto rc = dref::test::run_child_if_requested(); rc >= 0)
    return rc;
  // `--seed=N` and `--rounds=N` steer the randomized tests (the same as
  // DREF_SEED / DREF_ROUNDS); doctest sees the other arguments.
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--seed=", 7) == 0)
      setenv("DREF_SEED", argv[i] + 7, 1);
    else if (std::strncmp(argv[i], "--rounds=", 9) == 0)
      setenv("DREF_ROUNDS", argv[i] + 9, 1);
    else
      rest.push_back(argv[i]);
  }
  doctest::Context ctx;
  ctx.applyCommandLine(static_cast<int>(rest.size()), rest.data());
  return ctx.run();
}
