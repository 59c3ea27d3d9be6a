// Main of the store test binaries: a helper process (a node store driven
// on command by a test in another process) is this binary started again.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "dref/store/tools/helper_process.hpp"

int main(int argc, char** argv) {
  if (auto rc = dref::tools::run_store_helper_if_requested())
    return *rc;
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
