// The `dref` command-line tool. Also a dref program itself: its workers are
// this binary started again.

#include <fstream>
#include <iostream>

#include "CLI/CLI.hpp"
#include "nlohmann/json.hpp"

#include "dref/actors/runtime.hpp"

#include "bench.hpp"

int main(int argc, char** argv) {
  if (auto rc = dref::run_worker_if_requested())
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
  CLI11_PARSE(app, argc, argv);
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
