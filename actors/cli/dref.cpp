// The `dref` command-line tool. Also a dref program itself: its workers are
// this binary started again.

#include <fstream>
#include <iostream>

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"

#include "dref/actors/memory.hpp"
#include "dref/actors/runtime.hpp"
#include "dref/store/tools/helper_process.hpp"

#include "bench.hpp"

int main(int argc, char** argv) {
  if (auto rc = dref::run_worker_if_requested())
    return *rc;
  if (auto rc = dref::tools::run_store_helper_if_requested())
    return *rc;
  CLI::App app{"dref: distributed references for CAF"};
  app.require_subcommand(1);
  auto bench = app.add_subcommand("bench", "measure the call path");
  dref::cli::bench_options opts;
  std::string json_file;
  bench->add_option("--json", json_file, "also write the figures as JSON");
  bench->add_option("--workers", opts.workers, "worker processes (0: cores)");
  bench->add_option("--tasks", opts.tasks, "tasks per async run");
  bench->add_option("--sync-calls", opts.sync_calls, "calls per sync run");
  bench->add_option("--chain", opts.chain, "length of the ref chain");
  bench->add_option("--repeat", opts.repeat, "runs per figure (best kept)");
  bench->add_flag("--store-only", opts.store_only,
                  "only the object store figures");
  auto memory = app.add_subcommand(
    "memory", "list the refs held by running dref programs and their workers");
  int32_t pid = 0;
  memory->add_option("--pid", pid, "only the driver with this pid");
  CLI11_PARSE(app, argc, argv);
  if (memory->parsed()) {
    auto pids = pid > 0 ? std::vector<int32_t>{pid} : dref::running_drivers();
    if (pids.empty()) {
      std::cout << "no running dref driver (run files in "
                << dref::run_directory() << ")\n";
      return 0;
    }
    int rc = 0;
    for (auto p : pids) {
      auto report = dref::memory_of_driver(p, std::chrono::seconds{5});
      if (!report) {
        std::cerr << "driver " << p << ": " << caf::to_string(report.error())
                  << "\n";
        rc = 1;
        continue;
      }
      std::cout << dref::to_text(*report);
    }
    return rc;
  }
  if (bench->parsed()) {
    auto figures = dref::cli::run_bench(opts);
    if (figures.empty())
      return 1;
    if (!json_file.empty()) {
      nlohmann::json doc = nlohmann::json::array();
      for (auto& f : figures)
        doc.push_back({{"name", f.name}, {"value", f.value}, {"unit", f.unit}});
      std::ofstream out{json_file};
      out << doc.dump(2) << "\n";
      if (!out) {
        std::cerr << "cannot write " << json_file << "\n";
        return 1;
      }
    }
  }
  return 0;
}
