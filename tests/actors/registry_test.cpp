// Unit tests of the registry of remote functions and actor classes, and of
// the blob serialization their invokers use. No runtime, no workers: the
// invokers are called directly on blobs made by to_blob.

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "dref/actors/error.hpp"
#include "dref/actors/registry.hpp"
#include "dref/actors/serialization.hpp"
#include "dref/refs/error.hpp"

using namespace dref;

namespace {

int reg_test_add(int x, int y) {
  return x + y;
}

int reg_test_void_calls = 0;

void reg_test_touch(int n) {
  reg_test_void_calls += n;
}

std::string reg_test_greet(const std::string& name) {
  return "hello " + name;
}

size_t reg_test_sum_all(std::vector<int> xs) {
  size_t sum = 0;
  for (auto x : xs)
    sum += static_cast<size_t>(x);
  return sum;
}

int reg_test_throw(int x) {
  throw std::runtime_error("bad input " + std::to_string(x));
}

int reg_test_answer() noexcept {
  return 42;
}

class reg_test_counter {
public:
  int add(int n) {
    value_ += n;
    return value_;
  }

  int get() const {
    return value_;
  }

  void set_name(const std::string& name) {
    name_ = name;
  }

  const std::string& name() const {
    return name_;
  }

private:
  int value_ = 0;
  std::string name_;
};

template <class T>
blob bytes_of(const T& x) {
  blob out;
  auto err = to_blob(x, out);
  REQUIRE_FALSE(err);
  return out;
}

byte_view view(const blob& x) {
  return byte_view{x.data(), x.size()};
}

template <class T>
T value_of(const blob& in) {
  T x{};
  auto err = from_blob(in, x);
  REQUIRE_FALSE(err);
  return x;
}

bool is_serialization_failed(const caf::error& err) {
  return err.category() == refs_category
         && err.code() == static_cast<uint8_t>(refs_errc::serialization_failed);
}

const function_entry& fn(const std::string& name) {
  auto e = registry::instance().function(name);
  REQUIRE(e != nullptr);
  return *e;
}

} // namespace

DREF_REMOTE(reg_test_add);
DREF_REMOTE(reg_test_touch);
DREF_REMOTE(reg_test_greet);
DREF_REMOTE(reg_test_sum_all);
DREF_REMOTE(reg_test_throw);
DREF_REMOTE(reg_test_answer);
DREF_ACTOR(reg_test_counter, &reg_test_counter::add, &reg_test_counter::get);

TEST_CASE("a registered function is found by its name") {
  auto& e = fn("reg_test_add");
  CHECK(e.name == "reg_test_add");
  CHECK(registry::instance().function("reg_test_not_registered") == nullptr);
}

TEST_CASE("a registered function's address maps back to its name") {
  auto name = registry::instance().function_name(
    detail::fn_address(&reg_test_greet));
  REQUIRE(name != nullptr);
  CHECK(*name == "reg_test_greet");
  auto unknown = registry::instance().function_name(
    detail::fn_address(&reg_test_void_calls));
  CHECK(unknown == nullptr);
}

TEST_CASE("a registered function records the type tags of its result and "
          "arguments") {
  auto& add = fn("reg_test_add");
  CHECK(add.result_type == type_tag<int>());
  REQUIRE(add.arg_types.size() == 2);
  CHECK(add.arg_types[0] == type_tag<int>());
  CHECK(add.arg_types[1] == type_tag<int>());
  // A const reference parameter is tagged with its plain type.
  auto& greet = fn("reg_test_greet");
  CHECK(greet.result_type == type_tag<std::string>());
  REQUIRE(greet.arg_types.size() == 1);
  CHECK(greet.arg_types[0] == type_tag<std::string>());
  // A void function's result is a unit_t.
  auto& touch = fn("reg_test_touch");
  CHECK(touch.result_type == type_tag<unit_t>());
  CHECK(touch.result_type != type_tag<int>());
  // No arguments.
  CHECK(fn("reg_test_answer").arg_types.empty());
}

TEST_CASE("invoking a registered function on serialized arguments returns "
          "its serialized result") {
  auto x = bytes_of(40);
  auto y = bytes_of(2);
  const byte_view args[] = {view(x), view(y)};
  auto res = fn("reg_test_add").invoke(args);
  REQUIRE(res);
  CHECK(value_of<int>(*res) == 42);
}

TEST_CASE("a function taking a const string reference gets the argument's "
          "value") {
  auto name = bytes_of(std::string{"dref"});
  const byte_view args[] = {view(name)};
  auto res = fn("reg_test_greet").invoke(args);
  REQUIRE(res);
  CHECK(value_of<std::string>(*res) == "hello dref");
}

TEST_CASE("a function taking a vector gets all its elements") {
  auto xs = bytes_of(std::vector<int>{1, 2, 3, 4});
  const byte_view args[] = {view(xs)};
  auto res = fn("reg_test_sum_all").invoke(args);
  REQUIRE(res);
  CHECK(value_of<size_t>(*res) == 10);
}

TEST_CASE("a void function runs and returns a serialized unit") {
  reg_test_void_calls = 0;
  auto n = bytes_of(3);
  const byte_view args[] = {view(n)};
  auto res = fn("reg_test_touch").invoke(args);
  REQUIRE(res);
  CHECK(reg_test_void_calls == 3);
  CHECK(*res == bytes_of(unit_t{}));
  unit_t u;
  CHECK_FALSE(from_blob(*res, u));
}

TEST_CASE("a noexcept function with no arguments is registered and invoked") {
  auto res = fn("reg_test_answer").invoke(nullptr);
  REQUIRE(res);
  CHECK(value_of<int>(*res) == 42);
}

TEST_CASE("an exception thrown by a function propagates out of invoke") {
  auto x = bytes_of(7);
  const byte_view args[] = {view(x)};
  CHECK_THROWS_WITH_AS(fn("reg_test_throw").invoke(args), "bad input 7",
                       std::runtime_error);
}

TEST_CASE("invoking with an argument of the wrong size fails with "
          "serialization_failed and does not run the function") {
  reg_test_void_calls = 0;
  blob truncated = bytes_of(5);
  truncated.pop_back();
  const byte_view args[] = {view(truncated)};
  auto res = fn("reg_test_touch").invoke(args);
  REQUIRE_FALSE(res);
  CHECK(is_serialization_failed(res.error()));
  CHECK(reg_test_void_calls == 0);
  // Too long: an int64 where an int was expected.
  blob too_long = bytes_of(int64_t{5});
  const byte_view args2[] = {view(too_long)};
  auto res2 = fn("reg_test_touch").invoke(args2);
  REQUIRE_FALSE(res2);
  CHECK(is_serialization_failed(res2.error()));
  CHECK(reg_test_void_calls == 0);
}

TEST_CASE("a registered actor class is found by name and by type") {
  auto& reg = registry::instance();
  auto by_name = reg.actor_class("reg_test_counter");
  REQUIRE(by_name != nullptr);
  CHECK(by_name->name == "reg_test_counter");
  CHECK(by_name->type == detail::class_key<reg_test_counter>());
  auto by_type = reg.actor_class(std::type_index{typeid(reg_test_counter)});
  CHECK(by_type == by_name);
  CHECK(reg.actor_class("reg_test_no_such_class") == nullptr);
  CHECK(reg.actor_class(std::type_index{typeid(std::string)}) == nullptr);
}

TEST_CASE("an actor class lists its methods in order with their names, "
          "types and keys") {
  auto cls = registry::instance().actor_class("reg_test_counter");
  REQUIRE(cls != nullptr);
  REQUIRE(cls->methods.size() == 2);
  auto& add = cls->methods[0];
  auto& get = cls->methods[1];
  CHECK(add.name == "add");
  CHECK(get.name == "get");
  CHECK(add.result_type == type_tag<int>());
  REQUIRE(add.arg_types.size() == 1);
  CHECK(add.arg_types[0] == type_tag<int>());
  CHECK(get.result_type == type_tag<int>());
  CHECK(get.arg_types.empty());
  CHECK(add.key == detail::method_key(&reg_test_counter::add));
  CHECK(get.key == detail::method_key(&reg_test_counter::get));
}

TEST_CASE("method keys tell apart methods, also of the same signature") {
  auto add = detail::method_key(&reg_test_counter::add);
  auto get = detail::method_key(&reg_test_counter::get);
  auto set_name = detail::method_key(&reg_test_counter::set_name);
  auto name = detail::method_key(&reg_test_counter::name);
  CHECK(add != get);
  CHECK(add != set_name);
  CHECK(get != name);
  CHECK(set_name != name);
  // Stable for the same member pointer.
  CHECK(add == detail::method_key(&reg_test_counter::add));
  // Same type, different method: only the pointer bytes differ.
  using int_method = int (reg_test_counter::*)(int);
  int_method a = &reg_test_counter::add;
  CHECK(detail::method_key(a) == add);
}

TEST_CASE("invoking an actor method runs it on the given instance") {
  auto cls = registry::instance().actor_class("reg_test_counter");
  REQUIRE(cls != nullptr);
  REQUIRE(cls->methods.size() == 2);
  reg_test_counter obj;
  auto five = bytes_of(5);
  const byte_view args[] = {view(five)};
  auto r1 = cls->methods[0].invoke(&obj, args);
  REQUIRE(r1);
  CHECK(value_of<int>(*r1) == 5);
  auto r2 = cls->methods[0].invoke(&obj, args);
  REQUIRE(r2);
  CHECK(value_of<int>(*r2) == 10);
  auto r3 = cls->methods[1].invoke(&obj, nullptr);
  REQUIRE(r3);
  CHECK(value_of<int>(*r3) == 10);
  CHECK(obj.get() == 10);
}

TEST_CASE("the method name list splits names and drops class qualifiers") {
  auto names = detail::class_registrar<reg_test_counter>::split_names(
    "&ns::cls::a, &cls::b,c", 3);
  REQUIRE(names.size() == 3);
  CHECK(names[0] == "a");
  CHECK(names[1] == "b");
  CHECK(names[2] == "c");
}

TEST_CASE("a constructor key names the class and its argument types") {
  CHECK(registry::constructor_key("C", {}) == "C()");
  CHECK(registry::constructor_key("C", {"i", "s"}) == "C(i,s)");
}

TEST_CASE("values survive a blob round trip") {
  CHECK(value_of<int>(bytes_of(-17)) == -17);
  CHECK(value_of<std::string>(bytes_of(std::string{"abc"})) == "abc");
  CHECK(value_of<std::vector<int>>(bytes_of(std::vector<int>{3, 1, 2}))
        == std::vector<int>{3, 1, 2});
  CHECK(value_of<std::string>(bytes_of(std::string{})).empty());
}

TEST_CASE("to_blob appends to the blob it is given") {
  blob out{'p', 'q'};
  REQUIRE_FALSE(to_blob(int32_t{1}, out));
  CHECK(out.size() == 2 + 4);
  CHECK(out[0] == 'p');
  CHECK(out[1] == 'q');
}

TEST_CASE("from_blob rejects trailing bytes with serialization_failed") {
  auto b = bytes_of(int32_t{7});
  b.push_back('\0');
  int32_t x = 0;
  auto err = from_blob(b, x);
  REQUIRE(err);
  CHECK(is_serialization_failed(err));
  // Two values back to back are not one value.
  blob two = bytes_of(std::string{"a"});
  REQUIRE_FALSE(to_blob(std::string{"b"}, two));
  std::string s;
  CHECK(is_serialization_failed(from_blob(two, s)));
}

TEST_CASE("from_blob rejects truncated input with serialization_failed") {
  auto b = bytes_of(std::string{"hello"});
  b.resize(b.size() - 2);
  std::string s;
  auto err = from_blob(b, s);
  REQUIRE(err);
  CHECK(is_serialization_failed(err));
  int64_t x = 0;
  CHECK(is_serialization_failed(from_blob(blob{}, x)));
  CHECK(is_serialization_failed(from_blob(blob{1, 2, 3}, x)));
}
