// Helpers shared by the node store tests: unique store names, temporary
// spill directories, and a look at the file system to prove nothing leaked.

#pragma once

#include <doctest/doctest.h>

#include "caf/expected.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <dirent.h>
#include <unistd.h>

#include "caf/error.hpp"
#include "caf/message.hpp"

#include "dref/store/error.hpp"

namespace dref::test {

/// Why `x` holds no value, for a test's failure message: "a value" when it
/// holds one (doctest may render messages of passing checks, e.g. with
/// `-s`, and `error()` of a valued `expected` is not an error).
template <class T>
std::string why(const caf::expected<T>& x) {
  return x ? std::string{"a value"} : caf::to_string(x.error());
}


/// A store name no other test (or test process) uses.
inline std::string unique_store_name(const std::string& tag) {
  static std::atomic<int> n{0};
  return tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

/// Names in `dir` that start with `prefix`.
inline std::vector<std::string> files_with_prefix(const std::string& dir,
                                                  const std::string& prefix) {
  std::vector<std::string> out;
  if (auto d = ::opendir(dir.c_str())) {
    while (auto e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && n.compare(0, prefix.size(), prefix) == 0)
        out.push_back(n);
    }
    ::closedir(d);
  }
  return out;
}

/// The prefix of every file of the stores named `name` of this user, in
/// any process: `dref.<uid>.<name>.`
inline std::string files_of_store(const std::string& name) {
  return "dref." + std::to_string(::getuid()) + "." + name + ".";
}

/// A fresh directory (mkdtemp under $TMPDIR or /tmp), removed at the end.
class temp_dir {
public:
  temp_dir() {
    auto base = std::getenv("TMPDIR");
    std::string tmpl = std::string{base && *base ? base : "/tmp"}
                       + "/dref_store_test_XXXXXX";
    std::vector<char> buf{tmpl.begin(), tmpl.end()};
    buf.push_back('\0');
    auto res = ::mkdtemp(buf.data());
    REQUIRE(res != nullptr);
    path_ = res;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const {
    return path_;
  }
  /// Entries in the directory (any name).
  std::vector<std::string> entries() const {
    return files_with_prefix(path_, "");
  }

private:
  std::string path_;
};

/// The store error code of `err`, or 0.
inline uint8_t store_code(const caf::error& err) {
  return err && err.category() == store_category ? err.code() : 0;
}

inline std::string context_of(const caf::error& err) {
  if (err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  return {};
}

constexpr uint8_t code(store_errc x) {
  return static_cast<uint8_t>(x);
}

} // namespace dref::test

#include <memory>

#include "dref/store/node_store.hpp"
#include "dref/store/tools/helper_process.hpp"

namespace dref::test {

/// pattern(seed) bytes of length n (as the helper process puts them).
inline std::vector<char> pattern(uint64_t seed, size_t n) {
  std::vector<char> v(n);
  tools::fill_pattern(seed, v.data(), n);
  return v;
}

/// A node store in /dev/shm with its own spill directory. At the end of
/// the test it closes the store and checks that no segment, lock or spill
/// file of it is left on the file system.
struct store_fixture {
  temp_dir spill;
  std::string name;
  std::unique_ptr<node_store> store;

  explicit store_fixture(uint64_t capacity, bool spilling = true,
                         std::string tag = "t") {
    name = unique_store_name(tag);
    store_config cfg;
    cfg.name = name;
    cfg.capacity = capacity;
    if (spilling)
      cfg.spill_dir = spill.path();
    auto s = node_store::open(cfg);
    REQUIRE(s);
    store = std::move(*s);
  }

  explicit store_fixture(store_config cfg) {
    name = cfg.name;
    auto s = node_store::open(cfg);
    REQUIRE(s);
    store = std::move(*s);
  }

  /// Segment files (and the lock) of this store in /dev/shm.
  std::vector<std::string> shm_files() const {
    return files_with_prefix("/dev/shm", files_of_store(name));
  }

  /// shm_files() without the kept (reusable) segments of freed objects.
  std::vector<std::string> shm_files_but_pool() const {
    std::vector<std::string> out;
    for (auto& n : shm_files())
      if (n.find(".pool.") == std::string::npos)
        out.push_back(n);
    return out;
  }

  ~store_fixture() {
    store.reset();
    CHECK(shm_files().empty());
    CHECK(spill.entries().empty());
  }
};

} // namespace dref::test
