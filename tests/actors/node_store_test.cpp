// The node store wired into the runtime (issue 4): results above the
// inline limit live once in the driver's shared-memory store; every worker
// (and the driver) reads them in place. Each test runs a real local cluster
// and looks at the real mappings (/proc/self/maps) and files (/dev/shm).

#include "test_util.hpp"

#include "caf/all.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace dref;
using namespace std::chrono_literals;

namespace {

constexpr int32_t mib = 1 << 20;

// Deterministic bytes: value i of a buffer made with `seed`.
char pattern(int32_t seed, size_t i) {
  return static_cast<char>((i * 131 + static_cast<size_t>(seed) * 7) & 0xFF);
}

uint64_t checksum(const char* data, size_t size) {
  uint64_t h = 1469598103934665603ull; // FNV-1a over every 4096th byte + size
  for (size_t i = 0; i < size; i += 4096)
    h = (h ^ static_cast<unsigned char>(data[i])) * 1099511628211ull;
  return h ^ size;
}

std::vector<char> make_bytes(int32_t size, int32_t seed) {
  std::vector<char> bytes(static_cast<size_t>(size));
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = pattern(seed, i);
  return bytes;
}

// Where the bytes at `p` come from in this process, read from
// /proc/self/maps: the mapped file's device, inode and path (empty for
// anonymous memory such as the heap).
struct mapping_info {
  int32_t pid = 0;
  std::string dev;
  uint64_t inode = 0;
  std::string path;
  uint64_t sum = 0;
  uint64_t size = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mapping_info& x) {
  return f(caf::meta::type_name("test.mapping_info"), x.pid, x.dev, x.inode,
           x.path, x.sum, x.size);
}

mapping_info mapping_of(const char* p, size_t size) {
  mapping_info info;
  info.pid = static_cast<int32_t>(getpid());
  info.sum = checksum(p, size);
  info.size = size;
  std::ifstream maps{"/proc/self/maps"};
  std::string line;
  auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    std::istringstream in{line};
    std::string range, perms, offset, dev;
    uint64_t inode = 0;
    in >> range >> perms >> offset >> dev >> inode;
    auto dash = range.find('-');
    auto first = std::stoull(range.substr(0, dash), nullptr, 16);
    auto last = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (addr < first || addr + size > last)
      continue;
    std::string path;
    std::getline(in >> std::ws, path);
    info.dev = dev;
    info.inode = inode;
    info.path = path;
    break;
  }
  return info;
}

// -- tasks --------------------------------------------------------------------

buffer node_make_big(int32_t size, int32_t seed) {
  return make_buffer(make_bytes(size, seed));
}

// A large value that knows which worker made it.
struct tagged_buffer {
  int32_t pid = 0;
  buffer data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, tagged_buffer& x) {
  return f(caf::meta::type_name("test.tagged_buffer"), x.pid, x.data);
}

tagged_buffer node_make_tagged(int32_t size, int32_t seed) {
  return tagged_buffer{static_cast<int32_t>(getpid()),
                       make_buffer(make_bytes(size, seed))};
}

mapping_info node_where_tagged(const tagged_buffer& x) {
  return mapping_of(x.data.data(), x.data.size());
}

mapping_info node_where(const buffer& b) {
  return mapping_of(b.data(), b.size());
}

// An actor per worker, to read the same value in two processes.
struct node_prober {
  mapping_info probe(const buffer& b) {
    return mapping_of(b.data(), b.size());
  }
  int32_t pid() {
    return static_cast<int32_t>(getpid());
  }
};

// Gets the value inside the task (a ref it was given, owned by the driver).
mapping_info node_get_where(ref<buffer> r) {
  auto v = dref::get(r, std::chrono::seconds{10});
  if (!v)
    throw std::runtime_error("get failed: " + caf::to_string(v.error()));
  return mapping_of(v->data(), v->size());
}

// -- tasks that fill their bytes in place (buffer_writer) ---------------------

// Fills `size` bytes made with make_buffer_writer with pattern `seed`; fails
// (throws) unless they lie in the node store as `in_node` says.
buffer_writer fill_writer(int32_t size, int32_t seed, bool in_node) {
  auto w = make_buffer_writer(static_cast<size_t>(size));
  if (!w)
    throw std::runtime_error("make_buffer_writer failed: "
                             + caf::to_string(w.error()));
  if (w->in_node_store() != in_node)
    throw std::runtime_error(in_node ? "writer not in the node store"
                                     : "writer unexpectedly in the node store");
  if (w->size() != static_cast<size_t>(size))
    throw std::runtime_error("writer of the wrong size");
  for (size_t i = 0; i < w->size(); ++i)
    w->data()[i] = pattern(seed, i);
  return std::move(*w);
}

// An actor per worker that makes values in place and remembers where the
// last one was written (the writer's own mapping, before the seal).
struct in_place_maker {
  mapping_info written;
  buffer make(int32_t size, int32_t seed) {
    auto w = fill_writer(size, seed, true);
    written = mapping_of(w.data(), w.size());
    return std::move(w).finish();
  }
  // The same buffer returned inside another value: serialized (one copy).
  tagged_buffer make_tagged(int32_t size, int32_t seed) {
    auto w = fill_writer(size, seed, true);
    return tagged_buffer{static_cast<int32_t>(getpid()),
                         std::move(w).finish()};
  }
  // Fills a segment, then drops it.
  int64_t make_and_drop(int32_t size, int32_t seed) {
    auto w = fill_writer(size, seed, true);
    auto b = std::move(w).finish();
    return static_cast<int64_t>(b.size());
  }
  // Fills a segment, then throws.
  buffer make_and_throw(int32_t size, int32_t seed) {
    auto b = fill_writer(size, seed, true).finish();
    throw std::runtime_error("failed after filling " + std::to_string(b.size())
                             + " bytes");
  }
  // At or below the inline limit: heap bytes, the result travels inline.
  buffer make_small(int32_t size, int32_t seed) {
    return fill_writer(size, seed, false).finish();
  }
  mapping_info last_written() {
    return written;
  }
  // Keeps the finished buffer and returns it: sealed in place as this
  // call's result; returned again by `again`: copied into another result.
  buffer kept;
  buffer make_kept(int32_t size, int32_t seed) {
    kept = fill_writer(size, seed, true).finish();
    return kept;
  }
  buffer again() {
    return kept;
  }
  // The permissions of the kept buffer's mapping ("r--s": read-only).
  std::string kept_perms() {
    std::ifstream maps{"/proc/self/maps"};
    std::string line;
    auto addr = reinterpret_cast<uintptr_t>(kept.data());
    while (std::getline(maps, line)) {
      std::istringstream in{line};
      std::string range, perms;
      in >> range >> perms;
      auto dash = range.find('-');
      if (addr >= std::stoull(range.substr(0, dash), nullptr, 16)
          && addr < std::stoull(range.substr(dash + 1), nullptr, 16))
        return perms;
    }
    return {};
  }
  int32_t pid() {
    return static_cast<int32_t>(getpid());
  }
};

// The names of the files of the store at `prefix` other than its lock file
// and the segments it keeps for reuse: the objects' segments (sealed or
// being written) and spill files.
std::vector<std::string> object_files(const std::string& prefix);

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

uint64_t inode_of(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Files in the directory of `prefix` whose names start with its last part.
std::vector<std::string> files_with_prefix(const std::string& prefix) {
  std::vector<std::string> result;
  auto slash = prefix.rfind('/');
  auto dir = prefix.substr(0, slash);
  auto start = prefix.substr(slash + 1);
  if (auto d = ::opendir(dir.c_str())) {
    while (auto ent = ::readdir(d)) {
      std::string name = ent->d_name;
      if (name.compare(0, start.size(), start) == 0)
        result.push_back(dir + "/" + name);
    }
    ::closedir(d);
  }
  return result;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return !prefix.empty() && s.compare(0, prefix.size(), prefix) == 0;
}

std::vector<std::string> object_files(const std::string& prefix) {
  std::vector<std::string> result;
  for (auto& path : files_with_prefix(prefix))
    if (path != prefix + "lock" && !starts_with(path, prefix + "pool."))
      result.push_back(path);
  return result;
}

// -- values a task puts (dref::put) --------------------------------------------

// A value a task put (owned by that task's worker process) and the pid of
// that worker.
struct put_value {
  ref<buffer> data;
  int32_t pid = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, put_value& x) {
  return f(caf::meta::type_name("test.put_value"), x.data, x.pid);
}

// Inside a task: puts `x` or throws (the task then fails with the reason).
template <class T>
ref<std::decay_t<T>> put_or_throw(T&& x) {
  auto r = dref::put(std::forward<T>(x));
  if (!r)
    throw std::runtime_error("put failed: " + caf::to_string(r.error()));
  return std::move(*r);
}

put_value node_put(int32_t size, int32_t seed) {
  return put_value{put_or_throw(make_buffer(make_bytes(size, seed))),
                   static_cast<int32_t>(getpid())};
}

// A value a task filled in place (buffer_writer) and put, and where the
// writer's bytes were.
struct put_in_place_value {
  ref<buffer> data;
  mapping_info written;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, put_in_place_value& x) {
  return f(caf::meta::type_name("test.put_in_place_value"), x.data,
           x.written);
}

put_in_place_value node_put_in_place(int32_t size, int32_t seed) {
  auto w = fill_writer(size, seed, true);
  auto written = mapping_of(w.data(), w.size());
  return put_in_place_value{put_or_throw(std::move(w).finish()), written};
}

// A large value put as a struct: serialized straight into the node store.
struct put_tagged_value {
  ref<tagged_buffer> data;
  int32_t pid = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, put_tagged_value& x) {
  return f(caf::meta::type_name("test.put_tagged_value"), x.data, x.pid);
}

put_tagged_value node_put_tagged(int32_t size, int32_t seed) {
  return put_tagged_value{
    put_or_throw(tagged_buffer{seed, make_buffer(make_bytes(size, seed))}),
    static_cast<int32_t>(getpid())};
}

// A large value holding a ref to a small one, both put by the task.
struct big_with_ref {
  ref<int32_t> inner;
  buffer data;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, big_with_ref& x) {
  return f(caf::meta::type_name("test.big_with_ref"), x.inner, x.data);
}

ref<big_with_ref> node_put_with_ref(int32_t size, int32_t seed) {
  return put_or_throw(big_with_ref{put_or_throw(int32_t{seed}),
                                   make_buffer(make_bytes(size, seed))});
}

// Puts a value and drops its only ref before the task ends.
int64_t node_put_and_drop(int32_t size, int32_t seed) {
  put_or_throw(make_buffer(make_bytes(size, seed))); // dropped at once
  return static_cast<int64_t>(size);
}

// The file a worker-owned object `id` is sealed in (see docs/formats.md:
// `<prefix><owner hex>.<seq hex>`).
std::string segment_of(const std::string& prefix, const object_id& id) {
  char name[40];
  std::snprintf(name, sizeof(name), "%016llx.%016llx",
                static_cast<unsigned long long>(id.owner),
                static_cast<unsigned long long>(id.seq));
  return prefix + name;
}

// An actor per worker that reads refs it is given inside its task.
struct put_reader {
  // Gets `r` and reports where the bytes are mapped.
  mapping_info where(ref<buffer> r) {
    return node_get_where(std::move(r));
  }
  // Gets `r`; "ok" or the error as "<category>:<code>".
  std::string read(ref<buffer> r) {
    auto v = dref::get(r, std::chrono::seconds{10});
    if (!v)
      return caf::to_string(v.error().category()) + ":"
             + std::to_string(v.error().code());
    return "ok";
  }
  int32_t pid() {
    return static_cast<int32_t>(getpid());
  }
};

// Objects in the node store now (a stats call may fail while a worker that
// just died is still listed: then "unknown", never 0).
uint64_t node_objects(runtime& rt) {
  auto st = rt.stats(std::chrono::seconds{1});
  return st ? st->node_objects : ~uint64_t{0};
}

// Waits (bounded) until `pred()` holds; returns its last value.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

} // namespace

DREF_ACTOR(in_place_maker, &in_place_maker::make, &in_place_maker::make_tagged,
           &in_place_maker::make_and_drop, &in_place_maker::make_and_throw,
           &in_place_maker::make_small, &in_place_maker::last_written,
           &in_place_maker::make_kept, &in_place_maker::again,
           &in_place_maker::kept_perms, &in_place_maker::pid);
DREF_REMOTE(node_make_big);
DREF_REMOTE(node_put_in_place);
DREF_REMOTE(node_put_tagged);
DREF_REMOTE(node_put_with_ref);
DREF_REMOTE(node_make_tagged);
DREF_REMOTE(node_where_tagged);
DREF_REMOTE(node_where);
DREF_REMOTE(node_get_where);
DREF_ACTOR(node_prober, &node_prober::probe, &node_prober::pid);
DREF_REMOTE(node_put);
DREF_REMOTE(node_put_and_drop);
DREF_ACTOR(put_reader, &put_reader::where, &put_reader::read,
           &put_reader::pid);

TEST_CASE("two workers read the same large value from one shared-memory "
          "segment without copying it") {
  // A task makes 8 MiB (above the 100 KiB inline limit), sealed once in the
  // driver's node store; an actor on each worker takes it as a `buffer`
  // parameter and reports the file behind the buffer's bytes.
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    auto big = rt.call(node_make_big, 8 * mib, 1);
    // Made before the actors are placed: while it runs, its worker counts
    // as loaded, and both actors could land on the other one.
    std::vector<ref<buffer>> made{big};
    REQUIRE(rt.wait(made, 1, 10s).not_ready.empty());
    auto a = rt.spawn<node_prober>();
    auto b = rt.spawn<node_prober>();
    auto pa = rt.get(a.call(&node_prober::pid), 10s);
    auto pb = rt.get(b.call(&node_prober::pid), 10s);
    REQUIRE(pa);
    REQUIRE(pb);
    REQUIRE(*pa != *pb); // two worker processes
    auto ma = rt.get(a.call(&node_prober::probe, big), 10s);
    auto mb = rt.get(b.call(&node_prober::probe, big), 10s);
    REQUIRE(ma);
    REQUIRE(mb);
    auto expected = make_bytes(8 * mib, 1);
    for (auto* m : {&*ma, &*mb}) {
      INFO("reader pid " << m->pid << " maps " << m->path);
      CHECK(m->size == uint64_t{8} * mib);
      CHECK(m->sum == checksum(expected.data(), expected.size()));
      // The buffer's bytes lie in a mapping of one of the store's segment
      // files: the reader made no copy.
      CHECK(starts_with(m->path, prefix));
      CHECK(m->inode != 0);
      CHECK(m->inode == inode_of(m->path));
    }
    CHECK(ma->pid == *pa);
    CHECK(mb->pid == *pb);
    // The same file in both processes.
    CHECK(ma->dev == mb->dev);
    CHECK(ma->inode == mb->inode);
    CHECK(ma->path == mb->path);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1);
    CHECK(st->node_bytes > uint64_t{8} * mib);
    for (auto& w : st->workers)
      CHECK(w.bytes < 1000); // small results only: no copy of the 8 MiB
  });
}

TEST_CASE("a large value the driver puts is sealed once in the node store "
          "and read in place by tasks, and a small one stays inline") {
  test::with_cluster([](runtime& rt) {
    auto bytes = make_bytes(3 * mib, 7);
    auto big = rt.put(make_buffer(bytes));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1);
    CHECK(st->node_bytes > uint64_t{3} * mib);
    // A task given the ref maps the store's segment: no copy.
    auto m = rt.get(rt.call(node_get_where, big), 10s);
    REQUIRE_MESSAGE(m, test::why(m));
    CHECK(starts_with(m->path, rt.node_store_prefix()));
    CHECK(m->sum == checksum(bytes.data(), bytes.size()));
    // So does the driver's own get.
    auto v = rt.get(big, 10s);
    REQUIRE(v);
    CHECK(starts_with(mapping_of(v->data(), v->size()).path,
                      rt.node_store_prefix()));
    auto small = rt.put(make_buffer(make_bytes(1024, 8)));
    CHECK(rt.stats().value().node_objects == 1); // inline
    CHECK(rt.get(small, 10s).value().size() == 1024u);
    v = caf::error{};
    big = {};
    // The segment goes with the last ref (check_no_leaks: node_objects 0).
  });
}

TEST_CASE("the driver's get of a large value reads the node store in place") {
  test::with_cluster([](runtime& rt) {
    auto big = rt.call(node_make_big, 2 * mib, 2);
    auto v = rt.get(big, 10s);
    REQUIRE(v);
    REQUIRE(v->size() == size_t{2} * mib);
    auto expected = make_bytes(2 * mib, 2);
    CHECK(std::memcmp(v->data(), expected.data(), expected.size()) == 0);
    auto m = mapping_of(v->data(), v->size());
    CHECK(starts_with(m.path, rt.node_store_prefix()));
  });
}

TEST_CASE("a task's get of a large value it holds a ref to maps the node "
          "store") {
  // The task gets a ref (not the value) and calls dref::get: the driver,
  // owner of the value, answers "in the node store" and the worker maps it.
  test::with_cluster([](runtime& rt) {
    auto big = rt.call(node_make_big, 4 * mib, 6);
    auto m = rt.get(rt.call(node_get_where, big), 10s);
    REQUIRE(m);
    auto expected = make_bytes(4 * mib, 6);
    CHECK(m->sum == checksum(expected.data(), expected.size()));
    CHECK(m->pid != getpid());
    INFO("mapped from " << m->path);
    CHECK(starts_with(m->path, rt.node_store_prefix()));
  });
}

TEST_CASE("a large value survives the SIGKILL of the worker that made it") {
  // The producing worker dies after its result was sealed: the bytes are in
  // the node store (hosted by the driver), so the value stays ready and is
  // read afterwards by the driver and by a task on another worker.
  test::with_cluster([](runtime& rt) {
    auto big = rt.call(node_make_tagged, 4 * mib, 3);
    auto v = rt.get(big, 10s);
    REQUIRE(v);
    auto producer = v->pid;
    auto expected = make_bytes(4 * mib, 3);
    auto sum = checksum(expected.data(), expected.size());
    v = caf::expected<tagged_buffer>{tagged_buffer{}}; // drop the view
    REQUIRE(::kill(producer, SIGKILL) == 0);
    // Wait (bounded) until the runtime saw the death.
    auto deadline = std::chrono::steady_clock::now() + 10s;
    auto listed = [&] {
      for (auto& w : rt.workers())
        if (w.pid == producer)
          return true;
      return false;
    };
    while (listed() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    REQUIRE_FALSE(listed());
    auto again = rt.get(big, 10s);
    REQUIRE(again);
    CHECK(again->pid == producer);
    CHECK(checksum(again->data.data(), again->data.size()) == sum);
    auto m = rt.get(rt.call(node_where_tagged, big), 10s);
    REQUIRE(m);
    CHECK(m->pid != producer);
    CHECK(m->sum == sum);
    CHECK(starts_with(m->path, rt.node_store_prefix()));
  });
}

TEST_CASE("freeing a large value deletes its segment, and stopping the "
          "runtime leaves no file of its store") {
  std::string prefix;
  test::with_cluster([&](runtime& rt) {
    prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    std::string path;
    {
      auto big = rt.call(node_make_big, 4 * mib, 4);
      auto m = rt.get(rt.call(node_where, big), 10s);
      REQUIRE(m);
      path = m->path;
      REQUIRE(starts_with(path, prefix));
      CHECK(exists(path));
      auto st = rt.stats();
      REQUIRE(st);
      CHECK(st->node_objects == 1);
    } // the last ref goes: the owner frees the object everywhere
    test::check_no_leaks(rt); // waits for the node store to be empty
    CHECK_FALSE(exists(path));
  });
  CHECK(files_with_prefix(prefix).empty());
}

TEST_CASE("a small buffer made in a task travels inline and reads back") {
  test::with_cluster([](runtime& rt) {
    auto small = rt.call(node_make_big, 1000, 5);
    auto v = rt.get(small, 10s);
    REQUIRE(v);
    auto expected = make_bytes(1000, 5);
    REQUIRE(v->size() == expected.size());
    CHECK(std::memcmp(v->data(), expected.data(), expected.size()) == 0);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 0); // at or below the inline limit
  });
}

TEST_CASE("values beyond the node store's capacity spill to disk and read "
          "back") {
  // 10 MiB of shared memory, three values of 4 MiB: making the third spills
  // the least recently used one to the runtime's spill directory; reading
  // it restores it.
  auto cfg = test::small_cluster();
  cfg.store_capacity = 10 * uint64_t{mib};
  test::with_cluster(cfg, [](runtime& rt) {
    std::vector<ref<buffer>> values;
    for (int32_t i = 0; i < 3; ++i) {
      values.push_back(rt.call(node_make_big, 4 * mib, 10 + i));
      REQUIRE(rt.wait(values, values.size(), 10s).not_ready.empty());
    }
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 3);
    CHECK(st->node_on_disk >= 1);
    CHECK(st->node_bytes <= 10 * uint64_t{mib});
    for (int32_t i = 0; i < 3; ++i) {
      auto m = rt.get(rt.call(node_where, values[static_cast<size_t>(i)]),
                      10s);
      REQUIRE(m);
      auto expected = make_bytes(4 * mib, 10 + i);
      CHECK(m->sum == checksum(expected.data(), expected.size()));
      CHECK(starts_with(m->path, rt.node_store_prefix()));
    }
  });
}

// -- values filled in place (buffer_writer) -------------------------------------

TEST_CASE("a buffer a task fills in place becomes its result without a copy: "
          "the reader on another worker maps the very segment the writer "
          "filled") {
  // Worker A's actor fills 8 MiB in a node-store segment and returns the
  // buffer; worker B's actor takes the ref as an argument. Both report the
  // file behind the bytes (A: its writable mapping before the seal; B: its
  // read-only mapping): the same inode, one object in the store, and the
  // bytes as written.
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    auto a = rt.spawn<in_place_maker>();
    auto b = rt.spawn<node_prober>();
    auto pa = rt.get(a.call(&in_place_maker::pid), 10s);
    auto pb = rt.get(b.call(&node_prober::pid), 10s);
    REQUIRE(pa);
    REQUIRE(pb);
    REQUIRE(*pa != *pb);
    auto big = a.call(&in_place_maker::make, 8 * mib, 21);
    auto mb = rt.get(b.call(&node_prober::probe, big), 10s);
    REQUIRE(mb);
    auto wa = rt.get(a.call(&in_place_maker::last_written), 10s);
    REQUIRE(wa);
    INFO("writer " << wa->pid << " wrote " << wa->path << ", reader "
                   << mb->pid << " maps " << mb->path);
    CHECK(wa->pid == *pa);
    CHECK(mb->pid == *pb);
    CHECK(starts_with(wa->path, prefix)); // the writer wrote into the store
    CHECK(starts_with(mb->path, prefix));
    CHECK(wa->inode != 0);
    CHECK(mb->dev == wa->dev);
    CHECK(mb->inode == wa->inode); // the same file: nobody copied
    CHECK(mb->inode == inode_of(mb->path));
    auto expected = make_bytes(8 * mib, 21);
    CHECK(mb->size == expected.size());
    CHECK(mb->sum == checksum(expected.data(), expected.size()));
    // Byte for byte, read by the driver in place.
    auto v = rt.get(big, 10s);
    REQUIRE(v);
    REQUIRE(v->size() == expected.size());
    CHECK(std::memcmp(v->data(), expected.data(), expected.size()) == 0);
    CHECK(starts_with(mapping_of(v->data(), v->size()).path, prefix));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1); // no second segment, no leftover one
    for (auto& w : st->workers)
      CHECK(w.bytes < 1000);
  });
}

TEST_CASE("a buffer filled in place and dropped, or followed by a throw, "
          "leaves no segment in shared memory") {
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    auto a = rt.spawn<in_place_maker>();
    auto dropped = rt.get(a.call(&in_place_maker::make_and_drop, 4 * mib, 22),
                          10s);
    REQUIRE(dropped);
    CHECK(*dropped == 4 * mib);
    // The task ended after the abort: nothing in the store, no file.
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 0);
    CHECK(st->node_bytes == 0);
    CHECK(object_files(prefix).empty());
    auto thrown = rt.get(a.call(&in_place_maker::make_and_throw, 4 * mib, 23),
                         10s);
    REQUIRE_FALSE(thrown);
    CHECK(test::is(thrown.error(), actors_errc::task_failed));
    st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 0);
    CHECK(st->node_bytes == 0);
    CHECK(object_files(prefix).empty());
    // The store still works: a value made in place afterwards reads back.
    auto v = rt.get(a.call(&in_place_maker::make, 4 * mib, 24), 10s);
    REQUIRE(v);
    auto expected = make_bytes(4 * mib, 24);
    REQUIRE(v->size() == expected.size());
    CHECK(std::memcmp(v->data(), expected.data(), expected.size()) == 0);
  });
}

TEST_CASE("a buffer filled in place and returned inside another value is "
          "copied once and its segment given up") {
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    auto a = rt.spawn<in_place_maker>();
    auto t = a.call(&in_place_maker::make_tagged, 4 * mib, 25);
    auto v = rt.get(t, 10s);
    REQUIRE(v);
    auto expected = make_bytes(4 * mib, 25);
    REQUIRE(v->data.size() == expected.size());
    CHECK(std::memcmp(v->data.data(), expected.data(), expected.size()) == 0);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1); // the result; the filled segment is gone
    CHECK(object_files(prefix).size() == 1);
  });
}

TEST_CASE("a small buffer_writer in a task and one in the driver use the "
          "heap and behave the same") {
  test::with_cluster([](runtime& rt) {
    auto a = rt.spawn<in_place_maker>();
    auto small = rt.get(a.call(&in_place_maker::make_small, 1000, 26), 10s);
    REQUIRE(small);
    auto expected = make_bytes(1000, 26);
    REQUIRE(small->size() == expected.size());
    CHECK(std::memcmp(small->data(), expected.data(), expected.size()) == 0);
    // In the driver: heap bytes of any size, put like any large value.
    auto w = make_buffer_writer(2 * mib);
    REQUIRE(w);
    CHECK_FALSE(w->in_node_store());
    REQUIRE(w->size() == size_t{2} * mib);
    auto big = make_bytes(2 * mib, 27);
    std::memcpy(w->data(), big.data(), big.size());
    auto data = w->data();
    auto b = std::move(*w).finish();
    CHECK(b.data() == data); // no copy
    CHECK(w->data() == nullptr);
    auto r = rt.put(b);
    auto v = rt.get(r, 10s);
    REQUIRE(v);
    REQUIRE(v->size() == big.size());
    CHECK(std::memcmp(v->data(), big.data(), big.size()) == 0);
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1); // put like any large value: sealed there
  });
}

TEST_CASE("a buffer filled in place that the task keeps stays readable, "
          "becomes read-only once sealed, and returned again is copied into "
          "another result") {
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    auto a = rt.spawn<in_place_maker>();
    auto expected = make_bytes(4 * mib, 28);
    {
      auto first = a.call(&in_place_maker::make_kept, 4 * mib, 28);
      auto second = a.call(&in_place_maker::again);
      auto v1 = rt.get(first, 10s);
      auto v2 = rt.get(second, 10s);
      REQUIRE(v1);
      REQUIRE(v2);
      REQUIRE(v1->size() == expected.size());
      REQUIRE(v2->size() == expected.size());
      CHECK(std::memcmp(v1->data(), expected.data(), expected.size()) == 0);
      CHECK(std::memcmp(v2->data(), expected.data(), expected.size()) == 0);
      auto m1 = mapping_of(v1->data(), v1->size());
      auto m2 = mapping_of(v2->data(), v2->size());
      CHECK(starts_with(m1.path, prefix));
      CHECK(starts_with(m2.path, prefix));
      CHECK(m1.inode != m2.inode); // two objects, two segments
      auto perms = rt.get(a.call(&in_place_maker::kept_perms), 10s);
      REQUIRE(perms);
      CHECK(perms->substr(0, 2) == "r-");
      auto st = rt.stats();
      REQUIRE(st);
      CHECK(st->node_objects == 2);
    }
    // Both results freed; the actor's kept view keeps its pages, not the
    // objects: check_no_leaks finds the store empty.
  });
}

// -- values a task puts (dref::put) --------------------------------------------

namespace {

// A put_reader on the worker other than `pid`'s, and one on `pid`'s own
// (two workers: spawns alternate between them).
std::pair<actor_handle<put_reader>, actor_handle<put_reader>>
readers_around(runtime& rt, int32_t pid) {
  actor_handle<put_reader> other;
  actor_handle<put_reader> same;
  for (int i = 0; i < 8 && (!other || !same); ++i) {
    auto r = rt.spawn<put_reader>();
    auto p = rt.get(r.call(&put_reader::pid), 10s);
    REQUIRE(p);
    if (*p == pid && !same)
      same = r;
    else if (*p != pid && !other)
      other = r;
  }
  REQUIRE(other);
  REQUIRE(same);
  return {other, same};
}

} // namespace

TEST_CASE("a large value a task puts is sealed once in the node store under "
          "its worker's id and read in place by every worker and the "
          "driver") {
  // Worker A's task puts 8 MiB (above the 100 KiB inline limit): A owns the
  // object and seals its bytes in the driver's node store as a file named
  // by the object's id, keeping no heap copy. An actor on worker B and one
  // on A get the ref inside a task; the driver gets it too. All three map
  // that very file.
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    auto made = rt.get(rt.call(node_put, 8 * mib, 31), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    auto id = made->data.id();
    CHECK(id.owner != 0);
    auto path = segment_of(prefix, id);
    INFO("segment " << path);
    CHECK(exists(path));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1);
    CHECK(st->node_bytes > uint64_t{8} * mib);
    for (auto& w : st->workers)
      CHECK(w.bytes < 1000); // the owner keeps no heap copy
    auto [other, same] = readers_around(rt, made->pid);
    auto expected = make_bytes(8 * mib, 31);
    // The bytes travel as a length-prefixed buffer: compare the value.
    auto sum = checksum(expected.data(), expected.size());
    auto mo = rt.get(other.call(&put_reader::where, made->data), 10s);
    auto ms = rt.get(same.call(&put_reader::where, made->data), 10s);
    REQUIRE_MESSAGE(mo, test::why(mo));
    REQUIRE_MESSAGE(ms, test::why(ms));
    CHECK(mo->pid != made->pid);
    CHECK(ms->pid == made->pid);
    for (auto* m : {&*mo, &*ms}) {
      INFO("reader " << m->pid << " maps " << m->path);
      CHECK(m->path == path);
      CHECK(m->inode == inode_of(path));
      CHECK(m->size == expected.size());
      CHECK(m->sum == sum);
    }
    CHECK(mo->dev == ms->dev);
    CHECK(mo->inode == ms->inode);
    // A task given the ref as a `buffer` argument maps it too.
    auto b = rt.spawn<node_prober>();
    auto mp = rt.get(b.call(&node_prober::probe, made->data), 10s);
    REQUIRE_MESSAGE(mp, test::why(mp));
    CHECK(mp->path == path);
    CHECK(mp->sum == sum);
    // The driver's get (a borrower) maps the store's own mapping.
    auto v = rt.get(made->data, 10s);
    REQUIRE_MESSAGE(v, test::why(v));
    REQUIRE(v->size() == expected.size());
    CHECK(std::memcmp(v->data(), expected.data(), expected.size()) == 0);
    CHECK(mapping_of(v->data(), v->size()).path == path);
    // Still one object: nobody made a second copy in the store.
    st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1);
    v = caf::error{};
    made->data = {};
  });
}

TEST_CASE("dropping the last ref to a large value a task put deletes its "
          "segment") {
  std::string prefix;
  test::with_cluster([&](runtime& rt) {
    prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    // Dropped by the driver, the last borrower: the owner frees it.
    auto made = rt.get(rt.call(node_put, 4 * mib, 32), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    auto path = segment_of(prefix, made->data.id());
    REQUIRE(exists(path));
    made->data = {};
    CHECK(eventually([&] { return !exists(path); }));
    CHECK(eventually([&] { return node_objects(rt) == 0; }));
    CHECK(object_files(prefix).empty());
    // Dropped inside the task that put it: gone before the task ends.
    auto n = rt.get(rt.call(node_put_and_drop, 4 * mib, 33), 10s);
    REQUIRE_MESSAGE(n, test::why(n));
    CHECK(*n == 4 * mib);
    CHECK(node_objects(rt) == 0);
    CHECK(object_files(prefix).empty());
    test::check_no_leaks(rt);
    CHECK(object_files(prefix).empty());
  });
  CHECK(files_with_prefix(prefix).empty());
}

TEST_CASE("the SIGKILL of the worker that put a large value frees its "
          "segment, and readers then get owner_died") {
  // Worker A puts 4 MiB (A owns it, its bytes are in the node store); an
  // actor on worker B reads it. A is killed: the driver frees A's objects
  // from the store (fate-sharing), so the file is gone, and both the
  // driver's get and B's get fail with owner_died.
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    auto made = rt.get(rt.call(node_put, 4 * mib, 34), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    auto owner = made->pid;
    auto path = segment_of(prefix, made->data.id());
    REQUIRE(exists(path));
    auto readers = readers_around(rt, owner);
    auto b = readers.first;
    readers.second = {};
    REQUIRE(rt.get(b.call(&put_reader::read, made->data), 10s).value()
            == "ok");
    REQUIRE(rt.get(made->data, 10s));
    REQUIRE_EQ(::kill(owner, SIGKILL), 0);
    auto listed = [&] {
      for (auto& w : rt.workers())
        if (w.pid == owner)
          return true;
      return false;
    };
    REQUIRE(eventually([&] { return !listed(); }));
    CHECK(eventually([&] { return !exists(path); }));
    CHECK(object_files(prefix).empty());
    CHECK(eventually([&] { return node_objects(rt) == 0; }));
    auto driver_get = rt.get(made->data, 10s);
    REQUIRE_FALSE(driver_get);
    INFO(caf::to_string(driver_get.error()));
    CHECK(test::is(driver_get.error(), refs_errc::owner_died));
    auto remote = rt.get(b.call(&put_reader::read, made->data), 30s);
    REQUIRE_MESSAGE(remote, test::why(remote));
    CHECK_EQ(*remote,
             "dref_refs:"
               + std::to_string(static_cast<int>(refs_errc::owner_died)));
    made->data = {};
  });
}

TEST_CASE("a small value a task puts stays in the worker's heap") {
  test::with_cluster([](runtime& rt) {
    auto made = rt.get(rt.call(node_put, 1000, 35), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 0);
    uint64_t heap = 0;
    for (auto& w : st->workers)
      heap += w.bytes;
    CHECK(heap >= 1000);
    CHECK_FALSE(exists(segment_of(rt.node_store_prefix(), made->data.id())));
    auto expected = make_bytes(1000, 35);
    auto v = rt.get(made->data, 10s);
    REQUIRE(v);
    REQUIRE(v->size() == expected.size());
    CHECK(std::memcmp(v->data(), expected.data(), expected.size()) == 0);
    auto other = readers_around(rt, made->pid).first;
    CHECK(rt.get(other.call(&put_reader::read, made->data), 10s).value()
          == "ok");
    made->data = {};
  });
}

TEST_CASE("a buffer a task fills in place and puts becomes the put object "
          "without a copy: its segment is the one the task filled") {
  // The task fills 6 MiB through a buffer_writer (a node-store segment),
  // then `dref::put`s the finished buffer: the segment is sealed under the
  // new object's id, so the object's file is the very file the task wrote
  // (same inode), and the store holds one object.
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    auto made = rt.get(rt.call(node_put_in_place, 6 * mib, 41), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    auto path = segment_of(prefix, made->data.id());
    INFO("writer wrote " << made->written.path << ", object is " << path);
    CHECK(starts_with(made->written.path, prefix));
    CHECK(made->written.inode != 0);
    CHECK(made->written.inode == inode_of(path)); // nobody copied
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1);
    for (auto& w : st->workers)
      CHECK(w.bytes < 1000);
    auto expected = make_bytes(6 * mib, 41);
    auto v = rt.get(made->data, 10s);
    REQUIRE(v);
    REQUIRE(v->size() == expected.size());
    CHECK(std::memcmp(v->data(), expected.data(), expected.size()) == 0);
    CHECK(mapping_of(v->data(), v->size()).inode == inode_of(path));
  });
}

TEST_CASE("a large struct a task puts is serialized into the node store and "
          "reads back whole") {
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    auto made = rt.get(rt.call(node_put_tagged, 3 * mib, 42), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    CHECK(exists(segment_of(prefix, made->data.id())));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 1);
    for (auto& w : st->workers)
      CHECK(w.bytes < 1000);
    auto v = rt.get(made->data, 10s);
    REQUIRE_MESSAGE(v, test::why(v));
    CHECK(v->pid == 42);
    auto expected = make_bytes(3 * mib, 42);
    REQUIRE(v->data.size() == expected.size());
    CHECK(std::memcmp(v->data.data(), expected.data(), expected.size()) == 0);
  });
}

TEST_CASE("a large value a task puts with a ref inside is written into the "
          "node store and keeps that ref alive until it is freed") {
  // The task puts a small int, then 2 MiB holding a ref to it; it returns
  // only the outer ref. The inner object lives because the outer value
  // (written straight into a segment) contains its ref; dropping the
  // outer ref frees both (the leak check at the end).
  test::with_cluster([](runtime& rt) {
    auto prefix = rt.node_store_prefix();
    REQUIRE_FALSE(prefix.empty());
    auto made = rt.get(rt.call(node_put_with_ref, 2 * mib, 43), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    CHECK(exists(segment_of(prefix, made->id())));
    // Once the call's result is freed at the worker, what is left there is
    // the two put objects: the inner one only because the outer holds it.
    auto worker_objects = [&] {
      auto st = rt.stats();
      uint64_t n = 0;
      if (st)
        for (auto& w : st->workers)
          n += w.objects;
      return n;
    };
    CHECK(eventually([&] { return worker_objects() == 2; }));
    std::this_thread::sleep_for(100ms); // and it stays so
    CHECK(worker_objects() == 2);
    {
      auto v = rt.get(*made, 10s);
      REQUIRE_MESSAGE(v, test::why(v));
      auto expected = make_bytes(2 * mib, 43);
      REQUIRE(v->data.size() == expected.size());
      CHECK(std::memcmp(v->data.data(), expected.data(), expected.size())
            == 0);
      auto inner = rt.get(v->inner, 10s);
      REQUIRE_MESSAGE(inner, test::why(inner));
      CHECK(*inner == 43);
    }
    auto path = segment_of(prefix, made->id());
    *made = ref<big_with_ref>{};
    CHECK(eventually([&] { return !exists(path); }));
  });
}

TEST_CASE("a large value a task puts stays in the worker's heap when the "
          "node store refuses it, and reads back") {
  // The store holds 1 MiB: a 2 MiB put cannot go there (store_full), so
  // the worker keeps the bytes and serves copies, as before.
  auto cfg = test::small_cluster();
  cfg.store_capacity = uint64_t{1} * mib;
  test::with_cluster(cfg, [](runtime& rt) {
    auto made = rt.get(rt.call(node_put, 2 * mib, 36), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    auto st = rt.stats();
    REQUIRE(st);
    CHECK(st->node_objects == 0);
    uint64_t heap = 0;
    for (auto& w : st->workers)
      heap += w.bytes;
    CHECK(heap >= uint64_t{2} * mib);
    auto expected = make_bytes(2 * mib, 36);
    auto v = rt.get(made->data, 10s);
    REQUIRE(v);
    REQUIRE(v->size() == expected.size());
    CHECK(std::memcmp(v->data(), expected.data(), expected.size()) == 0);
    auto other = readers_around(rt, made->pid).first;
    auto m = rt.get(other.call(&put_reader::where, made->data), 10s);
    REQUIRE_MESSAGE(m, test::why(m));
    CHECK(m->sum == checksum(expected.data(), expected.size()));
    CHECK_FALSE(starts_with(m->path, rt.node_store_prefix())); // a copy
    v = caf::error{};
    made->data = {};
  });
}

TEST_CASE("dref::then of a large value a task put gets its bytes") {
  // `then` runs in an actor of the driver, which hosts the node store: the
  // owning worker answers "in the node store" and the driver copies the
  // bytes into the reply.
  test::with_cluster([](runtime& rt) {
    auto made = rt.get(rt.call(node_put, 2 * mib, 37), 10s);
    REQUIRE_MESSAGE(made, test::why(made));
    caf::scoped_actor waiter{rt.system()};
    auto waiter_addr = caf::actor_cast<caf::actor>(waiter);
    auto r = made->data;
    rt.system().spawn([r, waiter_addr](caf::event_based_actor* self) {
      then(
        self, r,
        [self, waiter_addr](const buffer& b) {
          self->send(waiter_addr, checksum(b.data(), b.size()));
          self->quit();
        },
        [self, waiter_addr](const caf::error& err) {
          self->send(waiter_addr, err);
          self->quit();
        });
    });
    auto expected = make_bytes(2 * mib, 37);
    uint64_t got = 0;
    waiter->receive([&](uint64_t sum) { got = sum; },
                    [&](caf::error& err) { FAIL(caf::to_string(err)); },
                    caf::after(10s) >> [] { FAIL("no answer"); });
    CHECK(got == checksum(expected.data(), expected.size()));
    r = {};
    made->data = {};
  });
}
