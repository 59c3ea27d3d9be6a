#include "bench.hpp"

#include <algorithm>
#include <chrono>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <thread>

#include <csignal>
#include <cstring>

#include <malloc.h>
#include <stdlib.h>
#include <unistd.h>

#include "caf/all.hpp"
#include "fmt/core.h"

#include "dref/actors/all.hpp"
#include "dref/actors/atoms.hpp"
#include "dref/persist/group_committer.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

namespace {

int32_t bench_noop() {
  return 0;
}

// Inside a worker: calls `n` no-op tasks (this worker owns their results)
// and waits for all; the number that completed.
int64_t bench_fan_out(int64_t n) {
  std::vector<dref::ref<int32_t>> refs;
  refs.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    refs.push_back(dref::call(bench_noop));
  auto res = dref::wait(refs, refs.size(), std::chrono::seconds{60});
  return static_cast<int64_t>(res.ready.size());
}

int64_t bench_inc(int64_t x) {
  return x + 1;
}

struct bench_counter {
  int64_t n = 0;
  int64_t bump() {
    return ++n;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f,
                                                 bench_counter& x) {
    return f(caf::meta::type_name("bench.counter"), x.n);
  }
};

// A durable actor with a large state, for actor_recovery_ms.
struct bench_vault {
  std::string data;
  int64_t fill(int64_t mib) {
    data.assign(static_cast<size_t>(mib) << 20, 'v');
    return static_cast<int64_t>(data.size());
  }
  int64_t size() const {
    return static_cast<int64_t>(data.size());
  }
  int32_t pid() const {
    return static_cast<int32_t>(::getpid());
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f,
                                                 bench_vault& x) {
    return f(caf::meta::type_name("bench.vault"), x.data);
  }
};

// The node store through the runtime: one instance per worker; `make` fills
// a large buffer (its result goes to the node store), `get_us` times a
// dref::get of a ref to one, `size_of` takes it as an argument.
struct bench_node {
  double fill_us = 0;
  int32_t pid() {
    return static_cast<int32_t>(getpid());
  }
  // Fills its result in place in the node store (dref::buffer_writer):
  // the fill time includes making the segment and mapping it.
  dref::buffer make(int64_t size) {
    auto t0 = std::chrono::steady_clock::now();
    auto w = dref::make_buffer_writer(static_cast<size_t>(size));
    if (!w)
      return {};
    std::memset(w->data(), 0x5A, w->size());
    fill_us = std::chrono::duration<double, std::micro>(
                std::chrono::steady_clock::now() - t0)
                .count();
    return std::move(*w).finish();
  }
  // The way before buffer_writer: a std::vector filled, then serialized
  // into a node-store segment (one more copy).
  dref::buffer make_vector(int64_t size) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<char> bytes(static_cast<size_t>(size));
    std::memset(bytes.data(), 0x5A, bytes.size());
    fill_us = std::chrono::duration<double, std::micro>(
                std::chrono::steady_clock::now() - t0)
                .count();
    return dref::make_buffer(std::move(bytes));
  }
  double last_fill_us() {
    return fill_us;
  }
  double get_us(dref::ref<dref::buffer> r) {
    auto t0 = std::chrono::steady_clock::now();
    auto v = dref::get(r, std::chrono::seconds{60});
    auto us = std::chrono::duration<double, std::micro>(
                std::chrono::steady_clock::now() - t0)
                .count();
    return v && !v->empty() && v->data()[v->size() - 1] == 0x5A ? us : -1;
  }
  int64_t size_of(const dref::buffer& b) {
    return static_cast<int64_t>(b.size());
  }
};

} // namespace

DREF_ACTOR(bench_vault, &bench_vault::fill, &bench_vault::size,
           &bench_vault::pid);
DREF_ACTOR(bench_node, &bench_node::pid, &bench_node::make,
           &bench_node::make_vector, &bench_node::last_fill_us, &bench_node::get_us,
           &bench_node::size_of);
DREF_REMOTE(bench_noop);
DREF_REMOTE(bench_fan_out);
DREF_REMOTE(bench_inc);
DREF_ACTOR(bench_counter, &bench_counter::bump);

namespace dref::cli {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Best of `repeat` runs of `f`, each returning a figure value.
template <class F>
double best_of(size_t repeat, bool higher_is_better, F f) {
  double best = higher_is_better ? 0 : 1e300;
  for (size_t i = 0; i < repeat; ++i) {
    auto v = f();
    best = higher_is_better ? std::max(best, v) : std::min(best, v);
  }
  return best;
}

// Plain CAF: an event-based actor keeps up to `window` echo requests in
// flight, spread over the workers, until `n` have been answered.
double baseline_async(caf::actor_system& sys,
                      const std::vector<worker_info>& ws, size_t n) {
  static constexpr size_t window = 1000;
  auto t0 = clock_type::now();
  {
    caf::scoped_actor waiter{sys};
    auto driver = sys.spawn([&ws, n, w = waiter->address()](
                              caf::event_based_actor* self) {
      auto sent = std::make_shared<size_t>(0);
      auto done = std::make_shared<size_t>(0);
      auto next = std::make_shared<std::function<void()>>();
      *next = [=, &ws] {
        auto i = (*sent)++;
        self->request(ws[i % ws.size()].echo, std::chrono::seconds{30},
                      echo_atom::value, static_cast<int32_t>(i))
          .then([=](int32_t) {
            if (++*done == n) {
              caf::anon_send(caf::actor_cast<caf::actor>(w), caf::ok_atom::value);
              self->quit();
            } else if (*sent < n) {
              (*next)();
            }
          });
      };
      for (size_t i = 0; i < std::min(window, n); ++i)
        (*next)();
    });
    waiter->receive([](caf::ok_atom) {});
  }
  return static_cast<double>(n) / seconds_since(t0);
}

double baseline_sync(caf::actor_system& sys,
                     const std::vector<worker_info>& ws, size_t n) {
  caf::scoped_actor self{sys};
  auto t0 = clock_type::now();
  for (size_t i = 0; i < n; ++i)
    self->request(ws[i % ws.size()].echo, std::chrono::seconds{30},
                  echo_atom::value, static_cast<int32_t>(i))
      .receive([](int32_t) {}, [](caf::error&) {});
  return static_cast<double>(n) / seconds_since(t0);
}

// The storage baseline for durable actors (issue 5): synced single puts
// into the RocksDB checkpoint store, against the same puts from 8 threads
// through the group committer (one synced write per group). Measured in a
// fresh temporary directory, removed afterwards.
std::pair<double, double> checkpoint_rates(size_t puts) {
  char tmpl[] = "/tmp/dref-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    return {0, 0};
  std::string dir = tmpl;
  double single = 0;
  double grouped = 0;
  {
    auto store = rocksdb_checkpoint_store::open(dir + "/db");
    if (store) {
      std::string value(256, 'v');
      auto t0 = clock_type::now();
      for (size_t i = 0; i < puts; ++i) {
        write_batch b;
        b.put(column_family::actor_state, "a" + std::to_string(i), value);
        if ((*store)->write(b))
          return {0, 0};
      }
      single = static_cast<double>(puts) / seconds_since(t0);
      group_committer committer{**store};
      constexpr size_t threads = 8;
      std::vector<std::thread> ts;
      std::atomic<size_t> failures{0};
      t0 = clock_type::now();
      for (size_t t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
          for (size_t i = t; i < puts * 4; i += threads) {
            write_batch b;
            b.put(column_family::actor_state, "g" + std::to_string(i), value);
            if (committer.submit(b))
              ++failures;
          }
        });
      for (auto& th : ts)
        th.join();
      grouped = failures == 0
                  ? static_cast<double>(puts * 4) / seconds_since(t0)
                  : 0;
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return {single, grouped};
}

} // namespace

std::vector<figure> run_bench(const bench_options& opts) {
  std::vector<figure> out;
  auto emit = [&](std::string name, double value, std::string unit) {
    std::cout << fmt::format("{} {:.6g} {}", name, value, unit) << std::endl;
    out.push_back(figure{std::move(name), value, std::move(unit)});
  };
  run_store_bench(opts, emit); // before the runtime: forks helpers
  if (opts.store_only)
    return out;
  config cfg;
  cfg.num_workers = opts.workers;
  runtime rt{cfg};
  if (!rt.running()) {
    std::cerr << "cannot start the runtime: " << to_string(rt.status())
              << std::endl;
    return out;
  }
  auto ws = rt.workers();
  emit("workers", static_cast<double>(ws.size()), "processes");
  // Warm up connections and caches.
  {
    std::vector<ref<int32_t>> refs;
    for (int i = 0; i < 1000; ++i)
      refs.push_back(rt.call(bench_noop));
    rt.wait(refs, refs.size(), std::chrono::seconds{30});
  }
  auto tasks_sync = best_of(opts.repeat, true, [&] {
    auto t0 = clock_type::now();
    for (size_t i = 0; i < opts.sync_calls; ++i)
      rt.get(rt.call(bench_noop), std::chrono::seconds{30});
    return static_cast<double>(opts.sync_calls) / seconds_since(t0);
  });
  auto tasks_async = best_of(opts.repeat, true, [&] {
    std::vector<ref<int32_t>> refs;
    refs.reserve(opts.tasks);
    auto t0 = clock_type::now();
    for (size_t i = 0; i < opts.tasks; ++i)
      refs.push_back(rt.call(bench_noop));
    auto res = rt.wait(refs, refs.size(), std::chrono::seconds{60});
    auto rate = static_cast<double>(opts.tasks) / seconds_since(t0);
    return res.not_ready.empty() ? rate : 0.0;
  });
  // The same fan-out from inside a worker (issue 11): a task calls the
  // tasks and owns their results.
  auto nested_async = best_of(opts.repeat, true, [&] {
    auto n = static_cast<int64_t>(opts.tasks);
    auto t0 = clock_type::now();
    auto done = rt.get(rt.call(bench_fan_out, n), std::chrono::seconds{120});
    auto rate = static_cast<double>(opts.tasks) / seconds_since(t0);
    return done && *done == n ? rate : 0.0;
  });
  auto counter = rt.spawn<bench_counter>();
  rt.get(counter.created(), std::chrono::seconds{30});
  auto actor_sync = best_of(opts.repeat, true, [&] {
    auto t0 = clock_type::now();
    for (size_t i = 0; i < opts.sync_calls; ++i)
      rt.get(counter.call(&bench_counter::bump), std::chrono::seconds{30});
    return static_cast<double>(opts.sync_calls) / seconds_since(t0);
  });
  auto actor_async = best_of(opts.repeat, true, [&] {
    std::vector<ref<int64_t>> refs;
    refs.reserve(opts.tasks);
    auto t0 = clock_type::now();
    for (size_t i = 0; i < opts.tasks; ++i)
      refs.push_back(counter.call(&bench_counter::bump));
    auto res = rt.wait(refs, refs.size(), std::chrono::seconds{60});
    auto rate = static_cast<double>(opts.tasks) / seconds_since(t0);
    return res.not_ready.empty() ? rate : 0.0;
  });
  auto chain = best_of(opts.repeat, false, [&] {
    auto t0 = clock_type::now();
    auto r = rt.call(bench_inc, int64_t{0});
    for (size_t i = 1; i < opts.chain; ++i)
      r = rt.call(bench_inc, r);
    auto v = rt.get(r, std::chrono::seconds{60});
    auto ms = seconds_since(t0) * 1000;
    return v && *v == static_cast<int64_t>(opts.chain) ? ms : 1e300;
  });
  auto base_sync = best_of(opts.repeat, true, [&] {
    return baseline_sync(rt.system(), ws, opts.sync_calls);
  });
  auto base_async = best_of(opts.repeat, true, [&] {
    return baseline_async(rt.system(), ws, opts.tasks);
  });
  // Nested refs (issue 3): gets/s of one object holding 10,000 refs (each
  // get deserializes and adopts all of them, then drops them again), and
  // waits/s of one `wait` over 1,000 refs whose tasks have finished.
  auto get_10k = best_of(opts.repeat, true, [&] {
    std::vector<ref<int64_t>> inner;
    inner.reserve(10000);
    for (int64_t i = 0; i < 10000; ++i)
      inner.push_back(rt.put(i));
    auto outer = rt.put(inner);
    inner.clear();
    size_t n = 0;
    auto t0 = clock_type::now();
    while (seconds_since(t0) < 1.0) {
      auto v = rt.get(outer, std::chrono::seconds{30});
      if (!v || v->size() != 10000)
        return 0.0;
      ++n;
    }
    return static_cast<double>(n) / seconds_since(t0);
  });
  auto wait_1k = best_of(opts.repeat, true, [&] {
    std::vector<ref<int32_t>> refs;
    for (int i = 0; i < 1000; ++i)
      refs.push_back(rt.call(bench_noop));
    if (!rt.wait(refs, refs.size(), std::chrono::seconds{30}).not_ready.empty())
      return 0.0;
    size_t n = 0;
    auto t0 = clock_type::now();
    while (seconds_since(t0) < 0.5) {
      if (rt.wait(refs, refs.size(), std::chrono::seconds{30}).ready.size()
          != refs.size())
        return 0.0;
      ++n;
    }
    return static_cast<double>(n) / seconds_since(t0);
  });
  // Owner-side bytes per owned small object: heap growth while 1,000,000
  // put refs are alive, minus the caller's own vector of refs.
  double bytes_per_ref = 0;
  {
    constexpr size_t n = 1000000;
    std::vector<ref<int64_t>> refs;
    refs.reserve(n);
    auto before = mallinfo2().uordblks;
    for (size_t i = 0; i < n; ++i)
      refs.push_back(rt.put(static_cast<int64_t>(i)));
    auto after = mallinfo2().uordblks;
    bytes_per_ref = static_cast<double>(after - before) / n;
  }
  // The node store through the runtime (issue 4): a task on worker A makes
  // 100 MiB, a task on worker B gets it (timed inside B around dref::get),
  // or takes the ref as an argument and returns its size (timed by the
  // driver, which never touches the bytes).
  double rt_get_large_us = 0;
  double pass_large_ms = 0;
  double pass_large_fill_ms = 0;
  double pass_large_vector_ms = 0;
  double pass_large_vector_fill_ms = 0;
  {
    constexpr int64_t large = int64_t{100} << 20;
    auto a = rt.spawn<bench_node>();
    auto b = rt.spawn<bench_node>();
    auto pa = rt.get(a.call(&bench_node::pid), std::chrono::seconds{30});
    auto pb = rt.get(b.call(&bench_node::pid), std::chrono::seconds{30});
    if (pa && pb && *pa != *pb) {
      rt_get_large_us = best_of(opts.repeat, false, [&] {
        auto r = a.call(&bench_node::make, large);
        // Made and sealed first: the figure is the get alone.
        if (!rt.wait(std::vector<ref<buffer>>{r}, 1, std::chrono::seconds{60})
               .not_ready.empty())
          return 1e300;
        auto us = rt.get(b.call(&bench_node::get_us, r),
                         std::chrono::seconds{60});
        return us && *us >= 0 ? *us : 1e300;
      });
      // Best of `repeat` runs; the fill figure is the one of the best run.
      auto pass = [&](auto make, double& fill_ms) {
        double best = 1e300;
        for (size_t i = 0; i < std::max<size_t>(opts.repeat, 1); ++i) {
          auto t0 = clock_type::now();
          auto r = a.call(make, large);
          auto n = rt.get(b.call(&bench_node::size_of, r),
                          std::chrono::seconds{60});
          auto ms = seconds_since(t0) * 1000;
          auto fill = rt.get(a.call(&bench_node::last_fill_us),
                             std::chrono::seconds{30});
          if (n && *n == large && fill && ms < best) {
            best = ms;
            fill_ms = *fill / 1000;
          }
        }
        return best < 1e300 ? best : 0.0;
      };
      pass_large_ms = pass(&bench_node::make, pass_large_fill_ms);
      pass_large_vector_ms = pass(&bench_node::make_vector,
                                  pass_large_vector_fill_ms);
    } else {
      std::cerr << "bench: the two bench actors share a worker; "
                   "skipping the node-store figures"
                << std::endl;
    }
  }
  // Acknowledged durable calls: 100 durable actors, 20 calls each in
  // flight at once, every acknowledgement after its state is synced to disk.
  double durable_rate = 0;
  double recovery_ms = 0;
  {
    char tmpl[] = "/tmp/dref-bench-state-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) {
      std::string dir = tmpl;
      config dcfg = cfg;
      dcfg.state_dir = dir;
      {
        runtime drt{dcfg};
        if (drt.running()) {
          std::vector<actor_handle<bench_counter>> actors;
          for (int i = 0; i < 100; ++i)
            actors.push_back(drt.spawn<bench_counter>(
              durable("bench-" + std::to_string(i))));
          for (auto& a : actors)
            drt.get(a.created(), std::chrono::seconds{30});
          durable_rate = best_of(opts.repeat, true, [&] {
            std::vector<ref<int64_t>> acks;
            auto t0 = clock_type::now();
            for (int k = 0; k < 20; ++k)
              for (auto& a : actors)
                acks.push_back(a.call(&bench_counter::bump));
            auto res = drt.wait(acks, acks.size(), std::chrono::seconds{60});
            for (auto& r : res.ready)
              if (!drt.get(r, std::chrono::seconds{1}))
                return 0.0;
            return res.not_ready.empty()
                     ? static_cast<double>(acks.size()) / seconds_since(t0)
                     : 0.0;
          });
          // Recovery of a durable actor with 100 MiB of state: SIGKILL its
          // worker, then time until a call on it answers again (the owner
          // reads the checkpoint, a worker restores it, the call runs and
          // its checkpoint is written: every call is durable).
          auto v = drt.spawn<bench_vault>(durable("bench-vault"));
          auto filled = drt.get(v.call(&bench_vault::fill, int64_t{100}),
                                std::chrono::seconds{120});
          if (filled && *filled == int64_t{100} << 20)
            recovery_ms = best_of(opts.repeat, false, [&] {
              auto pid = drt.get(v.call(&bench_vault::pid),
                                 std::chrono::seconds{120});
              if (!pid)
                return 1e300;
              auto t0 = clock_type::now();
              ::kill(*pid, SIGKILL);
              auto size = drt.get(v.call(&bench_vault::size),
                                  std::chrono::seconds{120});
              auto ms = seconds_since(t0) * 1000;
              // Let the replacement worker register before the next round.
              for (int i = 0; i < 2000 && drt.workers().size() < ws.size(); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds{5});
              return size && *size == int64_t{100} << 20 ? ms : 1e300;
            });
        }
      }
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  emit("tasks_sync", tasks_sync, "tasks/s");
  emit("tasks_async", tasks_async, "tasks/s");
  emit("nested_tasks_async", nested_async, "tasks/s");
  emit("actor_calls_sync", actor_sync, "calls/s");
  emit("actor_calls_async", actor_async, "calls/s");
  emit(fmt::format("chain_refs_{}", opts.chain), chain, "ms");
  emit("baseline_rpc_sync", base_sync, "req/s");
  emit("baseline_rpc_async", base_async, "req/s");
  emit("owner_bytes_per_ref", bytes_per_ref, "bytes");
  emit("get_10k_refs", get_10k, "gets/s");
  emit("wait_1k_refs", wait_1k, "waits/s");
  auto [sync_put, group_put] = checkpoint_rates(300);
  emit("rocksdb_sync_put", sync_put, "puts/s");
  emit("rocksdb_group_commit_put", group_put, "puts/s");
  emit("durable_calls", durable_rate, "calls/s");
  emit("durable_calls_vs_rocksdb_sync_put", durable_rate / sync_put, "ratio");
  emit("actor_recovery_ms", recovery_ms, "ms");
  double memcpy_large = 0;
  for (auto& f : out)
    if (f.name == "memcpy_large_us")
      memcpy_large = f.value;
  emit("rt_get_large_same_node_us", rt_get_large_us, "us");
  if (memcpy_large > 0 && rt_get_large_us > 0)
    emit("memcpy_large_vs_rt_get_large_same_node",
         memcpy_large / rt_get_large_us, "ratio");
  emit("pass_large_ref_ms", pass_large_ms, "ms");
  emit("pass_large_ref_fill_ms", pass_large_fill_ms, "ms");
  if (memcpy_large > 0)
    emit("pass_large_ref_budget_ms",
         2 * memcpy_large / 1000 + pass_large_fill_ms, "ms");
  emit("pass_large_ref_vector_ms", pass_large_vector_ms, "ms");
  emit("pass_large_ref_vector_fill_ms", pass_large_vector_fill_ms, "ms");
  emit("tasks_sync_vs_baseline", tasks_sync / base_sync, "ratio");
  emit("tasks_async_vs_baseline", tasks_async / base_async, "ratio");
  emit("actor_calls_sync_vs_baseline", actor_sync / base_sync, "ratio");
  emit("nested_tasks_async_vs_tasks_async", nested_async / tasks_async,
       "ratio");
  return out;
}

} // namespace dref::cli
