// A driver ended by SIGINT or SIGTERM removes its runtimes' files first,
// like a normal exit: no node-store segment, lock or spill file, no spill
// directory of its own and no run file is left, it still dies of that
// signal, and its workers leave through their lifeline pipe.
//
// The driver is a child program (this binary again) that starts its
// runtimes, puts large values (three of 3 MiB into 8 MiB of shared memory:
// one spills), reports its pid, store prefixes and worker pids, and waits.
// The test (a subreaper, so it reaps the orphaned workers by pid) sends the
// signal and checks what is left.

#include "test_util.hpp"
#include "../child_process.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

constexpr size_t mib = size_t{1} << 20;

std::vector<std::string> entries_of(const std::string& dir,
                                    const std::string& start = {}) {
  std::vector<std::string> result;
  if (auto d = ::opendir(dir.c_str())) {
    while (auto ent = ::readdir(d)) {
      std::string name = ent->d_name;
      if (name != "." && name != ".."
          && name.compare(0, start.size(), start) == 0)
        result.push_back(dir + "/" + name);
    }
    ::closedir(d);
  }
  return result;
}

// Files whose path starts with `prefix` (a directory and a name's start).
std::vector<std::string> files_with_prefix(const std::string& prefix) {
  auto slash = prefix.rfind('/');
  return entries_of(prefix.substr(0, slash), prefix.substr(slash + 1));
}

std::string base_name(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

// The child. Modes: "side_by_side" (two runtimes at once, each with its
// own spill directory) or "one_after_another" (a runtime started and
// stopped, then one spilling to $DREF_SIGNAL_DIR/spill).
int signal_driver() {
  // A fresh program's dispositions, whatever the test runner left.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  std::string dir = std::getenv("DREF_SIGNAL_DIR");
  std::string mode = std::getenv("DREF_SIGNAL_MODE");
  auto make_cfg = [&] {
    auto cfg = test::small_cluster(1);
    cfg.store_capacity = 8 * mib;
    if (mode == "one_after_another")
      cfg.spill_dir = dir + "/spill";
    return cfg;
  };
  if (mode == "one_after_another") {
    runtime first{make_cfg()};
    if (!first.running())
      return 2;
  }
  std::vector<std::unique_ptr<runtime>> rts;
  std::vector<ref<buffer>> keep;
  std::ofstream report{dir + "/report.tmp"};
  size_t n = mode == "side_by_side" ? 2 : 1;
  for (size_t i = 0; i < n; ++i) {
    rts.push_back(std::make_unique<runtime>(make_cfg()));
    auto& rt = *rts.back();
    if (!rt.running())
      return 2;
    for (char c = 0; c < 3; ++c)
      keep.push_back(rt.put(make_buffer(std::vector<char>(3 * mib, c))));
    auto st = rt.stats();
    if (!st || st->node_on_disk < 1)
      return 3;
    report << "prefix " << rt.node_store_prefix() << "\n";
    for (auto& w : rt.workers())
      report << "worker " << w.pid << "\n";
  }
  report.close();
  std::rename((dir + "/report.tmp").c_str(), (dir + "/report").c_str());
  for (int i = 0; i < 6000; ++i) // 60 s for the signal
    std::this_thread::sleep_for(10ms);
  return 4;
}

test::child_program signal_program{"signal_driver", signal_driver};

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/dref-signal-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

struct report {
  std::vector<std::string> prefixes;
  std::vector<int> workers;
};

// Waits (bounded) for the child's report; fails if the child exits first.
report wait_for_report(int pid, const std::string& dir) {
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!std::filesystem::exists(dir + "/report")) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      FAIL("the driver exited early, status " << status);
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      FAIL("the driver did not report within 60 s");
    }
    std::this_thread::sleep_for(10ms);
  }
  report r;
  std::ifstream in{dir + "/report"};
  std::string key;
  while (in >> key) {
    if (key == "prefix") {
      r.prefixes.emplace_back();
      in >> r.prefixes.back();
    } else {
      int w = 0;
      in >> w;
      r.workers.push_back(w);
    }
  }
  return r;
}

// Runs the child in `mode`, ends it with `sig` and checks what is left.
void end_driver_by(int sig, const std::string& mode) {
  temp_dir dir;
  auto run_dir = dir.path + "/run";
  auto spill_dir = dir.path + "/spill";
  REQUIRE(::mkdir(run_dir.c_str(), 0700) == 0);
  REQUIRE(::mkdir(spill_dir.c_str(), 0700) == 0);
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  auto pid = test::spawn_child("signal_driver",
                               {"DREF_SIGNAL_DIR=" + dir.path,
                                "DREF_SIGNAL_MODE=" + mode,
                                "DREF_RUN_DIR=" + run_dir});
  REQUIRE(pid > 0);
  auto r = wait_for_report(pid, dir.path);
  size_t n = mode == "side_by_side" ? 2 : 1;
  REQUIRE(r.prefixes.size() == n);
  CHECK(r.workers.size() == n);
  // Before the signal: segments, spill files and the run file are there.
  auto run_file = run_dir + "/" + std::to_string(pid) + ".port";
  CHECK(std::filesystem::exists(run_file));
  for (auto& prefix : r.prefixes)
    CHECK(files_with_prefix(prefix).size() >= 3); // lock + 2 segments
  if (mode == "side_by_side") {
    auto spills = entries_of(run_dir, "spill-");
    CHECK(spills.size() == n);
    for (auto& s : spills)
      CHECK_FALSE(entries_of(s).empty());
  } else {
    CHECK_FALSE(entries_of(spill_dir, base_name(r.prefixes[0])).empty());
  }
  REQUIRE(::kill(pid, sig) == 0);
  int status = 0;
  bool reaped = false;
  for (int i = 0; i < 3000 && !reaped; ++i) { // 30 s
    reaped = ::waitpid(pid, &status, WNOHANG) == pid;
    if (!reaped)
      std::this_thread::sleep_for(10ms);
  }
  if (!reaped) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    FAIL("the driver outlived the signal by 30 s");
  }
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == sig);
  for (auto w : r.workers)
    if (!test::wait_reaped(w, 20000)) {
      FAIL_CHECK("worker " << w << " outlived its driver");
      ::kill(w, SIGKILL);
      ::waitpid(w, nullptr, 0);
    }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  // Nothing is left: no store file, no spill file or directory of the
  // runtime's, no run file.
  for (auto& prefix : r.prefixes) {
    INFO("store prefix " << prefix);
    CHECK(files_with_prefix(prefix).empty());
    CHECK(entries_of(spill_dir, base_name(prefix)).empty());
    for (auto& f : files_with_prefix(prefix)) // so a failure leaves none
      ::unlink(f.c_str());
  }
  CHECK(entries_of(run_dir).empty());
}

} // namespace

TEST_CASE("a driver ended by SIGINT removes the files of both its runtimes "
          "and still dies of SIGINT, its workers gone") {
  end_driver_by(SIGINT, "side_by_side");
}

TEST_CASE("a driver ended by SIGTERM removes its files, also with a runtime "
          "that ran before and a spill directory of its own choosing") {
  end_driver_by(SIGTERM, "one_after_another");
}

namespace {

void program_handler(int) {
}

struct saved_action {
  int sig;
  struct sigaction old {};
  explicit saved_action(int s) : sig(s) {
    ::sigaction(sig, nullptr, &old);
  }
  ~saved_action() {
    ::sigaction(sig, &old, nullptr);
  }
};

void set_handler(int sig, void (*handler)(int)) {
  struct sigaction act {};
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  ::sigaction(sig, &act, nullptr);
}

// Whether `sig`'s disposition is `handler` (SIG_DFL, or a function).
bool handled_by(int sig, void (*handler)(int)) {
  struct sigaction cur {};
  ::sigaction(sig, nullptr, &cur);
  return (cur.sa_flags & SA_SIGINFO) == 0 && cur.sa_handler == handler;
}

} // namespace

TEST_CASE("a runtime keeps a signal handler the program set, and installs "
          "its own only where the disposition was the default, until it "
          "stops") {
  // The test runner has handlers of its own: put them back afterwards.
  saved_action int_action{SIGINT};
  saved_action term_action{SIGTERM};
  set_handler(SIGINT, SIG_DFL);
  set_handler(SIGTERM, program_handler);
  test::with_cluster(
    [](runtime&) {
      CHECK_FALSE(handled_by(SIGINT, SIG_DFL)); // the runtime's own
      CHECK_FALSE(handled_by(SIGINT, program_handler));
      CHECK(handled_by(SIGTERM, program_handler));
    },
    1);
  CHECK(handled_by(SIGINT, SIG_DFL));
  CHECK(handled_by(SIGTERM, program_handler));
}
