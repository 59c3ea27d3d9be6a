// Typed arrays end to end (issue 11, 5(b)): a task fills an array of
// int64_t through `make_array_writer` (in the node store when large, on the
// heap when small), returns it; another task and the driver read it with
// `as_array<int64_t>` and check every value; reading it as another type is
// refused with a reason in words. Real worker processes; each test ends
// with the no-leak check of `test::with_cluster`.

#include "test_util.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

// Value i of the arrays the tasks make with `seed`.
int64_t element(int64_t seed, size_t i) {
  return static_cast<int64_t>(i) * 3 - seed;
}

// What a reading task saw.
struct array_report {
  int32_t pid = 0;
  uint64_t count = 0;
  uint32_t elem_size = 0;
  bool aligned = false;  // data() aligned to buffer_alignment
  uint64_t mismatches = 0; // elements not equal to element(seed, i)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, array_report& x) {
  return f(caf::meta::type_name("test.array_report"), x.pid, x.count,
           x.elem_size, x.aligned, x.mismatches);
}

array_report report_on(const buffer& b, int64_t seed) {
  auto view = b.as_array<int64_t>();
  if (!view)
    throw std::runtime_error("as_array failed: "
                             + caf::to_string(view.error()));
  array_report r;
  r.pid = static_cast<int32_t>(getpid());
  r.count = view->size();
  r.elem_size = b.elem_size();
  r.aligned = reinterpret_cast<uintptr_t>(view->data()) % buffer_alignment
              == 0;
  for (size_t i = 0; i < view->size(); ++i)
    if ((*view)[i] != element(seed, i))
      ++r.mismatches;
  return r;
}

// -- tasks --------------------------------------------------------------------

// Fills `count` elements in place; fails unless they lie in the node store
// exactly when `in_node` says.
buffer fill_array(int64_t count, int64_t seed, bool in_node) {
  auto w = make_array_writer<int64_t>(static_cast<size_t>(count));
  if (!w)
    throw std::runtime_error("make_array_writer failed: "
                             + caf::to_string(w.error()));
  if (w->in_node_store() != in_node)
    throw std::runtime_error(in_node ? "array not in the node store"
                                     : "array unexpectedly in the node store");
  if (reinterpret_cast<uintptr_t>(w->data()) % buffer_alignment != 0)
    throw std::runtime_error("array writer's elements not 16-byte aligned");
  for (size_t i = 0; i < w->size(); ++i)
    (*w)[i] = element(seed, i);
  return std::move(*w).finish();
}

array_report read_array(const buffer& b, int64_t seed) {
  return report_on(b, seed);
}

// Reads the array as 32-bit elements: the error's text, or "" if viewed.
std::string read_as_int32(const buffer& b) {
  auto view = b.as_array<int32_t>();
  return view ? std::string{} : caf::to_string(view.error().context());
}

// The array inside another value: serialized with it (one copy).
struct labelled_array {
  std::string label;
  buffer values;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, labelled_array& x) {
  return f(caf::meta::type_name("test.labelled_array"), x.label, x.values);
}

labelled_array fill_labelled(std::string label, int64_t count, int64_t seed) {
  // Large: in the node store while filled, then serialized into the result.
  return labelled_array{std::move(label), fill_array(count, seed, true)};
}

array_report read_labelled(const labelled_array& x, int64_t seed) {
  return report_on(x.values, seed);
}

// Puts the array it fills (dref::put) and returns the ref.
ref<buffer> put_array(int64_t count, int64_t seed) {
  auto r = dref::put(fill_array(count, seed, true));
  if (!r)
    throw std::runtime_error("put failed: " + caf::to_string(r.error()));
  return std::move(*r);
}

} // namespace

DREF_REMOTE(fill_array);
DREF_REMOTE(read_array);
DREF_REMOTE(read_as_int32);
DREF_REMOTE(fill_labelled);
DREF_REMOTE(read_labelled);
DREF_REMOTE(put_array);

namespace {

// Checks a report of `count` elements, all as made with their seed.
void check_report(const array_report& r, uint64_t count) {
  CHECK(r.count == count);
  CHECK(r.elem_size == sizeof(int64_t));
  CHECK(r.aligned);
  CHECK(r.mismatches == 0);
}

// Checks in the driver what `b` holds.
void check_in_driver(const caf::expected<buffer>& b, uint64_t count,
                     int64_t seed) {
  REQUIRE_MESSAGE(b, test::why(b));
  auto r = report_on(*b, seed);
  check_report(r, count);
}

} // namespace

TEST_CASE("a large typed array filled in the node store by a task is read "
          "with as_array by another task and by the driver") {
  test::with_cluster([](runtime& rt) {
    constexpr int64_t count = int64_t{1} << 20; // 8 MiB: in the node store
    auto arr = rt.call(fill_array, count, int64_t{5}, true);
    auto read = rt.get(rt.call(read_array, arr, int64_t{5}), 30s);
    REQUIRE_MESSAGE(read, test::why(read));
    check_report(*read, count);
    CHECK(read->pid != static_cast<int32_t>(getpid()));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1); // sealed once, read in place
    // The driver's get maps the same segment and views the array too.
    check_in_driver(rt.get(arr, 30s), count, 5);
    // Read as another element type, it is refused with the reason.
    auto wrong = rt.get(rt.call(read_as_int32, arr), 30s);
    REQUIRE_MESSAGE(wrong, test::why(wrong));
    INFO(*wrong);
    CHECK(wrong->find("holds elements of 8 bytes, not of the 4 bytes")
          != std::string::npos);
  });
}

TEST_CASE("a small typed array made on the heap travels inline and is read "
          "with as_array by another task and by the driver") {
  test::with_cluster([](runtime& rt) {
    constexpr int64_t count = 100; // 800 bytes: below the inline limit
    auto arr = rt.call(fill_array, count, int64_t{9}, false);
    auto read = rt.get(rt.call(read_array, arr, int64_t{9}), 30s);
    REQUIRE_MESSAGE(read, test::why(read));
    check_report(*read, count);
    check_in_driver(rt.get(arr, 30s), count, 9);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 0);
  });
}

TEST_CASE("a typed array inside another value keeps its element size") {
  test::with_cluster([](runtime& rt) {
    constexpr int64_t count = 50000; // 400 KB: the value goes to the store
    auto x = rt.call(fill_labelled, std::string{"odd"}, count, int64_t{2});
    auto read = rt.get(rt.call(read_labelled, x, int64_t{2}), 30s);
    REQUIRE_MESSAGE(read, test::why(read));
    check_report(*read, count);
    auto got = rt.get(x, 30s);
    REQUIRE_MESSAGE(got, test::why(got));
    CHECK(got->label == "odd");
    check_report(report_on(got->values, 2), count);
  });
}

TEST_CASE("a typed array a task puts and one the driver puts are read with "
          "as_array") {
  test::with_cluster([](runtime& rt) {
    constexpr int64_t count = 30000; // 240 KB
    auto r = rt.get(rt.call(put_array, count, int64_t{4}), 30s);
    REQUIRE_MESSAGE(r, test::why(r));
    auto read = rt.get(rt.call(read_array, *r, int64_t{4}), 30s);
    REQUIRE_MESSAGE(read, test::why(read));
    check_report(*read, count);
    check_in_driver(rt.get(*r, 30s), count, 4);
    // The driver's own array, large: sealed in the node store by rt.put.
    std::vector<int64_t> xs(static_cast<size_t>(count));
    for (size_t i = 0; i < xs.size(); ++i)
      xs[i] = element(6, i);
    auto mine = rt.put(make_array_buffer(std::move(xs)));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 2);
    auto theirs = rt.get(rt.call(read_array, mine, int64_t{6}), 30s);
    REQUIRE_MESSAGE(theirs, test::why(theirs));
    check_report(*theirs, count);
  });
}
