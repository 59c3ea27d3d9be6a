#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "caf/expected.hpp"

namespace dref::tools {

/// A store helper process for tests and benchmarks: this executable started
/// again (`/proc/self/exe`, `DREF_STORE_HELPER=1` in its environment),
/// driven by one-line commands on its stdin, answering one line each on
/// stdout ("ok ..." or "err ..."). It runs a node store of its own and
/// exits when its stdin closes, so it never outlives its parent.
///
/// Commands (see helper_process.cpp for the replies):
///   open <name> <capacity> <spill dir or -> [shm dir]
///                                             start a node store + server
///   put <owner> <seq> <size> <seed>           put pattern(seed) bytes
///   pull <owner> <seq> <port>                 pull from another store
///   map <owner> <seq> <port>                  same-node get, keep the view
///   write <owner> <seq> <size> <seed> <port>  same-node create/fill/seal
///   write_open <owner> <seq> <size> <seed> <port>  ... left unsealed
///   free <owner> <seq> <port>                 free through node_client
///   peek <slot> <offset> / drop <slot>        read / release a kept view
///   stats                                     server and client counters
///   tcp_send <port> <bytes> [source bytes]    raw TCP stream (baseline)
///   caf_serve <size> <seed>                   CAF chunk server (baseline)
///   exit
///
/// Ownership: the destructor closes the helper's stdin, waits up to 10 s
/// for it to exit, then SIGKILLs it; the pid is always reaped. One thread
/// at a time.
class helper_process {
public:
  static caf::expected<std::unique_ptr<helper_process>> start();

  ~helper_process();

  helper_process(const helper_process&) = delete;
  helper_process& operator=(const helper_process&) = delete;

  /// Sends a command and waits for its reply; "ok rest" gives "rest",
  /// "err text" an error.
  caf::expected<std::string> call(const std::string& command,
                                  std::chrono::milliseconds timeout
                                  = std::chrono::seconds{120});

  /// The two halves of `call`, to do something while the helper works.
  caf::error send(const std::string& command);
  caf::expected<std::string> reply(std::chrono::milliseconds timeout
                                   = std::chrono::seconds{120});

  int pid() const noexcept {
    return pid_;
  }

  /// SIGKILLs the helper and reaps it.
  void kill_and_reap();

  /// Closes the helper's stdin (it exits), waits up to 10 s (then kills
  /// it) and reaps it. Returns its exit code, or -signal if a signal ended
  /// it (an ASan report makes it exit with 1).
  int close_and_wait();

  /// True once the helper has been reaped.
  bool reaped() const noexcept {
    return pid_ <= 0;
  }

private:
  helper_process() = default;
  int pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  int exit_code_ = -1;
  std::string pending_;
};

/// If this process was started as a helper: runs its command loop and
/// returns its exit code. Call first thing in `main`.
std::optional<int> run_store_helper_if_requested();

/// The deterministic bytes `put <.. seed>` writes: 64-bit words
/// splitmix64(seed + word index), little-endian, the last word cut short.
void fill_pattern(uint64_t seed, char* out, size_t n);

/// A fast 64-bit checksum (not cryptographic) for comparing values across
/// processes.
uint64_t checksum(const char* data, size_t n);

/// Splits a reply into words.
std::vector<std::string> words(const std::string& line);

} // namespace dref::tools
