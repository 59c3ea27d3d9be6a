// The source of the compile-fail tests (tests/CMakeLists.txt): compiled
// with -fsyntax-only once as it is (the control, which must compile: every
// call below is well typed) and once per DREF_CASE_* macro, each adding one
// ill-typed line that must be refused with dref's own message. The
// functions are only declared: nothing here is linked or run.

#include <cstdint>
#include <string>

#include "dref/actors/all.hpp"

int32_t add(int32_t a, int32_t b);
int64_t twice64(int64_t x);
int64_t read_number(dref::ref<int64_t> r);
std::string greet(std::string name);
double half(double x);

class counter {
public:
  int32_t add(int32_t n);
};

void well_typed(dref::runtime& rt, dref::actor_handle<counter>& h) {
  rt.call(add, 1, 2);                         // int for int32_t: the same
  rt.call(add, int16_t{1}, int8_t{2});        // widening
  rt.call(twice64, 1);                        // int to int64_t: widening
  rt.call(half, 1.5f);                        // float to double: widening
  rt.call(greet, "ada");                      // const char* to std::string
  rt.call(twice64, rt.put(int64_t{1}));       // ref<int64_t> for int64_t
  rt.call(read_number, rt.put(int64_t{1}));   // ref<int64_t> for the same
  auto r = rt.put(int64_t{2});
  rt.call(read_number, r);                    // an lvalue ref, the same
  h.call(&counter::add, 3);
  dref::ref<int64_t> moved{std::move(r)};     // a ref of the same type
#if defined(DREF_CASE_WRONG_REF_RVALUE)
  // A ref<std::string> for a ref<int64_t> parameter: before, an rvalue
  // compiled (through ref(ref_base&&)) and the worker read the string's
  // bytes as an integer.
  rt.call(read_number, rt.put(std::string{"seven"}));
#elif defined(DREF_CASE_WRONG_REF_LVALUE)
  auto text = rt.put(std::string{"seven"});
  rt.call(read_number, text);
#elif defined(DREF_CASE_WRONG_REF_FOR_VALUE)
  rt.call(twice64, rt.put(std::string{"seven"}));
#elif defined(DREF_CASE_REF_CONVERSION)
  dref::ref<int64_t> number{rt.put(std::string{"seven"})};
#elif defined(DREF_CASE_NARROWING)
  rt.call(add, 1.5, 2); // double for int32_t
#elif defined(DREF_CASE_NARROWING_INTEGER)
  rt.call(add, int64_t{1}, 2); // int64_t for int32_t
#elif defined(DREF_CASE_NARROWING_METHOD)
  h.call(&counter::add, 2.5); // double for int32_t, on an actor
#endif
}
