#include "node/signal_cleanup.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

namespace dref::internal {

namespace {

constexpr int handled_signals[] = {SIGINT, SIGTERM};
constexpr size_t num_signals = sizeof(handled_signals) / sizeof(int);

// Read by the handler (lock-free atomics only): the self-pipe's write end
// while a watcher reads it (else -1), and the process that installed it.
std::atomic<int> pipe_write_fd{-1};
std::atomic<pid_t> handler_pid{0};

// Async-signal-safe: the default disposition, then the signal again (it
// stays pending until the handler returns, then ends the process).
void default_action(int sig) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);
}

// Step 1 (async-signal-safe): hand the signal to the watcher thread.
void on_exit_signal(int sig) {
  int saved = errno;
  int fd = pipe_write_fd.load();
  if (fd < 0 || ::getpid() != handler_pid.load()) {
    default_action(sig); // a forked child, or no watcher any more
  } else {
    auto byte = static_cast<unsigned char>(sig);
    // A full pipe (EAGAIN) holds signals the watcher handles already.
    if (::write(fd, &byte, 1) != 1 && errno != EAGAIN)
      default_action(sig);
  }
  errno = saved;
}

/// The process-wide claims. Never destroyed: a signal may come during
/// static destruction.
struct registry {
  // Installing and removing the handlers and the watcher; held across
  // joining the watcher (which never takes it).
  std::mutex lifecycle;
  bool ours[num_signals] = {}; // guarded by lifecycle
  int fds[2] = {-1, -1};       // guarded by lifecycle; made once, kept
  std::thread watcher;         // guarded by lifecycle
  // The claims (the watcher takes it).
  std::mutex mtx;
  std::map<uint64_t, exit_files> entries; // guarded by mtx
  uint64_t next_token = 1;                // guarded by mtx
};

registry& the_registry() {
  static auto* r = new registry;
  return *r;
}

bool is_ours(const struct sigaction& act) {
  return (act.sa_flags & SA_SIGINFO) == 0 && act.sa_handler == on_exit_signal;
}

bool is_default(const struct sigaction& act) {
  return (act.sa_flags & SA_SIGINFO) == 0 && act.sa_handler == SIG_DFL;
}

// Steps 2 and 3, on the watcher thread: remove every claim's files, then
// end the process by `sig` as if no handler had been there.
[[noreturn]] void end_by_signal(int sig) {
  std::vector<exit_files> all;
  {
    auto& r = the_registry();
    std::lock_guard<std::mutex> guard{r.mtx};
    for (auto& [token, f] : r.entries)
      all.push_back(f);
  }
  for (auto& f : all)
    remove_exit_files(f);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  ::_exit(128 + sig); // not reached: the default action ends the process
}

// The watcher: a signal's number ends the process, 0 (or a closed pipe)
// ends the thread. Blocks every signal, so handlers run on other threads.
void watch(int fd) {
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    unsigned char byte = 0;
    auto n = ::read(fd, &byte, 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n != 1 || byte == 0)
      return;
    end_by_signal(byte);
  }
}

// @pre lifecycle held, no claim before this one. Starts the watcher, then
// installs the handlers where the disposition is the default. Best effort:
// without a pipe or a thread, nothing is installed.
void install(registry& r) {
  if (r.fds[0] < 0) {
    if (::pipe2(r.fds, O_CLOEXEC) != 0)
      return;
    ::fcntl(r.fds[1], F_SETFL, ::fcntl(r.fds[1], F_GETFL) | O_NONBLOCK);
  }
  bool wanted[num_signals] = {};
  bool any = false;
  for (size_t i = 0; i < num_signals; ++i) {
    struct sigaction old {};
    wanted[i] = ::sigaction(handled_signals[i], nullptr, &old) == 0
                && is_default(old);
    any = any || wanted[i];
  }
  if (!any)
    return;
  try {
    r.watcher = std::thread{watch, r.fds[0]};
  } catch (const std::system_error&) {
    return;
  }
  handler_pid = ::getpid();
  pipe_write_fd = r.fds[1];
  for (size_t i = 0; i < num_signals; ++i) {
    if (!wanted[i])
      continue;
    struct sigaction act {};
    act.sa_handler = on_exit_signal;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART;
    r.ours[i] = ::sigaction(handled_signals[i], &act, nullptr) == 0;
  }
}

// @pre lifecycle held, the last claim gone. Restores the default where our
// handler is still installed, then ends the watcher.
void uninstall(registry& r) {
  // A handler running from here on takes the default action itself.
  pipe_write_fd = -1;
  for (size_t i = 0; i < num_signals; ++i) {
    if (!r.ours[i])
      continue;
    r.ours[i] = false;
    struct sigaction cur {};
    if (::sigaction(handled_signals[i], nullptr, &cur) != 0 || !is_ours(cur))
      continue; // the program set its own since: leave it
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(handled_signals[i], &dfl, nullptr);
  }
  if (!r.watcher.joinable())
    return;
  unsigned char quit = 0;
  while (::write(r.fds[1], &quit, 1) != 1 && errno == EINTR) {
  }
  r.watcher.join();
}

void remove_with_prefix(const std::string& dir, const std::string& prefix) {
  if (dir.empty() || prefix.empty())
    return;
  auto d = ::opendir(dir.c_str());
  if (d == nullptr)
    return;
  while (auto ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (name.compare(0, prefix.size(), prefix) == 0)
      ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

} // namespace

void remove_exit_files(const exit_files& f) {
  remove_with_prefix(f.shm_dir, f.store_prefix);
  if (f.own_spill_dir && !f.spill_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(f.spill_dir, ec);
  } else {
    remove_with_prefix(f.spill_dir, f.store_prefix);
  }
  if (!f.run_file.empty())
    ::unlink(f.run_file.c_str());
}

exit_cleanup::exit_cleanup() {
  auto& r = the_registry();
  std::lock_guard<std::mutex> life{r.lifecycle};
  bool first = false;
  {
    std::lock_guard<std::mutex> guard{r.mtx};
    token_ = r.next_token++;
    first = r.entries.empty();
    r.entries.emplace(token_, exit_files{});
  }
  if (first)
    install(r);
}

exit_cleanup::~exit_cleanup() {
  auto& r = the_registry();
  std::lock_guard<std::mutex> life{r.lifecycle};
  bool last = false;
  {
    std::lock_guard<std::mutex> guard{r.mtx};
    r.entries.erase(token_);
    last = r.entries.empty();
  }
  if (last)
    uninstall(r);
}

void exit_cleanup::set(exit_files f) {
  auto& r = the_registry();
  std::lock_guard<std::mutex> guard{r.mtx};
  r.entries[token_] = std::move(f);
}

} // namespace dref::internal
