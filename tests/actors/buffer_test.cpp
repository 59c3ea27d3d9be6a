// Unit tests of `dref::buffer` as a serialized type: its wire form (version
// 2, with the element size; version 1 still read) and when reading it back
// copies nothing (`zero_copy_scope`).

#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"

#include "dref/actors/serialization.hpp"
#include "dref/refs/error.hpp"

#include "test_util.hpp"

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

// The same struct as written before version 2 of the buffer's form, when a
// buffer was written as a vector of char.
struct old_with_buffer {
  int32_t before = 0;
  std::vector<char> data;
  std::string after;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, old_with_buffer& x) {
  return f(caf::meta::type_name("test.with_buffer"), x.before, x.data,
           x.after);
}

// A buffer after a one-byte field: its bytes lie at an odd offset.
struct typed_after_byte {
  int8_t tag = 0;
  buffer data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, typed_after_byte& x) {
  return f(caf::meta::type_name("test.typed_after_byte"), x.tag, x.data);
}

using plain_after_byte = typed_after_byte;

std::vector<unsigned char> header_of(const blob& bytes) {
  return std::vector<unsigned char>(bytes.begin(), bytes.begin() + 16);
}

std::string test_context(const caf::error& err) {
  if (err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  return {};
}

template <class T>
std::string test_why(const caf::expected<T>& x) {
  return x ? std::string{"a value"} : test_context(x.error());
}

blob bytes_of_struct(const std::string& payload) {
  with_buffer x{7, make_buffer(payload), "tail"};
  blob out;
  REQUIRE_FALSE(to_blob(x, out));
  return out;
}

} // namespace

TEST_CASE("a buffer is written in version 2: a 16-byte header with its "
          "element size and byte count, then its bytes") {
  std::string payload = "zero-copy bytes";
  blob plain;
  REQUIRE_FALSE(to_blob(make_buffer(payload), plain));
  REQUIRE(plain.size() == 16 + payload.size());
  CHECK(header_of(plain)
        == std::vector<unsigned char>{0x80, 0x00, 2, 0, 0, 0, 0, 0, //
                                      15, 0, 0, 0, 0, 0, 0, 0});
  CHECK(std::string(plain.begin() + 16, plain.end()) == payload);
  blob typed;
  REQUIRE_FALSE(to_blob(make_array_buffer(std::vector<int32_t>{1, 2, 3}),
                        typed));
  REQUIRE(typed.size() == 16 + 12);
  CHECK(header_of(typed)
        == std::vector<unsigned char>{0x80, 0x00, 2, 0, 4, 0, 0, 0, //
                                      12, 0, 0, 0, 0, 0, 0, 0});
  int32_t second = 0;
  std::memcpy(&second, typed.data() + 16 + 4, 4);
  CHECK(second == 2);
}

TEST_CASE("a typed buffer reads back with its element size and views as an "
          "array") {
  std::vector<double> xs{0.5, 1.5, -2.25};
  blob bytes;
  REQUIRE_FALSE(to_blob(make_array_buffer(xs), bytes));
  buffer back;
  REQUIRE_FALSE(from_blob(bytes, back));
  CHECK(back.elem_size() == sizeof(double));
  CHECK(reinterpret_cast<uintptr_t>(back.data()) % buffer_alignment == 0);
  auto view = back.as_array<double>();
  REQUIRE_MESSAGE(view, test_why(view));
  CHECK(std::vector<double>(view->begin(), view->end()) == xs);
  // A plain buffer stays plain.
  bytes.clear();
  REQUIRE_FALSE(to_blob(make_buffer(std::string{"abc"}), bytes));
  REQUIRE_FALSE(from_blob(bytes, back));
  CHECK(back.elem_size() == 0);
  CHECK(std::string(back.data(), back.size()) == "abc");
}

TEST_CASE("a buffer in the version-1 form (the bytes of a vector of char) "
          "still reads back, as plain bytes") {
  // Lengths of one to three varint bytes, as CAF wrote them before
  // version 2 (e.g. in the durable checkpoints of older builds).
  for (size_t n : {size_t{0}, size_t{1}, size_t{127}, size_t{128},
                   size_t{300}, size_t{16384}, size_t{100000}}) {
    INFO("length " << n);
    std::vector<char> payload(n);
    for (size_t i = 0; i < n; ++i)
      payload[i] = static_cast<char>(i * 7 + 3);
    blob old;
    REQUIRE_FALSE(to_blob(payload, old));
    buffer back;
    REQUIRE_FALSE(from_blob(old, back));
    CHECK(back.elem_size() == 0);
    REQUIRE(back.size() == n);
    CHECK(std::equal(payload.begin(), payload.end(), back.data()));
  }
  // Inside a struct, as a member written before version 2.
  old_with_buffer before{7, {'a', 'b', 'c'}, "tail"};
  blob old;
  REQUIRE_FALSE(to_blob(before, old));
  with_buffer x;
  REQUIRE_FALSE(from_blob(old, x));
  CHECK(x.before == 7);
  CHECK(std::string(x.data.data(), x.data.size()) == "abc");
  CHECK(x.after == "tail");
}

TEST_CASE("a version-1 buffer read inside a zero-copy scope views the "
          "source") {
  old_with_buffer before{7, std::vector<char>(1000, 'q'), "tail"};
  auto owned = std::make_shared<blob>();
  REQUIRE_FALSE(to_blob(before, *owned));
  std::vector<buffer> sources{buffer{owned->data(), owned->size(), 0, owned}};
  with_buffer x;
  {
    zero_copy_scope scope{sources};
    REQUIRE_FALSE(from_bytes(owned->data(), owned->size(), x));
  }
  REQUIRE(x.data.size() == 1000);
  CHECK(x.data.data() >= owned->data());
  CHECK(x.data.data() + 1000 <= owned->data() + owned->size());
  CHECK(x.after == "tail");
}

TEST_CASE("a buffer of an unknown format version is refused in words") {
  blob bytes;
  REQUIRE_FALSE(to_blob(make_buffer(std::string{"abc"}), bytes));
  bytes[2] = 3; // a later version
  buffer back;
  auto outer = from_blob(bytes, back);
  CHECK(test::is(outer, refs_errc::serialization_failed));
  // from_bytes names the value's type and carries the buffer's reason.
  INFO(test_context(outer));
  CHECK(test_context(outer).find("format version 3") != std::string::npos);
  CHECK(test_context(outer).find("dref.buffer") != std::string::npos);
  // The buffer's own reason.
  caf::binary_deserializer source{static_cast<caf::execution_unit*>(nullptr),
                                  bytes.data(), bytes.size()};
  auto err = detail::load_buffer(source, back);
  REQUIRE(err);
  CHECK(test::is(err, refs_errc::serialization_failed));
  INFO(test_context(err));
  CHECK(test_context(err).find("format version 3, this build reads 1 and 2 "
                               "only")
        != std::string::npos);
}

TEST_CASE("a typed buffer that is not a whole number of elements is refused "
          "when written and when read") {
  auto storage = std::make_shared<std::vector<int32_t>>(4);
  buffer odd{reinterpret_cast<const char*>(storage->data()), 10, 4, storage};
  blob bytes;
  auto err = to_blob(odd, bytes);
  CHECK(err); // to_blob reports its own failure: the buffer's is below
  caf::binary_serializer sink{nullptr, bytes};
  auto why_not = detail::save_buffer(sink, odd);
  REQUIRE(why_not);
  CHECK(test_context(why_not).find("10 bytes is not a whole number of "
                                   "elements of 4 bytes")
        != std::string::npos);
  // Read: a header claiming 10 bytes of 4-byte elements.
  blob forged(16 + 10, 0);
  detail::encode_buffer_header(forged.data(), 10, 4);
  buffer back;
  CHECK(test::is(from_blob(forged, back), refs_errc::serialization_failed));
  caf::binary_deserializer source{static_cast<caf::execution_unit*>(nullptr),
                                  forged.data(), forged.size()};
  auto read_err = detail::load_buffer(source, back);
  REQUIRE(read_err);
  CHECK(test::is(read_err, refs_errc::serialization_failed));
  CHECK(test_context(read_err).find("10 bytes is not a whole number of "
                                    "elements of 4 bytes")
        != std::string::npos);
}

TEST_CASE("a version-2 buffer longer than the bytes left fails to "
          "deserialize") {
  blob bytes;
  REQUIRE_FALSE(to_blob(make_array_buffer(std::vector<int64_t>(8)), bytes));
  bytes.resize(16 + 20); // cuts into the elements
  buffer back;
  CHECK(from_blob(bytes, back));
  bytes.resize(10); // cuts into the header
  CHECK(from_blob(bytes, back));
}

TEST_CASE("a typed buffer read inside a zero-copy scope is a view where its "
          "bytes lie aligned and an aligned copy where they do not") {
  std::vector<int32_t> xs{10, 20, 30, 40};
  // Aligned: the buffer is the whole value, its bytes 16 bytes into a
  // heap blob.
  auto whole = std::make_shared<blob>();
  REQUIRE_FALSE(to_blob(make_array_buffer(xs), *whole));
  std::vector<buffer> sources{buffer{whole->data(), whole->size(), 0, whole}};
  buffer a;
  {
    zero_copy_scope scope{sources};
    REQUIRE_FALSE(from_bytes(whole->data(), whole->size(), a));
  }
  CHECK(a.data() == whole->data() + 16);
  REQUIRE(a.as_array<int32_t>());
  // Not aligned: after a one-byte field, the bytes are 17 bytes in.
  typed_after_byte t{1, make_array_buffer(xs)};
  auto nested = std::make_shared<blob>();
  REQUIRE_FALSE(to_blob(t, *nested));
  sources = {buffer{nested->data(), nested->size(), 0, nested}};
  typed_after_byte back;
  {
    zero_copy_scope scope{sources};
    REQUIRE_FALSE(from_bytes(nested->data(), nested->size(), back));
  }
  auto first = nested->data();
  auto last = nested->data() + nested->size();
  CHECK_FALSE((back.data.data() >= first && back.data.data() < last));
  CHECK(reinterpret_cast<uintptr_t>(back.data.data()) % buffer_alignment
        == 0);
  auto view = back.data.as_array<int32_t>();
  REQUIRE_MESSAGE(view, test_why(view));
  CHECK(std::vector<int32_t>(view->begin(), view->end()) == xs);
  // Plain bytes at the same place are viewed: they need no alignment.
  plain_after_byte p{1, make_buffer(std::string{"abcd"})};
  auto plain = std::make_shared<blob>();
  REQUIRE_FALSE(to_blob(p, *plain));
  sources = {buffer{plain->data(), plain->size(), 0, plain}};
  plain_after_byte pback;
  {
    zero_copy_scope scope{sources};
    REQUIRE_FALSE(from_bytes(plain->data(), plain->size(), pback));
  }
  CHECK(pback.data.data() == plain->data() + 17);
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
