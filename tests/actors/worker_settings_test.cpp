// The settings a driver hands a worker (versioned) and the task argument
// kinds (an unknown kind is refused): formats that cross processes.

#include <doctest/doctest.h>

#include "wire/worker_settings.hpp"

#include "dref/actors/error.hpp"
#include "dref/actors/serialization.hpp"
#include "dref/actors/task_spec.hpp"

using namespace dref;
using namespace dref::internal;

TEST_CASE("worker settings read back as they were written") {
  config cfg;
  cfg.inline_limit = 4096;
  cfg.fetch_timeout = std::chrono::milliseconds{1234};
  cfg.death_grace = std::chrono::milliseconds{250};
  auto ws = worker_settings::of(cfg);
  ws.host = "127.0.0.2";
  ws.driver_port = 4711;
  ws.store_port = 4712;
  ws.id = 9;
  auto back = decode_worker_settings(encode(ws));
  REQUIRE(back);
  CHECK_EQ(back->host, "127.0.0.2");
  CHECK_EQ(back->driver_port, 4711);
  CHECK_EQ(back->store_port, 4712);
  CHECK_EQ(back->id, 9u);
  auto again = back->to_config();
  CHECK_EQ(again.inline_limit, 4096u);
  CHECK(again.fetch_timeout == std::chrono::milliseconds{1234});
  CHECK(again.death_grace == std::chrono::milliseconds{250});
}

TEST_CASE("worker settings of another version are refused with a clear "
          "error") {
  auto ws = worker_settings::of(config{});
  ws.version = worker_settings::current_version + 1;
  auto back = decode_worker_settings(encode(ws));
  REQUIRE_FALSE(back);
  CHECK(back.error() == actors_errc::invalid_argument);
  CHECK_NE(caf::to_string(back.error().context()).find("version"),
           std::string::npos);
  CHECK_FALSE(decode_worker_settings("0g"));       // not hex
  CHECK_FALSE(decode_worker_settings("abc"));      // odd length
  CHECK_FALSE(decode_worker_settings(encode(worker_settings::of(config{}))
                                       .substr(0, 6))); // truncated
}

TEST_CASE("a task argument of a kind this version does not know is refused") {
  task_arg arg;
  arg.kind = arg_kind::borrowed_ref;
  blob bytes;
  REQUIRE_FALSE(to_blob(arg, bytes));
  task_arg back;
  REQUIRE_FALSE(from_blob(bytes, back));
  CHECK(back.kind == arg_kind::borrowed_ref);
  bytes[0] = 7; // the kind comes first
  auto err = from_blob(bytes, back);
  CHECK(err);
}
