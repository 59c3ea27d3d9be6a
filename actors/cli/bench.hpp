#pragma once

#include <functional>
#include <string>
#include <vector>

namespace dref::cli {

/// One measured figure: printed as `name value unit`.
struct figure {
  std::string name;
  double value = 0;
  std::string unit;
};

struct bench_options {
  size_t workers = 0;
  size_t tasks = 20000;
  size_t sync_calls = 2000;
  size_t chain = 1000;
  size_t repeat = 3;
  /// Only the object store figures (no runtime).
  bool store_only = false;
};

using emit_fn = std::function<void(std::string, double, std::string)>;

/// The object store figures (store_bench.cpp), each beside its physical
/// baseline.
void run_store_bench(const bench_options& opts, const emit_fn& emit);

/// Runs every benchmark against a fresh local cluster; prints each figure
/// as soon as it is measured.
std::vector<figure> run_bench(const bench_options& opts);

} // namespace dref::cli
