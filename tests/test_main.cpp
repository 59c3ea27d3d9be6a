#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "dref/actors/runtime.hpp"

int main(int argc, char** argv) {
  // Workers of the runtimes started by tests are this binary again.
  if (auto rc = dref::run_worker_if_requested())
    return *rc;
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
