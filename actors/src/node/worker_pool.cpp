#include "node/worker_pool.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dref/actors/error.hpp"

extern char** environ;

namespace dref::internal {

namespace {

std::vector<std::string> own_cmdline() {
  std::ifstream in{"/proc/self/cmdline", std::ios::binary};
  std::string all{std::istreambuf_iterator<char>{in},
                  std::istreambuf_iterator<char>{}};
  std::vector<std::string> args;
  std::string cur;
  for (char c : all) {
    if (c == '\0') {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty())
    args.push_back(cur);
  return args;
}

} // namespace

worker_pool::~worker_pool() {
  stop_all(std::chrono::milliseconds{0});
  for (auto fd : lifeline_)
    if (fd >= 0)
      close(fd);
}

caf::expected<int> worker_pool::launch(const std::string& spec) {
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed.
  char exe[4096];
  auto n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return make_error(actors_errc::runtime_down,
                      "cannot read /proc/self/exe");
  exe[n] = '\0';
  auto args = own_cmdline();
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  if (argv.empty())
    argv.push_back(exe);
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (auto e = environ; *e; ++e)
    if (std::strncmp(*e, "DREF_WORKER=", 12) != 0)
      env_strings.emplace_back(*e);
  env_strings.push_back("DREF_WORKER=" + spec);
  std::vector<char*> envp;
  for (auto& e : env_strings)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  long max_fd = sysconf(_SC_OPEN_MAX);
  if (max_fd < 0 || max_fd > 65536)
    max_fd = 65536;
  std::lock_guard<std::mutex> guard{mtx_};
  if (lifeline_[0] < 0 && pipe2(lifeline_, O_CLOEXEC) != 0)
    return make_error(actors_errc::runtime_down,
                      std::string{"pipe failed: "} + std::strerror(errno));
  auto read_end = lifeline_[0];
  auto pid = fork();
  if (pid < 0)
    return make_error(actors_errc::runtime_down,
                      std::string{"fork failed: "} + std::strerror(errno));
  if (pid == 0) {
    // Child (async-signal-safe calls only): keep the lifeline as fd 3 and
    // no other inherited descriptor, then become the worker.
    if (read_end == lifeline_fd) {
      if (fcntl(lifeline_fd, F_SETFD, 0) != 0)
        _exit(111);
    } else if (dup2(read_end, lifeline_fd) != lifeline_fd) {
      _exit(111);
    }
    if (syscall(SYS_close_range, lifeline_fd + 1u, ~0u, 0u) != 0)
      for (long fd = lifeline_fd + 1; fd < max_fd; ++fd)
        close(static_cast<int>(fd));
    execve(exe, argv.data(), envp.data());
    _exit(112);
  }
  pids_.insert(pid);
  return static_cast<int>(pid);
}

bool worker_pool::reap(int pid) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (pids_.count(pid) == 0)
    return true;
  int status = 0;
  auto res = waitpid(pid, &status, WNOHANG);
  if (res == pid || (res < 0 && errno == ECHILD)) {
    pids_.erase(pid);
    return true;
  }
  return false;
}

void worker_pool::kill_and_reap(int pid) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (pids_.count(pid) == 0)
    return;
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ; // retry
  pids_.erase(pid);
}

void worker_pool::stop_all(std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    auto left = pids();
    for (auto pid : left)
      reap(pid);
    if (pids().empty())
      return;
    if (std::chrono::steady_clock::now() >= deadline)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  for (auto pid : pids())
    kill_and_reap(pid);
}

std::set<int> worker_pool::pids() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return pids_;
}

} // namespace dref::internal
