// `dref memory`: the per-process listing of refs, through the API and
// through the command-line tool talking to this very process.

#include "test_util.hpp"

#include <cstdio>
#include <string>

#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

int64_t triple(int64_t x) {
  return 3 * x;
}

const process_memory* find_role(const memory_report& r, const char* role) {
  for (auto& p : r.processes)
    if (p.role == role)
      return &p;
  return nullptr;
}

const memory_entry* find_object(const process_memory& p, const object_id& id) {
  for (auto& e : p.objects)
    if (e.id == id)
      return &e;
  return nullptr;
}

std::string run(const std::string& cmd) {
  std::string out;
  auto f = ::popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    out.append(buf, n);
  ::pclose(f);
  return out;
}

} // namespace

DREF_REMOTE(triple);

TEST_CASE("memory lists each owned object with counts, size, holders and call site") {
  test::with_cluster([](runtime& rt) {
    auto p = rt.put(int64_t{7});
    auto p2 = p; // a second local ref
    auto t = rt.call(triple, p);
    REQUIRE(rt.get(t, 10s));
    auto report = rt.memory();
    REQUIRE(report);
    auto driver = find_role(*report, "driver");
    REQUIRE(driver != nullptr);
    CHECK(driver->pid == getpid());
    auto pe = find_object(*driver, p.id());
    REQUIRE(pe != nullptr);
    CHECK(pe->state == "ready");
    CHECK(pe->local_refs == 2);
    CHECK(pe->owner_copy);
    CHECK(pe->made_by.empty());
    auto te = find_object(*driver, t.id());
    REQUIRE(te != nullptr);
    CHECK(te->local_refs == 1);
    CHECK(te->made_by == "triple");
    CHECK(te->size > 0);
    REQUIRE(te->locations.size() == 1);
    CHECK(te->call_site.find("runtime_test") != std::string::npos);
    // The worker that ran `triple` lists its stored copy.
    bool stored = false;
    for (auto& proc : report->processes)
      if (proc.role == "worker" && proc.id == te->locations[0])
        stored = find_object(proc, t.id()) != nullptr;
    CHECK(stored);
    auto text = to_text(*report);
    CHECK(text.find(to_string(t.id())) != std::string::npos);
    CHECK(text.find("total: 3 processes") != std::string::npos);
  });
}

TEST_CASE("the dref memory command reads a running driver and its workers") {
  test::with_cluster([](runtime& rt) {
    auto t = rt.call(triple, int64_t{2});
    REQUIRE(rt.get(t, 10s));
    auto out = run(std::string{DREF_CLI} + " memory --pid "
                   + std::to_string(getpid()) + " 2>&1");
    INFO(out);
    CHECK(out.find("driver pid " + std::to_string(getpid())) != std::string::npos);
    CHECK(out.find(to_string(t.id())) != std::string::npos);
    CHECK(out.find("triple") != std::string::npos);
    CHECK(out.find("worker ") != std::string::npos);
    CHECK(out.find("total: 3 processes") != std::string::npos);
  });
}

TEST_CASE("the dref memory command says when no such driver runs") {
  auto out = run(std::string{DREF_CLI} + " memory --pid 999999 2>&1");
  CHECK(out.find("no dref driver with pid 999999") != std::string::npos);
}
