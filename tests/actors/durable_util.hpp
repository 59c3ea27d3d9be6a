#pragma once

// Helpers shared by the durable-actor tests.

#include "test_util.hpp"

#include <filesystem>
#include <optional>
#include <string>

#include "dref/persist/record_codec.hpp"

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

/// The newest checkpoint of durable actor `name` in `store` (durable actors
/// alternate between the `actor_state` and `actor_state_alt` families).
inline std::optional<checkpoint> newest_checkpoint(const checkpoint_store& store,
                                                   const std::string& name) {
  std::optional<checkpoint> result;
  for (auto cf : {column_family::actor_state, column_family::actor_state_alt}) {
    auto bytes = store.read(cf, name);
    REQUIRE(bytes);
    if (!*bytes)
      continue;
    auto cp = record_codec::decode(name, **bytes);
    REQUIRE(cp);
    if (!result || cp->version > result->version)
      result = std::move(*cp);
  }
  return result;
}

} // namespace dref::test
