// Unit tests of dref::to_string(const caf::error&): any dref error in
// words (category, code name, context) without an actor system, the same
// text the system's render gives; any other error as CAF renders it.

#include <doctest/doctest.h>

#include <string>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/error.hpp"
#include "caf/sec.hpp"

#include "dref/actors/error.hpp"
#include "dref/persist/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

TEST_CASE("a dref error renders as its category, code name and context") {
  CHECK_EQ(dref::to_string(dref::make_error(
             dref::refs_errc::type_mismatch,
             "a ref<int64> names a value of type std::string")),
           "dref_refs: type_mismatch (a ref<int64> names a value of type "
           "std::string)");
  CHECK_EQ(dref::to_string(
             dref::make_error(dref::store_errc::store_full, "need 5 bytes")),
           "dref_store: store_full (need 5 bytes)");
  CHECK_EQ(dref::to_string(dref::make_error(
             dref::persist_errc::checkpoint_corrupt, "actor 'a'")),
           "dref_pers: checkpoint_corrupt (actor 'a')");
  CHECK_EQ(dref::to_string(
             dref::make_error(dref::actors_errc::task_failed, "f: boom")),
           "dref_act: task_failed (f: boom)");
}

TEST_CASE("a dref error without context renders as category and code") {
  CHECK_EQ(dref::to_string(dref::make_error(dref::actors_errc::timeout)),
           "dref_act: timeout");
  CHECK_EQ(dref::to_string(dref::make_error(dref::refs_errc::owner_died)),
           "dref_refs: owner_died");
}

TEST_CASE("a code a dref category does not know renders as its number") {
  caf::error unknown{uint8_t{99}, dref::refs_category};
  CHECK_EQ(dref::to_string(unknown), "dref_refs: refs_errc(99)");
}

TEST_CASE("an error of another category renders as CAF renders it") {
  auto timeout = caf::make_error(caf::sec::request_timeout);
  CHECK_EQ(dref::to_string(timeout), caf::to_string(timeout));
}

TEST_CASE("no error renders as none") {
  CHECK_EQ(dref::to_string(caf::error{}), "none");
}

TEST_CASE("the text is the one an actor system with dref's categories "
          "renders") {
  caf::actor_system_config cfg;
  dref::add_dref_error_categories(cfg);
  caf::actor_system sys{cfg};
  for (auto& err :
       {dref::make_error(dref::refs_errc::type_mismatch, "x"),
        dref::make_error(dref::store_errc::not_found),
        dref::make_error(dref::persist_errc::io_error, "disk"),
        dref::make_error(dref::actors_errc::worker_died, "worker 2")})
    CHECK_EQ(dref::to_string(err), sys.render(err));
}

TEST_CASE("an unqualified to_string of an error still means CAF's") {
  using namespace dref;
  auto err = make_error(refs_errc::object_lost, "gone");
  CHECK_EQ(to_string(err), caf::to_string(err)); // not ambiguous
  CHECK_NE(dref::to_string(err), caf::to_string(err));
}
