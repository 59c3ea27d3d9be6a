// Unit tests of `dref::buffer` as a serialized type: its wire form and when
// reading it back copies nothing (`zero_copy_scope`).

#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dref/actors/serialization.hpp"

using namespace dref;

namespace {

struct with_buffer {
  int32_t before = 0;
  buffer data;
  std::string after;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, with_buffer& x) {
  return f(caf::meta::type_name("test.with_buffer"), x.before, x.data,
           x.after);
}

blob bytes_of_struct(const std::string& payload) {
  with_buffer x{7, make_buffer(payload), "tail"};
  blob out;
  REQUIRE_FALSE(to_blob(x, out));
  return out;
}

} // namespace

TEST_CASE("a buffer serializes as the same bytes as a vector of char") {
  std::string payload = "zero-copy bytes";
  blob a;
  blob b;
  REQUIRE_FALSE(to_blob(make_buffer(payload), a));
  REQUIRE_FALSE(
    to_blob(std::vector<char>(payload.begin(), payload.end()), b));
  CHECK(a == b);
}

TEST_CASE("a buffer read outside a zero-copy scope owns a copy of its bytes") {
  auto bytes = bytes_of_struct("abcdef");
  with_buffer x;
  REQUIRE_FALSE(from_blob(bytes, x));
  CHECK(x.before == 7);
  CHECK(x.after == "tail");
  REQUIRE(x.data.size() == 6);
  CHECK(std::memcmp(x.data.data(), "abcdef", 6) == 0);
  // Not a view of the serialized bytes.
  auto first = bytes.data();
  auto last = bytes.data() + bytes.size();
  CHECK_FALSE((x.data.data() >= first && x.data.data() < last));
  bytes.assign(bytes.size(), 0); // the copy does not change
  CHECK(std::memcmp(x.data.data(), "abcdef", 6) == 0);
}

TEST_CASE("a buffer read inside a zero-copy scope views the source's bytes "
          "and keeps them alive") {
  auto owned = std::make_shared<blob>(bytes_of_struct("abcdef"));
  std::weak_ptr<blob> watch = owned;
  std::vector<buffer> sources{
    buffer{owned->data(), owned->size(), 0, owned}};
  with_buffer x;
  {
    zero_copy_scope scope{sources};
    REQUIRE_FALSE(from_bytes(owned->data(), owned->size(), x));
  }
  REQUIRE(x.data.size() == 6);
  CHECK(x.data.data() >= owned->data());
  CHECK(x.data.data() + 6 <= owned->data() + owned->size());
  CHECK(std::memcmp(x.data.data(), "abcdef", 6) == 0);
  CHECK(x.after == "tail");
  // The view holds the source: dropping every other handle keeps it.
  sources.clear();
  owned.reset();
  CHECK_FALSE(watch.expired());
  CHECK(std::memcmp(x.data.data(), "abcdef", 6) == 0);
  x.data = buffer{};
  CHECK(watch.expired());
}

TEST_CASE("a buffer whose bytes lie outside every source is copied") {
  auto bytes = bytes_of_struct("abcdef");
  blob other(64, 'x');
  std::vector<buffer> sources{buffer{other.data(), other.size(), 0, nullptr}};
  with_buffer x;
  {
    zero_copy_scope scope{sources};
    REQUIRE_FALSE(from_blob(bytes, x));
  }
  REQUIRE(x.data.size() == 6);
  CHECK_FALSE((x.data.data() >= bytes.data()
               && x.data.data() < bytes.data() + bytes.size()));
  CHECK(std::memcmp(x.data.data(), "abcdef", 6) == 0);
}

TEST_CASE("a truncated buffer fails to deserialize") {
  auto bytes = bytes_of_struct("abcdef");
  bytes.resize(6); // cuts into the buffer's bytes
  with_buffer x;
  CHECK(from_blob(bytes, x));
}
