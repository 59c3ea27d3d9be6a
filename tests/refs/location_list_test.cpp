// Unit tests of location_list, the 8-byte set of workers holding a copy.

#include <doctest/doctest.h>

#include <algorithm>
#include <utility>

#include "dref/refs/location_list.hpp"

using namespace dref;

TEST_CASE("a location list holds one worker inline and more on the heap") {
  static_assert(sizeof(location_list) == 8);
  location_list xs;
  CHECK(xs.empty());
  xs.push_back(7);
  CHECK(xs == std::vector<worker_id>{7});
  for (worker_id w = 10; w < 20; ++w)
    xs.push_back(w);
  CHECK_EQ(xs.size(), 11u);
  CHECK_EQ(xs.front(), 7u);
  CHECK_EQ(*(xs.end() - 1), 19u);
  xs.erase(std::find(xs.begin(), xs.end(), 12u));
  CHECK_EQ(xs.size(), 10u);
  CHECK(std::find(xs.begin(), xs.end(), 12u) == xs.end());
}

TEST_CASE("a location list copies and moves without sharing its ids") {
  location_list a;
  a.push_back(1);
  a.push_back(2);
  location_list b{a};
  b.push_back(3);
  CHECK(a == std::vector<worker_id>{1, 2});
  CHECK(b == std::vector<worker_id>{1, 2, 3});
  location_list c{std::move(b)};
  CHECK(b.empty());
  CHECK(c == std::vector<worker_id>{1, 2, 3});
  location_list one;
  one.push_back(9);
  c = one;
  CHECK(c == std::vector<worker_id>{9});
  one.erase(one.begin());
  CHECK(one.empty());
  one.push_back(4);
  CHECK(one == std::vector<worker_id>{4});
}
