// Unit tests of type_tag: the stable, readable names that task arguments,
// results and ref descriptors carry, and that type_mismatch errors show.
// They must be equal in separately built programs, so each is checked
// against its exact spelling, never against another type_tag call.

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "caf/meta/type_name.hpp"

#include "dref/refs/ref.hpp"
#include "dref/refs/type_tag.hpp"

using namespace dref;

namespace tag_test {

struct point {
  int32_t x = 0;
  int32_t y = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, point& p) {
  return f(caf::meta::type_name("point"), p.x, p.y);
}

// Counts constructions: the name is read from one default-constructed
// instance, once.
inline int constructed = 0;

struct counted {
  counted() {
    ++constructed;
  }
  int32_t n = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, counted& x) {
  return f(caf::meta::type_name("tag_test.counted"), x.n);
}

// An inspect without a type name, and a type without inspect.
struct unnamed {
  int32_t n = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unnamed& x) {
  return f(x.n);
}

enum class color : uint8_t { red, green };

} // namespace tag_test

namespace {

// No mangled name ever shows ("NSt7__cxx11...", "i", "St6vector...").
bool readable(const std::string& name) {
  return name.find("__cxx11") == std::string::npos
         && name.find("NSt") == std::string::npos
         && name.find("St6") == std::string::npos;
}

} // namespace

TEST_CASE("built-in types are named by kind and size") {
  CHECK_EQ(type_tag<bool>(), "bool");
  CHECK_EQ(type_tag<char>(), "char");
  CHECK_EQ(type_tag<int8_t>(), "int8");
  CHECK_EQ(type_tag<int16_t>(), "int16");
  CHECK_EQ(type_tag<int32_t>(), "int32");
  CHECK_EQ(type_tag<int>(), "int32");
  CHECK_EQ(type_tag<int64_t>(), "int64");
  CHECK_EQ(type_tag<uint8_t>(), "uint8");
  CHECK_EQ(type_tag<uint16_t>(), "uint16");
  CHECK_EQ(type_tag<uint32_t>(), "uint32");
  CHECK_EQ(type_tag<uint64_t>(), "uint64");
  CHECK_EQ(type_tag<float>(), "float");
  CHECK_EQ(type_tag<double>(), "double");
  CHECK_EQ(type_tag<long double>(), "long double");
  CHECK_EQ(type_tag<const int32_t>(), "int32");
}

TEST_CASE("integer types of the same size and sign share their name") {
  static_assert(sizeof(long) == 8 && sizeof(long long) == 8);
  CHECK_EQ(type_tag<long>(), "int64");
  CHECK_EQ(type_tag<long long>(), "int64");
  CHECK_EQ(type_tag<unsigned long long>(), "uint64");
}

TEST_CASE("strings and standard containers are named after their elements") {
  CHECK_EQ(type_tag<std::string>(), "std::string");
  CHECK_EQ(type_tag<std::u16string>(), "std::u16string");
  CHECK_EQ(type_tag<std::vector<int32_t>>(), "std::vector<int32>");
  CHECK_EQ(type_tag<std::vector<char>>(), "std::vector<char>");
  CHECK_EQ(type_tag<std::vector<std::vector<std::string>>>(),
           "std::vector<std::vector<std::string>>");
  CHECK_EQ((type_tag<std::map<std::string, int64_t>>()),
           "std::map<std::string, int64>");
  CHECK_EQ((type_tag<std::unordered_map<int32_t, double>>()),
           "std::unordered_map<int32, double>");
  CHECK_EQ(type_tag<std::set<uint8_t>>(), "std::set<uint8>");
  CHECK_EQ((type_tag<std::pair<int32_t, std::string>>()),
           "std::pair<int32, std::string>");
  CHECK_EQ((type_tag<std::tuple<bool, int16_t, float>>()),
           "std::tuple<bool, int16, float>");
  CHECK_EQ(type_tag<std::tuple<>>(), "std::tuple<>");
  CHECK_EQ(type_tag<std::optional<int32_t>>(), "std::optional<int32>");
  CHECK_EQ((type_tag<std::array<int32_t, 4>>()), "std::array<int32, 4>");
}

TEST_CASE("refs are named after the type of the value they name") {
  CHECK_EQ(type_tag<ref<int64_t>>(), "dref::ref<int64>");
  CHECK_EQ(type_tag<std::vector<ref<std::string>>>(),
           "std::vector<dref::ref<std::string>>");
}

TEST_CASE("a class is named by the type name its inspect gives") {
  CHECK_EQ(type_tag<tag_test::point>(), "point");
  CHECK_EQ(type_tag<std::vector<tag_test::point>>(), "std::vector<point>");
  CHECK_EQ((type_tag<std::map<std::string, ref<tag_test::point>>>()),
           "std::map<std::string, dref::ref<point>>");
}

TEST_CASE("reading a class's name constructs one instance once") {
  auto before = tag_test::constructed;
  CHECK_EQ(type_tag<tag_test::counted>(), "tag_test.counted");
  CHECK_EQ(type_tag<tag_test::counted>(), "tag_test.counted");
  CHECK_EQ(tag_test::constructed, before + 1);
}

TEST_CASE("a type without a name of its own gets its readable C++ name") {
  CHECK_EQ(type_tag<tag_test::unnamed>(), "tag_test::unnamed");
  CHECK_EQ(type_tag<tag_test::color>(), "tag_test::color");
  // The fallback spells std::string the short way too.
  auto name = detail::demangled_name(typeid(std::string));
  CHECK(readable(name));
  CHECK_EQ(name.rfind("std::basic_string<char", 0), 0u);
}

TEST_CASE("no type name is a mangled name") {
  for (auto& name :
       {type_tag<std::string>(), type_tag<std::vector<std::string>>(),
        type_tag<tag_test::unnamed>(), type_tag<ref<std::string>>(),
        type_tag<std::map<std::string, std::string>>()})
    CHECK_MESSAGE(readable(name), name);
}
