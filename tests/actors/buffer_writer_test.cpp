// Unit tests of `dref::buffer_writer` and `dref::array_writer<T>` outside a
// worker (heap bytes): the element size they record, the alignment of their
// bytes, and the typed buffer's round trip through its serialized form.
// The node-store side runs with real workers in typed_array_test.cpp.

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dref/actors/buffer_writer.hpp"
#include "dref/actors/serialization.hpp"
#include "dref/store/error.hpp"

#include "test_util.hpp"

using namespace dref;

namespace {

std::string context_text(const caf::error& err) {
  if (err.context().match_elements<std::string>())
    return err.context().get_as<std::string>(0);
  return {};
}

template <class T>
std::string why_not(const caf::expected<T>& x) {
  return x ? std::string{"a value"} : context_text(x.error());
}

} // namespace

TEST_CASE("an array writer makes a typed buffer that as_array views in "
          "place") {
  auto w = make_array_writer<int64_t>(1000);
  REQUIRE_MESSAGE(w, why_not(w));
  CHECK_FALSE(w->in_node_store()); // not in a worker
  REQUIRE(w->size() == 1000);
  CHECK(reinterpret_cast<uintptr_t>(w->data()) % buffer_alignment == 0);
  for (size_t i = 0; i < w->size(); ++i)
    (*w)[i] = static_cast<int64_t>(i * i) - 7;
  auto written = w->data();
  auto b = std::move(*w).finish();
  CHECK(w->size() == 0); // empty after finish
  CHECK(b.elem_size() == sizeof(int64_t));
  CHECK(b.size() == 1000 * sizeof(int64_t));
  auto view = b.as_array<int64_t>();
  REQUIRE_MESSAGE(view, why_not(view));
  CHECK(view->data() == written); // no copy
  CHECK((*view)[999] == 999 * 999 - 7);
}

TEST_CASE("a typed buffer from an array writer keeps its element size "
          "through its serialized form") {
  auto w = make_array_writer<float>(3);
  REQUIRE_MESSAGE(w, why_not(w));
  (*w)[0] = 1.0f;
  (*w)[1] = 2.5f;
  (*w)[2] = -4.0f;
  blob bytes;
  REQUIRE_FALSE(to_blob(std::move(*w).finish(), bytes));
  buffer back;
  REQUIRE_FALSE(from_blob(bytes, back));
  auto view = back.as_array<float>();
  REQUIRE_MESSAGE(view, why_not(view));
  CHECK(std::vector<float>(view->begin(), view->end())
        == std::vector<float>{1.0f, 2.5f, -4.0f});
  // Read as another element size, it is refused with the reason.
  auto wrong = back.as_array<double>();
  REQUIRE_FALSE(wrong);
  CHECK(test::is(wrong.error(), store_errc::invalid_argument));
}

TEST_CASE("a byte writer with an element size records it") {
  auto w = make_buffer_writer(24, 8);
  REQUIRE_MESSAGE(w, why_not(w));
  CHECK(w->elem_size() == 8);
  auto b = std::move(*w).finish();
  CHECK(b.elem_size() == 8);
  CHECK(b.as_array<uint64_t>());
  // Without one it makes plain bytes, which as_array refuses.
  auto plain = make_buffer_writer(24);
  REQUIRE_MESSAGE(plain, why_not(plain));
  auto p = std::move(*plain).finish();
  CHECK(p.elem_size() == 0);
  CHECK_FALSE(p.as_array<uint64_t>());
}

TEST_CASE("a byte writer refuses a size that is not a whole number of "
          "elements") {
  auto w = make_buffer_writer(10, 4);
  REQUIRE_FALSE(w);
  CHECK(test::is(w.error(), store_errc::invalid_argument));
  CHECK(context_text(w.error())
        == "a typed buffer of 10 bytes is not a whole number of elements of "
           "4 bytes");
}

TEST_CASE("an array writer refuses a count whose size overflows") {
  auto w = make_array_writer<double>(SIZE_MAX / 4);
  REQUIRE_FALSE(w);
  CHECK(test::is(w.error(), store_errc::invalid_argument));
}
