// Helpers shared by the persist/ unit tests: a fresh temporary directory
// per test, and ways to look into a persist_errc error.

#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"
#include "caf/message.hpp"

#include "dref/persist/error.hpp"

#include "dref/persist/checkpoint_store.hpp"

namespace dref::test {

/// A fresh directory under $TMPDIR (or /tmp) made with mkdtemp, removed
/// with everything in it when the test ends (also when a REQUIRE fails).
class temp_dir {
public:
  temp_dir() {
    auto base = std::getenv("TMPDIR");
    std::string tmpl = std::string{base && *base ? base : "/tmp"}
                       + "/dref_persist_test_XXXXXX";
    std::vector<char> buf{tmpl.begin(), tmpl.end()};
    buf.push_back('\0');
    auto res = mkdtemp(buf.data());
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

  /// A path inside the directory.
  std::string operator/(const std::string& name) const {
    return path_ + "/" + name;
  }

private:
  std::string path_;
};

/// Whether `err` is the persist_errc `code`.
inline bool is(const caf::error& err, persist_errc code) {
  return err.category() == persist_category
         && err.code() == static_cast<uint8_t>(code);
}

/// The context string of an error made by `make_error(code, context)`.
inline std::string context_of(const caf::error& err) {
  if (err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  return {};
}

/// "code (context)", for failure messages.
inline std::string describe(const caf::error& err) {
  if (!err)
    return "no error";
  if (err.category() != persist_category)
    return caf::to_string(err);
  return to_string(static_cast<persist_errc>(err.code())) + " ("
         + context_of(err) + ")";
}

/// What an expected holds, for failure messages (never touches the error
/// of an expected that holds a value).
template <class T>
std::string describe(const caf::expected<T>& x) {
  return x ? std::string{"a value"} : describe(x.error());
}

/// The whole content of a file.
inline std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  REQUIRE(in);
  return std::string{std::istreambuf_iterator<char>{in},
                     std::istreambuf_iterator<char>{}};
}

/// Replaces the content of a file.
inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  REQUIRE(out);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out);
}

/// The files in `dir` whose names end in `suffix`.
inline std::vector<std::string> files_ending_in(const std::string& dir,
                                                const std::string& suffix) {
  std::vector<std::string> result;
  for (auto& entry : std::filesystem::directory_iterator{dir}) {
    auto name = entry.path().filename().string();
    if (name.size() >= suffix.size()
        && name.compare(name.size() - suffix.size(), suffix.size(), suffix)
             == 0)
      result.push_back(entry.path().string());
  }
  return result;
}

/// A batch with one put into the actor_state column family.
inline write_batch put_state(const std::string& key, const std::string& value) {
  write_batch b;
  b.put(column_family::actor_state, key, value);
  return b;
}

/// Reads `key` from the actor_state column family; the read must succeed.
inline std::optional<std::string> read_state(const checkpoint_store& s,
                                             const std::string& key) {
  auto res = s.read(column_family::actor_state, key);
  REQUIRE_MESSAGE(res, describe(res));
  return *res;
}

} // namespace dref::test
