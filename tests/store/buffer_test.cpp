// Unit tests of `dref::buffer` as a typed array: `as_array<T>` views a
// buffer made as an array of `T` and refuses every other one with a reason
// in words; `make_array_buffer` makes such a buffer on the heap.

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dref/store/buffer.hpp"
#include "dref/store/error.hpp"

#include "store_test_util.hpp"

using namespace dref;
using namespace dref::test;

namespace {

struct pair32 {
  int32_t a;
  int32_t b;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("make_array_buffer makes a typed buffer that as_array views "
          "without copying") {
  std::vector<int64_t> xs{1, -2, 3, 1ll << 40};
  auto b = make_array_buffer(xs);
  CHECK(b.elem_size() == sizeof(int64_t));
  CHECK(b.size() == xs.size() * sizeof(int64_t));
  CHECK(reinterpret_cast<uintptr_t>(b.data()) % buffer_alignment == 0);
  auto view = b.as_array<int64_t>();
  REQUIRE_MESSAGE(view, why(view));
  CHECK(static_cast<const void*>(view->data())
        == static_cast<const void*>(b.data()));
  CHECK(std::vector<int64_t>(view->begin(), view->end()) == xs);
  // The view keeps the bytes alive without the buffer.
  b = buffer{};
  CHECK((*view)[3] == 1ll << 40);
}

TEST_CASE("as_array views a typed buffer as another type of the same size") {
  auto b = make_array_buffer(std::vector<pair32>{{1, 2}, {3, 4}});
  auto view = b.as_array<uint64_t>(); // same element size: the caller's call
  REQUIRE_MESSAGE(view, why(view));
  CHECK(view->size() == 2);
}

TEST_CASE("an empty typed buffer is viewed as an empty array") {
  auto b = make_array_buffer(std::vector<double>{});
  auto view = b.as_array<double>();
  REQUIRE_MESSAGE(view, why(view));
  CHECK(view->empty());
}

TEST_CASE("as_array refuses plain bytes and says they are plain bytes") {
  std::vector<char> bytes(16, 'x');
  auto b = make_buffer(bytes);
  auto view = b.as_array<int32_t>();
  REQUIRE_FALSE(view);
  CHECK(store_code(view.error()) == code(store_errc::invalid_argument));
  INFO(context_of(view.error()));
  CHECK(contains(context_of(view.error()), "plain bytes, not an array"));
}

TEST_CASE("as_array refuses elements of another size and names both sizes") {
  auto b = make_array_buffer(std::vector<int32_t>{1, 2, 3, 4});
  auto view = b.as_array<double>();
  REQUIRE_FALSE(view);
  CHECK(store_code(view.error()) == code(store_errc::invalid_argument));
  INFO(context_of(view.error()));
  CHECK(contains(context_of(view.error()),
                 "holds elements of 4 bytes, not of the 8 bytes"));
}

TEST_CASE("as_array refuses a size that is not a whole number of elements") {
  // Only a buffer wrapped around foreign memory can be so.
  auto bytes = std::make_shared<std::vector<int32_t>>(4);
  buffer b{reinterpret_cast<const char*>(bytes->data()), 10, 4, bytes};
  auto view = b.as_array<int32_t>();
  REQUIRE_FALSE(view);
  CHECK(store_code(view.error()) == code(store_errc::invalid_argument));
  INFO(context_of(view.error()));
  CHECK(contains(context_of(view.error()),
                 "10 bytes are not a whole number of elements of 4 bytes"));
}

TEST_CASE("as_array refuses bytes not aligned for the element type") {
  auto bytes = std::make_shared<std::vector<int32_t>>(4);
  auto odd = reinterpret_cast<const char*>(bytes->data()) + 1;
  buffer b{odd, 8, 4, bytes};
  auto view = b.as_array<int32_t>();
  REQUIRE_FALSE(view);
  CHECK(store_code(view.error()) == code(store_errc::invalid_argument));
  INFO(context_of(view.error()));
  CHECK(contains(context_of(view.error()),
                 "not aligned to the 4 bytes the element type needs"));
  // Elements of one byte need no alignment.
  buffer c{odd, 8, 1, bytes};
  CHECK(c.as_array<uint8_t>());
}
