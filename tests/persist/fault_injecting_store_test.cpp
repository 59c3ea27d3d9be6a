// The fault-injecting store: it fails exactly the calls it was told to,
// with the error it was told, and a failed write never reaches the store
// underneath.

#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "dref/persist/checkpoint_store.hpp"
#include "dref/persist/error.hpp"
#include "dref/persist/fault_injecting_store.hpp"

#include "persist_test_util.hpp"

using namespace dref;

namespace {

constexpr auto state = column_family::actor_state;

constexpr auto& put = test::put_state;
constexpr auto& read = test::read_state;

} // namespace

TEST_CASE("without a fault plan every call passes through") {
  memory_checkpoint_store inner;
  fault_injecting_store s{inner};
  REQUIRE_FALSE(s.write(put("k", "v")));
  CHECK(read(s, "k") == std::optional<std::string>{"v"});
  CHECK(read(inner, "k") == std::optional<std::string>{"v"});
  auto ks = s.keys(state);
  REQUIRE(ks);
  CHECK(ks->size() == 1);
  auto st = s.stats();
  CHECK(st.write_calls == 1);
  CHECK(st.forwarded_writes == 1);
  CHECK(st.injected_write_faults == 0);
}

TEST_CASE("the next N writes fail with the chosen error and change nothing") {
  memory_checkpoint_store inner;
  fault_injecting_store s{inner};
  REQUIRE_FALSE(s.write(put("k", "before")));
  s.fail_next_writes(2, persist_errc::disk_full);
  auto e1 = s.write(put("k", "lost-1"));
  auto e2 = s.write(put("k", "lost-2"));
  CHECK_MESSAGE(test::is(e1, persist_errc::disk_full), test::describe(e1));
  CHECK_MESSAGE(test::is(e2, persist_errc::disk_full), test::describe(e2));
  CHECK(read(inner, "k") == std::optional<std::string>{"before"});
  // The third write passes again.
  REQUIRE_FALSE(s.write(put("k", "after")));
  CHECK(read(inner, "k") == std::optional<std::string>{"after"});
  auto st = s.stats();
  CHECK(st.write_calls == 4);
  CHECK(st.forwarded_writes == 2);
  CHECK(st.injected_write_faults == 2);
}

TEST_CASE("an injected io_error is reported as io_error") {
  memory_checkpoint_store inner;
  fault_injecting_store s{inner};
  s.fail_next_writes(1, persist_errc::io_error);
  auto err = s.write(put("k", "v"));
  CHECK_MESSAGE(test::is(err, persist_errc::io_error), test::describe(err));
  CHECK_FALSE(read(inner, "k").has_value());
}

TEST_CASE("a new fault plan replaces the old one") {
  memory_checkpoint_store inner;
  fault_injecting_store s{inner};
  s.fail_next_writes(5, persist_errc::disk_full);
  s.fail_next_writes(0, persist_errc::disk_full);
  CHECK_FALSE(s.write(put("k", "v")));
}

TEST_CASE("injected read faults fail reads and key listings, then pass") {
  memory_checkpoint_store inner;
  fault_injecting_store s{inner};
  REQUIRE_FALSE(s.write(put("k", "v")));
  s.fail_next_reads(2, persist_errc::checkpoint_corrupt);
  auto r = s.read(state, "k");
  REQUIRE_FALSE(r);
  CHECK(test::is(r.error(), persist_errc::checkpoint_corrupt));
  CHECK(test::context_of(r.error()).find("actor_state/k") != std::string::npos);
  auto ks = s.keys(state);
  REQUIRE_FALSE(ks);
  CHECK(test::is(ks.error(), persist_errc::checkpoint_corrupt));
  CHECK(read(s, "k") == std::optional<std::string>{"v"});
  CHECK(s.stats().injected_read_faults == 2);
}
