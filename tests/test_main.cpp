#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "dref/actors/runtime.hpp"

#include "child_process.hpp"

int main(int argc, char** argv) {
  // Workers of the runtimes started by tests are this binary again.
  if (auto rc = dref::run_worker_if_requested())
    return *rc;
  // A test started this binary as a child program (child_process.hpp).
  if (auto rc = dref::test::run_child_if_requested(); rc >= 0)
    return rc;
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
