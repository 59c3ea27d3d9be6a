#pragma once

// Helpers shared by the durable-actor tests.

#include "test_util.hpp"

#include <filesystem>
#include <string>

#include <stdlib.h>

namespace dref::test {

/// A fresh state directory for one test, removed at the end.
struct state_dir {
  std::string path;
  state_dir() {
    char tmpl[] = "/tmp/dref-durable-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~state_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  state_dir(const state_dir&) = delete;
  state_dir& operator=(const state_dir&) = delete;
};

/// A small cluster whose checkpoint store lives in `dir`.
inline config durable_cluster(const state_dir& dir, size_t workers = 2) {
  auto cfg = small_cluster(workers);
  cfg.state_dir = dir.path;
  return cfg;
}

} // namespace dref::test
