// Type mismatches that only show at run time, with real workers: a ref of
// the wrong type given to a function called by name; a ref inside a result
// whose descriptor names another type than the caller's ref (two types of
// the same name, as two separately built programs may have); and a ref in
// a plain CAF message read as a ref of another type. Each ends in
// `type_mismatch` naming both types readably, never a mangled name, and
// nothing leaks: the mismatched refs are counted and freed like any other.

#include "test_util.hpp"

#include <stdexcept>
#include <string>

#include "caf/all.hpp"
#include "caf/io/all.hpp"

using namespace dref;
using namespace std::chrono_literals;

namespace {

int64_t tm_twice(int64_t x) {
  return 2 * x;
}

// A worker-side read of a ref it was given: the error in words, or the
// value.
std::string tm_read_number(ref<int64_t> r) {
  auto v = dref::get(r);
  return v ? "value " + std::to_string(*v) : dref::to_string(v.error());
}

// Two types of one name: the worker's result holds a ref to a string, the
// caller reads it as a box holding a ref to a number.
struct text_box {
  ref<std::string> item;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, text_box& x) {
  return f(caf::meta::type_name("test.box"), x.item);
}

struct number_box {
  ref<int64_t> item;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, number_box& x) {
  return f(caf::meta::type_name("test.box"), x.item);
}

text_box tm_make_box(std::string text) {
  return text_box{dref::put(std::move(text)).value()};
}

// A message whose sender and receiver disagree on the ref's type (as two
// builds with different declarations would): written from `text`, read
// into `number`.
struct skewed_note {
  ref<std::string> text;
  ref<int64_t> number;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, skewed_note& x) {
  if constexpr (Inspector::reads_state)
    return f(caf::meta::type_name("test.skewed_note"), x.text);
  else
    return f(caf::meta::type_name("test.skewed_note"), x.number);
}

using tm_stop_atom = caf::atom_constant<caf::atom("tm_stop")>;

// A plain CAF actor in a worker: resolves the number a note refers to and
// answers with the value or the error in words.
caf::behavior reader_fn(caf::event_based_actor* self) {
  return {
    [self](const skewed_note& note) {
      auto rp = self->make_response_promise();
      dref::then(
        self, note.number,
        [rp](int64_t v) mutable { rp.deliver("value " + std::to_string(v)); },
        [rp](const caf::error& err) mutable {
          rp.deliver(dref::to_string(err));
        });
      return rp;
    },
    [self](tm_stop_atom) { self->quit(); },
  };
}

int32_t tm_open_reader() {
  auto sys = dref::worker_system();
  if (sys == nullptr)
    throw std::runtime_error("not in a worker");
  auto reader = sys->spawn(reader_fn);
  auto port = sys->middleman().publish(reader, 0, "127.0.0.1");
  if (!port)
    throw std::runtime_error(sys->render(port.error()));
  return *port;
}

// Both type names in words, no compiler mangling.
void check_names(const std::string& text) {
  INFO(text);
  CHECK(text.find("int64") != std::string::npos);
  CHECK(text.find("std::string") != std::string::npos);
  CHECK(text.find("__cxx11") == std::string::npos);
  CHECK(text.find("NSt") == std::string::npos);
}

} // namespace

DREF_REMOTE(tm_twice);
DREF_REMOTE(tm_read_number);
DREF_REMOTE(tm_make_box);
DREF_REMOTE(tm_open_reader);
DREF_MESSAGE_TYPE(skewed_note, "test.skewed_note");

TEST_CASE("a ref of the wrong type called by name gives type_mismatch "
          "naming both types") {
  test::with_cluster([](runtime& rt) {
    auto text = rt.put(std::string{"seven"});
    auto r = rt.get(rt.call_by_name<int64_t>("tm_twice", text), 10s);
    REQUIRE_FALSE(r);
    CHECK(test::is(r.error(), refs_errc::type_mismatch));
    check_names(test::context_of(r.error()));
    CHECK(test::context_of(r.error()).find("tm_twice") != std::string::npos);
    // The right type by name works.
    auto ok = rt.get(rt.call_by_name<int64_t>("tm_twice", int64_t{21}), 10s);
    REQUIRE_MESSAGE(ok, test::why(ok));
    CHECK_EQ(*ok, 42);
  });
}

TEST_CASE("a ref read from a descriptor of another type fails its reads "
          "with type_mismatch, in the driver and in a worker") {
  test::with_cluster([](runtime& rt) {
    // The result's type name matches ("test.box"): only the descriptor of
    // the ref inside tells that it names a string.
    auto box = rt.get(rt.call_by_name<number_box>("tm_make_box",
                                                  std::string{"hello"}),
                      10s);
    REQUIRE_MESSAGE(box, test::why(box));
    REQUIRE(box->item.valid());
    auto v = rt.get(box->item, 10s);
    REQUIRE_FALSE(v);
    CHECK(test::is(v.error(), refs_errc::type_mismatch));
    check_names(test::context_of(v.error()));
    CHECK_EQ(dref::to_string(v.error()),
             "dref_refs: type_mismatch (a ref<int64> names a value of type "
             "std::string)");
    // Given to a task as the value of an int64_t: refused before it runs.
    auto twice = rt.get(rt.call(tm_twice, box->item), 10s);
    REQUIRE_FALSE(twice);
    CHECK(test::is(twice.error(), refs_errc::type_mismatch));
    check_names(test::context_of(twice.error()));
    // Given as a ref: its descriptor names the string again, and the
    // worker's read fails the same way.
    auto read = rt.get(rt.call(tm_read_number, box->item), 10s);
    REQUIRE_MESSAGE(read, test::why(read));
    CHECK(read->find("type_mismatch") != std::string::npos);
    check_names(*read);
    // Read as what it is, the same value is fine.
    auto right = rt.get(rt.call_by_name<text_box>("tm_make_box",
                                                  std::string{"hello"}),
                        10s);
    REQUIRE_MESSAGE(right, test::why(right));
    auto text = rt.get(right->item, 10s);
    REQUIRE_MESSAGE(text, test::why(text));
    CHECK_EQ(*text, "hello");
  });
}

TEST_CASE("a ref in a plain CAF message read as another type gives "
          "type_mismatch to the receiving actor") {
  test::with_cluster([](runtime& rt) {
    auto port = rt.get(rt.call(tm_open_reader), 10s);
    REQUIRE_MESSAGE(port, test::why(port));
    auto reader = rt.system().middleman().remote_actor(
      "127.0.0.1", static_cast<uint16_t>(*port));
    REQUIRE(reader);
    std::string answer;
    {
      skewed_note note;
      note.text = rt.put(std::string{"seven"});
      caf::scoped_actor self{rt.system()};
      self->request(*reader, 30s, note)
        .receive([&](const std::string& text) { answer = text; },
                 [&](caf::error& err) { FAIL(rt.system().render(err)); });
    }
    CHECK(answer.find("type_mismatch") != std::string::npos);
    check_names(answer);
    caf::anon_send(*reader, tm_stop_atom::value);
  });
}
