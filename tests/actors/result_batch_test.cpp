// Results of a task batch leave their worker as soon as they exist
// (docs/architecture.md, "The call path", step 6): batching may coalesce
// them, never withhold them behind a later task of the same batch that
// blocks.

#include "test_util.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

using namespace dref;
using namespace std::chrono_literals;

namespace {

/// Files a test creates to release tasks waiting for them (`gate_keeper::
/// wait`), in a fresh directory removed at the end.
struct gate_dir {
  std::string dir;
  gate_dir() {
    char tmpl[] = "/tmp/dref-gates-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
  }
  ~gate_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  gate_dir(const gate_dir&) = delete;
  gate_dir& operator=(const gate_dir&) = delete;
  std::string path(const std::string& name) const {
    return dir + "/" + name;
  }
  void open(const std::string& name) const {
    std::ofstream{path(name)} << "open\n";
  }
};

/// An actor whose `wait` blocks its worker's executor until a gate opens.
class gate_keeper {
public:
  int32_t pid() const {
    return static_cast<int32_t>(getpid());
  }
  /// Waits until the file `path` exists, at most 20 s: 1 if it appeared,
  /// 0 if not.
  int32_t wait(std::string path) const {
    for (int i = 0; i < 20000; ++i) {
      if (std::filesystem::exists(path))
        return 1;
      std::this_thread::sleep_for(1ms);
    }
    return 0;
  }
  int32_t next(int32_t x) const {
    return x + 1;
  }
};

using gate_handle = actor_handle<gate_keeper>;

// A gate_keeper on a worker other than the one with pid `not_pid` (at most
// 8 spawns; placement is least-loaded).
std::optional<gate_handle> keeper_elsewhere(runtime& rt, int32_t not_pid) {
  for (int i = 0; i < 8; ++i) {
    auto k = rt.spawn<gate_keeper>();
    auto pid = rt.get(k.call(&gate_keeper::pid), 20s);
    REQUIRE_MESSAGE(pid, test::why(pid));
    if (*pid != not_pid)
      return k;
  }
  return std::nullopt;
}

} // namespace

DREF_ACTOR(gate_keeper, &gate_keeper::pid, &gate_keeper::wait,
           &gate_keeper::next);

TEST_CASE("a finished result reaches its owner while a later task of its "
          "batch still runs") {
  // Regression (issue 17): the worker sent a batch's results only when a
  // later task of the batch finished or the batch ended, so a result
  // stayed pinned behind a blocking task. Keeper `u` runs on one worker,
  // `v` on the other. `b` (on v) takes `a` (pending on u's worker), so v's
  // calls wait at the owner until `a` is ready; then `b` and `c` leave
  // together, in one batch. `c` blocks v's worker until gate "c" opens,
  // which happens only after `b` was got: `c` answering 1 proves it was
  // still running when `b` arrived.
  gate_dir gates;
  test::with_cluster([&](runtime& rt) {
    auto u = rt.spawn<gate_keeper>();
    auto u_pid = rt.get(u.call(&gate_keeper::pid), 20s);
    REQUIRE_MESSAGE(u_pid, test::why(u_pid));
    auto v = keeper_elsewhere(rt, *u_pid);
    REQUIRE_MESSAGE(v, "every keeper was placed on u's worker");
    auto a = u.call(&gate_keeper::wait, gates.path("a"));
    auto b = v->call(&gate_keeper::next, a);
    auto c = v->call(&gate_keeper::wait, gates.path("c"));
    gates.open("a");
    auto got_b = rt.get(b, 3s);
    CHECK_MESSAGE(got_b, test::why(got_b));
    gates.open("c"); // also when b failed: c must not hold the cluster
    auto got_c = rt.get(c, 30s);
    REQUIRE_MESSAGE(got_c, test::why(got_c));
    CHECK(*got_c == 1);
    if (got_b)
      CHECK(*got_b == 2);
  });
}
