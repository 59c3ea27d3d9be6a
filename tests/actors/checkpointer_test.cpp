// The checkpointer's pure parts: what a restore carries of the sequence
// table (the rest is covered by the durable-actor tests in runtime_test).

#include <doctest/doctest.h>

#include <map>
#include <string>

#include "durable/checkpointer.hpp"
#include "dref/actors/serialization.hpp"

using namespace dref;
using namespace dref::internal;

TEST_CASE("pruning drops other drivers' sequence entries and keeps this "
          "driver's and those of callers that are not drivers") {
  sequence_table table;
  table.seqs = {{"driver-aaaa", 3}, {"driver-bbbb", 5}, {"client-7", 9}};
  table.replies = {{"driver-aaaa", blob{1}}, {"client-7", blob{2}}};
  checkpointer::prune_callers(table, "driver-bbbb");
  CHECK(table.seqs
        == std::map<std::string, uint64_t>{{"driver-bbbb", 5},
                                           {"client-7", 9}});
  CHECK(table.replies.size() == 1);
  CHECK(table.replies.count("client-7") == 1);
}

TEST_CASE("a restore task's table is pruned for the restoring driver") {
  checkpoint cp;
  cp.actor = "a";
  cp.version = 4;
  cp.state = "s";
  cp.sequence_numbers = {{"driver-old", 7}, {"driver-new", 2}};
  cp.replies = {{"driver-old", "r"}};
  auto args = checkpointer::restore_args(cp, "driver-new");
  REQUIRE(args.size() == 2);
  sequence_table table;
  REQUIRE_FALSE(from_blob(args[1].value, table));
  CHECK(table.seqs == std::map<std::string, uint64_t>{{"driver-new", 2}});
  CHECK(table.replies.empty());
}
