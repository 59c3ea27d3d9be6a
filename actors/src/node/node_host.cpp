#include "node/node_host.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dref/actors/memory.hpp"
#include "dref/store/error.hpp"

namespace dref::internal {

namespace {

// Crash hygiene: spill directories of drivers that died without stopping
// (their store files are removed by `node_store::open`).
void remove_dead_spill_dirs(const std::string& dir) {
  std::error_code ec;
  for (auto& ent : std::filesystem::directory_iterator{dir, ec}) {
    auto name = ent.path().filename().string();
    if (name.rfind("spill-", 0) != 0)
      continue;
    auto pid = std::atoi(name.c_str() + 6);
    if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH)
      std::filesystem::remove_all(ent.path(), ec);
  }
}

} // namespace

node_host::~node_host() {
  close();
}

caf::error node_host::open(const config& cfg, const std::string& host) {
  // One store per runtime: several may run in one process, one at a time
  // or side by side.
  static std::atomic<uint64_t> instances{0};
  auto n = instances++;
  store_config sc;
  sc.name = "rt-" + std::to_string(::getpid()) + "-" + std::to_string(n);
  sc.capacity = cfg.store_capacity;
  if (cfg.spill_dir.empty()) {
    auto dir = run_directory();
    ::mkdir(dir.c_str(), 0700);
    remove_dead_spill_dirs(dir);
    spill_dir_ = dir + "/spill-" + std::to_string(::getpid()) + "-"
                 + std::to_string(n);
    if (::mkdir(spill_dir_.c_str(), 0700) != 0 && errno != EEXIST)
      return make_error(store_errc::io_error,
                        "cannot make the spill directory " + spill_dir_);
    own_spill_dir_ = true;
  } else {
    spill_dir_ = cfg.spill_dir;
  }
  sc.spill_dir = spill_dir_;
  auto store = node_store::open(std::move(sc));
  if (!store)
    return std::move(store.error());
  std::shared_ptr<node_store> shared{std::move(*store)};
  auto server = transfer_server::start(*shared, host, 0);
  if (!server)
    return std::move(server.error());
  server_ = std::move(*server);
  std::lock_guard<std::mutex> guard{mtx_};
  port_ = server_->port();
  prefix_ = shared->config().shm_dir + "/" + shared->file_prefix();
  store_ = std::move(shared);
  return caf::none;
}

std::shared_ptr<node_store> node_host::store() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return store_;
}

uint16_t node_host::port() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return port_;
}

std::string node_host::prefix() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return store_ ? prefix_ : std::string{};
}

void node_host::close() {
  server_.reset();
  std::shared_ptr<node_store> store;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    store = std::move(store_);
    port_ = 0;
  }
  store.reset();
  if (own_spill_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(spill_dir_, ec);
    own_spill_dir_ = false;
  }
}

} // namespace dref::internal
