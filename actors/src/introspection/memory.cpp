// `dref memory`: the report's text form and the client that asks a running
// driver (and its workers) for their listings.

#include "dref/actors/memory.hpp"

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include "caf/all.hpp"
#include "caf/io/middleman.hpp"

#include "dref/actors/config.hpp"
#include "dref/actors/error.hpp"
#include "core/caf_errors.hpp"
#include "wire/interfaces.hpp"

namespace dref {

namespace {

std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n < 1024)
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  else if (n < 1024 * 1024)
    std::snprintf(buf, sizeof(buf), "%.1f KiB", n / 1024.0);
  else
    std::snprintf(buf, sizeof(buf), "%.1f MiB", n / (1024.0 * 1024.0));
  return buf;
}

std::string where(const memory_entry& e) {
  std::string s = e.owner_copy ? "owner" : "";
  for (auto w : e.locations) {
    if (!s.empty())
      s += ",";
    s += w == node_location ? std::string{"node"} : "w" + std::to_string(w);
  }
  return s.empty() ? "-" : s;
}

} // namespace

std::string to_text(const memory_report& report) {
  std::ostringstream out;
  uint64_t objects = 0;
  uint64_t bytes = 0;
  for (auto& p : report.processes) {
    uint64_t pb = 0;
    for (auto& e : p.objects)
      pb += e.size;
    objects += p.objects.size();
    bytes += pb;
    if (p.role == "driver")
      out << "driver pid " << p.pid;
    else
      out << "worker " << p.id << " pid " << p.pid;
    if (!p.alive) {
      out << ": died before it answered (its copies went with it)\n";
      continue;
    }
    out << ": " << p.objects.size() << " objects, " << human_bytes(pb) << "\n";
    if (p.objects.empty())
      continue;
    char line[512];
    if (p.role == "driver") {
      std::snprintf(line, sizeof(line), "  %-28s %-8s %10s %6s %6s %6s %-12s %-16s %s\n",
                    "object", "state", "size", "local", "subm", "borrow",
                    "stored at", "made by", "call site");
      out << line;
      for (auto& e : p.objects) {
        std::snprintf(line, sizeof(line),
                      "  %-28s %-8s %10s %6u %6u %6u %-12s %-16s %s\n",
                      to_string(e.id).c_str(), e.state.c_str(),
                      human_bytes(e.size).c_str(), e.local_refs,
                      e.submitted_refs, e.borrowers, where(e).c_str(),
                      e.made_by.empty() ? "(put)" : e.made_by.c_str(),
                      e.call_site.c_str());
        out << line;
      }
    } else {
      for (auto& e : p.objects) {
        std::snprintf(line, sizeof(line), "  %-28s %-8s %10s\n",
                      to_string(e.id).c_str(), e.state.c_str(),
                      human_bytes(e.size).c_str());
        out << line;
      }
    }
  }
  out << "total: " << report.processes.size() << " processes, " << objects
      << " objects, " << human_bytes(bytes) << "\n";
  return out.str();
}

std::string run_directory() {
  if (auto dir = std::getenv("DREF_RUN_DIR"))
    return dir;
  return "/tmp/dref-" + std::to_string(::getuid());
}

std::vector<int32_t> running_drivers() {
  std::vector<int32_t> result;
  auto dir = run_directory();
  auto d = ::opendir(dir.c_str());
  if (d == nullptr)
    return result;
  while (auto ent = ::readdir(d)) {
    std::string name = ent->d_name;
    auto dot = name.find(".port");
    if (dot == std::string::npos || dot + 5 != name.size())
      continue;
    auto pid = std::atoi(name.substr(0, dot).c_str());
    if (pid <= 0)
      continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      ::unlink((dir + "/" + name).c_str()); // left by a killed driver
      continue;
    }
    result.push_back(pid);
  }
  ::closedir(d);
  return result;
}

caf::expected<memory_report> memory_of_driver(int32_t pid,
                                              caf::timespan timeout) {
  std::ifstream in{run_directory() + "/" + std::to_string(pid) + ".port"};
  uint16_t port = 0;
  if (!(in >> port))
    return make_error(actors_errc::invalid_argument,
                      "no dref driver with pid " + std::to_string(pid));
  caf::actor_system_config cfg;
  config defaults;
  internal::configure_system(cfg, defaults);
  caf::actor_system sys{cfg};
  auto owner = sys.middleman().remote_actor<internal::driver_actor>("127.0.0.1",
                                                                   port);
  if (!owner)
    return make_error(actors_errc::runtime_down,
                      "cannot reach driver " + std::to_string(pid) + ": "
                        + internal::caf_reason_text(owner.error()));
  memory_report report;
  std::vector<uint16_t> ports;
  caf::error failure;
  caf::scoped_actor self{sys};
  self->request(*owner, timeout, memory_atom::value)
    .receive(
      [&](process_memory& pm, std::vector<uint16_t>& ps) {
        report.processes.push_back(std::move(pm));
        ports = std::move(ps);
      },
      [&](caf::error& err) { failure = std::move(err); });
  if (failure)
    return internal::dref_error_of(std::move(failure),
                                   "asking driver " + std::to_string(pid),
                                   make_error(actors_errc::runtime_down));
  for (auto p : ports) {
    auto store = sys.middleman().remote_actor<internal::ref_server_actor>(
      "127.0.0.1", p);
    if (!store)
      continue; // the worker died meanwhile
    self->request(*store, timeout, memory_atom::value)
      .receive([&](process_memory& pm) { report.processes.push_back(pm); },
               [&](caf::error&) {});
  }
  return report;
}

} // namespace dref
