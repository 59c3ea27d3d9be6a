// Unit tests of one node store in one process, on the real /dev/shm:
// create/seal, reads without copy, freeing, pins, names and files.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

#include "dref/store/buffer.hpp"
#include "dref/store/error.hpp"
#include "dref/store/node_client.hpp"
#include "dref/store/node_store.hpp"
#include "dref/store/transfer_server.hpp"

#include "store_test_util.hpp"

using namespace dref;
using namespace dref::test;

namespace {

constexpr uint64_t mib = uint64_t{1} << 20;

object_id oid(uint64_t seq) {
  return object_id{0xABCD, seq};
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The permissions column of the /proc/self/maps line containing `p`.
std::string perms_of(const void* p) {
  std::ifstream in{"/proc/self/maps"};
  std::string line;
  auto addr = reinterpret_cast<uintptr_t>(p);
  while (std::getline(in, line)) {
    std::istringstream ls{line};
    std::string range, perms;
    ls >> range >> perms;
    auto dash = range.find('-');
    auto lo = std::stoull(range.substr(0, dash), nullptr, 16);
    auto hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    if (addr >= lo && addr < hi)
      return perms;
  }
  return {};
}

} // namespace

TEST_CASE("a put value is read back by get from the same shared mapping") {
  store_fixture f{64 * mib};
  auto v = pattern(1, 3 * mib + 5);
  auto put = f.store->put(oid(1), v.data(), v.size());
  REQUIRE(put);
  auto got = f.store->get(oid(1));
  REQUIRE(got);
  CHECK(got->size() == v.size());
  CHECK(std::memcmp(got->data(), v.data(), v.size()) == 0);
  // No copy: both views point at the same bytes of the segment mapping,
  // which is shared ('s') and read-only after the seal.
  CHECK(got->data() == put->data());
  CHECK(perms_of(got->data()) == "r--s");
  CHECK(exists(f.store->segment_path(oid(1))));
  CHECK(f.store->stats().memory_bytes == v.size());
}

TEST_CASE("an object is invisible while being written and readable after "
          "seal") {
  store_fixture f{64 * mib};
  auto w = f.store->create(oid(1), 1000);
  REQUIRE(w);
  std::memset(w->data(), 'q', 1000);
  // The writer's view is writable; readers will get another, read-only
  // view of the same pages (no mprotect at the seal).
  CHECK(perms_of(w->data()) == "rw-s");
  CHECK_FALSE(f.store->contains(oid(1)));
  auto early = f.store->get(oid(1));
  REQUIRE_FALSE(early);
  CHECK(store_code(early.error()) == code(store_errc::not_found));
  CHECK_FALSE(exists(f.store->segment_path(oid(1))));
  CHECK(exists(f.store->segment_path(oid(1)) + ".tmp"));
  auto sealed = w->seal();
  REQUIRE(sealed);
  CHECK(f.store->contains(oid(1)));
  CHECK(exists(f.store->segment_path(oid(1))));
  CHECK_FALSE(exists(f.store->segment_path(oid(1)) + ".tmp"));
  auto got = f.store->get(oid(1));
  REQUIRE(got);
  CHECK(std::all_of(got->data(), got->data() + 1000,
                    [](char c) { return c == 'q'; }));
  CHECK(perms_of(got->data()) == "r--s");
}

TEST_CASE("a writer dropped without sealing leaves no file and no bytes") {
  store_fixture f{64 * mib};
  {
    auto w = f.store->create(oid(1), 4 * mib);
    REQUIRE(w);
    CHECK(f.store->stats().memory_bytes == 4 * mib);
  }
  CHECK(f.store->stats().memory_bytes == 0);
  CHECK(f.store->stats().objects == 0);
  CHECK(f.shm_files().size() == 1); // only the lock file
}

TEST_CASE("putting an id twice fails with already_exists and keeps the "
          "first value") {
  store_fixture f{64 * mib};
  auto a = pattern(1, 1000);
  auto b = pattern(2, 1000);
  REQUIRE(f.store->put(oid(1), a.data(), a.size()));
  auto again = f.store->put(oid(1), b.data(), b.size());
  REQUIRE_FALSE(again);
  CHECK(store_code(again.error()) == code(store_errc::already_exists));
  auto got = f.store->get(oid(1));
  REQUIRE(got);
  CHECK(std::memcmp(got->data(), a.data(), a.size()) == 0);
}

TEST_CASE("an array of trivially copyable values is viewed without copy") {
  store_fixture f{64 * mib};
  std::vector<double> xs(100000);
  for (size_t i = 0; i < xs.size(); ++i)
    xs[i] = static_cast<double>(i) * 0.5;
  REQUIRE(f.store->put_array(oid(1), xs.data(), xs.size()));
  auto got = f.store->get(oid(1));
  REQUIRE(got);
  CHECK(got->elem_size() == sizeof(double));
  auto view = got->as_array<double>();
  REQUIRE(view);
  CHECK(view->size() == xs.size());
  CHECK(static_cast<const void*>(view->data())
        == static_cast<const void*>(got->data()));
  CHECK(reinterpret_cast<uintptr_t>(view->data()) % 64 == 0);
  CHECK(std::equal(view->begin(), view->end(), xs.begin()));
  // The wrong element type is refused, not reinterpreted.
  auto wrong = got->as_array<int32_t>();
  REQUIRE_FALSE(wrong);
  CHECK(store_code(wrong.error()) == code(store_errc::invalid_argument));
}

TEST_CASE("freeing an object deletes its segment, its spill file and its "
          "entry") {
  store_fixture f{4 * mib};
  auto a = pattern(1, 3 * mib);
  auto b = pattern(2, 3 * mib);
  REQUIRE(f.store->put(oid(1), a.data(), a.size()));
  REQUIRE(f.store->put(oid(2), b.data(), b.size())); // spills 1
  CHECK(exists(f.store->spill_path(oid(1))));
  CHECK_FALSE(exists(f.store->segment_path(oid(1))));
  // Restore 1 (spilling 2): 1 now has both a segment and a spill file.
  REQUIRE(f.store->get(oid(1)));
  CHECK(exists(f.store->segment_path(oid(1))));
  CHECK(exists(f.store->spill_path(oid(1))));
  CHECK_FALSE(f.store->free(oid(1)));
  CHECK_FALSE(exists(f.store->segment_path(oid(1))));
  CHECK_FALSE(exists(f.store->spill_path(oid(1))));
  CHECK_FALSE(f.store->contains(oid(1)));
  CHECK_FALSE(f.store->free(oid(2)));
  CHECK_FALSE(exists(f.store->spill_path(oid(2))));
  auto st = f.store->stats();
  CHECK(st.objects == 0);
  CHECK(st.memory_bytes == 0);
  CHECK(f.spill.entries().empty());
  CHECK(f.shm_files_but_pool().size() == 1); // only the lock file
  CHECK(f.shm_files().size() == 1 + st.pooled);
  auto twice = f.store->free(oid(1));
  CHECK(store_code(twice) == code(store_errc::not_found));
}

TEST_CASE("a buffer stays readable after its object is freed") {
  store_fixture f{64 * mib};
  auto v = pattern(9, 2 * mib);
  REQUIRE(f.store->put(oid(1), v.data(), v.size()));
  auto got = f.store->get(oid(1));
  REQUIRE(got);
  REQUIRE_FALSE(f.store->free(oid(1)));
  CHECK_FALSE(exists(f.store->segment_path(oid(1))));
  CHECK(std::memcmp(got->data(), v.data(), v.size()) == 0);
}

TEST_CASE("a held buffer pins its object: it is neither evicted nor "
          "spilled") {
  store_fixture f{4 * mib};
  auto a = pattern(1, 3 * mib);
  auto b = pattern(2, 3 * mib);
  auto held = f.store->put(oid(1), a.data(), a.size(), copy_kind::secondary);
  REQUIRE(held);
  auto full = f.store->put(oid(2), b.data(), b.size());
  REQUIRE_FALSE(full);
  CHECK(store_code(full.error()) == code(store_errc::store_full));
  CHECK(f.store->contains(oid(1)));
  *held = buffer{}; // the last pin goes
  REQUIRE(f.store->put(oid(2), b.data(), b.size()));
  CHECK_FALSE(f.store->contains(oid(1))); // the secondary was evicted
  CHECK(f.store->stats().evictions == 1);
}

TEST_CASE("a sealed segment is mapped read-only by path, and an unsealed "
          "one is refused") {
  store_fixture f{64 * mib};
  auto v = pattern(3, 5000);
  REQUIRE(f.store->put(oid(1), v.data(), v.size()));
  auto loc = f.store->acquire(oid(1));
  REQUIRE(loc);
  CHECK(loc->path == f.store->segment_path(oid(1)));
  auto mapped = map_sealed_segment(loc->path);
  REQUIRE(mapped);
  CHECK(mapped->size() == v.size());
  CHECK(std::memcmp(mapped->data(), v.data(), v.size()) == 0);
  CHECK(perms_of(mapped->data()) == "r--s");
  auto w = f.store->create(oid(2), 100);
  REQUIRE(w);
  auto unsealed = map_sealed_segment(f.store->segment_path(oid(2)) + ".tmp");
  REQUIRE_FALSE(unsealed);
  CHECK(store_code(unsealed.error()) == code(store_errc::corrupt));
  auto missing = map_sealed_segment(f.store->segment_path(oid(3)));
  REQUIRE_FALSE(missing);
  CHECK(store_code(missing.error()) == code(store_errc::not_found));
}

TEST_CASE("a bad store name and a second open of the same name are "
          "refused") {
  store_config bad;
  bad.name = "has.dot";
  auto s = node_store::open(bad);
  REQUIRE_FALSE(s);
  CHECK(store_code(s.error()) == code(store_errc::invalid_argument));
  store_fixture f{mib};
  store_config same;
  same.name = f.name;
  auto twice = node_store::open(same);
  REQUIRE_FALSE(twice);
  CHECK(store_code(twice.error()) == code(store_errc::invalid_argument));
}

TEST_CASE("closing a store removes every file it made, also of an "
          "unfinished writer") {
  temp_dir spill;
  auto name = unique_store_name("close");
  store_config cfg;
  cfg.name = name;
  cfg.capacity = 4 * mib;
  cfg.spill_dir = spill.path();
  {
    auto s = node_store::open(cfg);
    REQUIRE(s);
    auto& store = **s;
    auto v = pattern(1, 3 * mib);
    REQUIRE(store.put(oid(1), v.data(), v.size()));
    REQUIRE(store.put(oid(2), v.data(), v.size())); // spills 1
    auto w = store.create(oid(3), 100); // fits beside 2
    REQUIRE(w);
    CHECK_FALSE(files_with_prefix("/dev/shm", files_of_store(name)).empty());
    CHECK_FALSE(spill.entries().empty());
    s->reset(); // close with the writer still open
    auto late = w->seal();
    REQUIRE_FALSE(late);
    CHECK(store_code(late.error()) == code(store_errc::not_found));
  }
  CHECK(files_with_prefix("/dev/shm", files_of_store(name)).empty());
  CHECK(spill.entries().empty());
}

TEST_CASE("a freed segment is reused for the next object of a similar size, "
          "keeping memory within the capacity") {
  store_fixture f{16 * mib};
  auto a = pattern(1, 6 * mib);
  auto b = pattern(2, 5 * mib);
  const char* first = nullptr;
  {
    auto put = f.store->put(oid(1), a.data(), a.size());
    REQUIRE(put);
    first = put->data();
  }
  REQUIRE_FALSE(f.store->free(oid(1)));
  auto st = f.store->stats();
  CHECK(st.pooled == 1);
  CHECK(st.pooled_bytes == 6 * mib);
  CHECK(st.memory_bytes == 0);
  auto put = f.store->put(oid(2), b.data(), b.size());
  REQUIRE(put);
  CHECK(put->data() == first); // the same pages, still mapped
  CHECK(std::memcmp(put->data(), b.data(), b.size()) == 0);
  CHECK(perms_of(put->data()) == "r--s"); // readers: the read-only view
  st = f.store->stats();
  CHECK(st.reused == 1);
  CHECK(st.pooled == 0);
  CHECK(st.memory_bytes == 5 * mib);
  struct stat sb;
  REQUIRE(::stat(f.store->segment_path(oid(2)).c_str(), &sb) == 0);
  CHECK(static_cast<uint64_t>(sb.st_size) == 64 + 5 * mib); // trimmed
  // Reused again: the writer writes through the writable view the store
  // kept mapped (no mprotect back and forth); readers still get the
  // read-only view of the same pages.
  *put = buffer{};
  REQUIRE_FALSE(f.store->free(oid(2)));
  auto w = f.store->create(oid(4), 5 * mib);
  REQUIRE(w);
  CHECK(perms_of(w->data()) == "rw-s");
  CHECK(f.store->stats().reused == 2);
  std::memcpy(w->data(), a.data(), 5 * mib);
  auto sealed = w->seal();
  REQUIRE(sealed);
  CHECK(sealed->data() == first);
  CHECK(perms_of(sealed->data()) == "r--s");
  CHECK(std::memcmp(sealed->data(), a.data(), 5 * mib) == 0);
  // Kept segments go first when room is needed.
  *sealed = buffer{};
  REQUIRE_FALSE(f.store->free(oid(4)));
  auto c = pattern(3, 14 * mib);
  REQUIRE(f.store->put(oid(3), c.data(), c.size()));
  st = f.store->stats();
  CHECK(st.pooled == 0);
  CHECK(st.memory_bytes + st.pooled_bytes <= st.capacity);
}

TEST_CASE("a segment still viewed by a buffer is never reused: freeing it "
          "unlinks it") {
  store_fixture f{16 * mib};
  auto a = pattern(1, 4 * mib);
  auto b = pattern(2, 4 * mib);
  auto held = f.store->put(oid(1), a.data(), a.size());
  REQUIRE(held);
  REQUIRE_FALSE(f.store->free(oid(1)));
  CHECK(f.store->stats().pooled == 0);
  REQUIRE(f.store->put(oid(2), b.data(), b.size()));
  CHECK(f.store->stats().reused == 0);
  CHECK(std::memcmp(held->data(), a.data(), a.size()) == 0);
}

TEST_CASE("an acquire pins like a buffer until it is released") {
  store_fixture f{8 * mib};
  auto a = pattern(1, 5 * mib);
  REQUIRE(f.store->put(oid(1), a.data(), a.size(), copy_kind::secondary));
  auto loc = f.store->acquire(oid(1));
  REQUIRE(loc);
  auto b = pattern(2, 5 * mib);
  auto full = f.store->put(oid(2), b.data(), b.size());
  REQUIRE_FALSE(full);
  CHECK(store_code(full.error()) == code(store_errc::store_full));
  f.store->release(oid(1), loc->generation);
  f.store->release(oid(1), loc->generation); // a second release is ignored
  auto put = f.store->put(oid(2), b.data(), b.size());
  REQUIRE_MESSAGE(put, describe(put ? caf::error{} : put.error()));
  CHECK_FALSE(f.store->contains(oid(1)));
}

TEST_CASE("a segment sealed under another id is read under that id only, and "
          "an id already in the store refuses it") {
  store_fixture f{64 * mib};
  auto w = f.store->create(oid(1), 2 * mib);
  REQUIRE(w);
  auto v = pattern(7, 2 * mib);
  std::memcpy(w->data(), v.data(), v.size());
  auto sealed = w->seal_as(oid(2));
  REQUIRE(sealed);
  CHECK_FALSE(f.store->contains(oid(1)));
  CHECK(f.store->contains(oid(2)));
  CHECK(exists(f.store->segment_path(oid(2))));
  CHECK_FALSE(exists(f.store->segment_path(oid(1))));
  auto got = f.store->get(oid(2));
  REQUIRE(got);
  CHECK(got->data() == sealed->data()); // the same mapping
  CHECK(std::memcmp(got->data(), v.data(), v.size()) == 0);
  CHECK(f.store->stats().objects == 1);
  // Sealing as an id the store holds aborts the object.
  auto w2 = f.store->create(oid(3), mib);
  REQUIRE(w2);
  auto refused = w2->seal_as(oid(2));
  REQUIRE_FALSE(refused);
  CHECK(store_code(refused.error()) == code(store_errc::already_exists));
  CHECK_FALSE(f.store->contains(oid(3)));
  CHECK(f.store->stats().objects == 1);
  CHECK(f.store->stats().memory_bytes == 2 * mib);
}

TEST_CASE("a node_client writer sealing under another id keeps its own "
          "mapping as a read-only, pinned view of the sealed value") {
  store_fixture f{64 * mib};
  auto server = transfer_server::start(*f.store);
  REQUIRE(server);
  auto client = node_client::connect(
    store_endpoint{"127.0.0.1", (*server)->port()});
  REQUIRE(client);
  auto w = client->create(oid(10), 3 * mib);
  REQUIRE(w);
  auto v = pattern(8, 3 * mib);
  std::memcpy(w->data(), v.data(), v.size());
  auto data = w->data();
  CHECK(perms_of(data).substr(0, 2) == "rw");
  auto b = w->seal_as(oid(11));
  REQUIRE(b);
  CHECK(w->data() == nullptr);
  CHECK(b->data() == data); // nothing copied, nothing remapped
  CHECK(b->size() == 3 * mib);
  CHECK(perms_of(data).substr(0, 2) == "r-");
  CHECK(client->held() == 1);
  CHECK_FALSE(f.store->contains(oid(10)));
  auto got = f.store->get(oid(11));
  REQUIRE(got);
  CHECK(std::memcmp(got->data(), v.data(), v.size()) == 0);
  got = buffer{};
  // Pinned for this client: freeing unlinks the segment but never hands
  // its pages to another object while the view lives.
  REQUIRE_FALSE(f.store->free(oid(11)));
  CHECK(f.store->stats().pooled == 0);
  CHECK(std::memcmp(b->data(), v.data(), v.size()) == 0);
  b = buffer{};
  CHECK(client->held() == 0);
  CHECK(f.shm_files_but_pool().size() == 1); // only the lock file
  server->reset();
}

TEST_CASE("free_owned_by frees every object of one owner, in memory, "
          "spilled or being written, and leaves other owners' objects") {
  // Fate-sharing in the store: a worker process (owner 0x77) dies; its
  // objects go, those of owner 0x88 stay. One of 0x77's objects is spilled
  // (capacity 8 MiB), one is read by a buffer still held, one is still
  // being written.
  store_fixture f{8 * mib};
  auto dead = [](uint64_t seq) { return object_id{0x77, seq}; };
  auto alive = [](uint64_t seq) { return object_id{0x88, seq}; };
  auto a = pattern(1, 3 * mib);
  auto b = pattern(2, 3 * mib);
  auto c = pattern(3, 1 * mib);
  REQUIRE(f.store->put(dead(1), a.data(), a.size()));
  REQUIRE(f.store->put(alive(1), b.data(), b.size()));
  REQUIRE(f.store->put(dead(2), b.data(), b.size())); // spills dead(1)
  REQUIRE(exists(f.store->spill_path(dead(1))));
  REQUIRE_FALSE(exists(f.store->segment_path(dead(1))));
  auto held = f.store->get(dead(2));
  REQUIRE(held);
  auto writing = f.store->create(dead(3), c.size());
  REQUIRE(writing);
  CHECK(f.store->stats().objects == 4);
  CHECK(f.store->free_owned_by(0x77) == 3);
  CHECK_FALSE(f.store->contains(dead(1)));
  CHECK_FALSE(f.store->contains(dead(2)));
  CHECK_FALSE(exists(f.store->spill_path(dead(1))));
  CHECK_FALSE(exists(f.store->segment_path(dead(2))));
  CHECK_FALSE(exists(f.store->segment_path(dead(3)) + ".tmp"));
  // The writer of a freed object cannot seal it any more.
  std::memcpy(writing->data(), c.data(), c.size());
  auto sealed = writing->seal();
  REQUIRE_FALSE(sealed);
  CHECK(store_code(sealed.error()) == code(store_errc::not_found));
  // A reader that still holds a buffer keeps its pages.
  CHECK(std::memcmp(held->data(), b.data(), b.size()) == 0);
  // The other owner's object is untouched and readable.
  auto other = f.store->get(alive(1));
  REQUIRE(other);
  CHECK(std::memcmp(other->data(), b.data(), b.size()) == 0);
  auto st = f.store->stats();
  CHECK(st.objects == 1);
  CHECK(st.memory_bytes == b.size());
  CHECK(f.spill.entries().empty());
  CHECK(f.shm_files_but_pool().size() == 2); // alive(1) and the lock file
  // Nothing left of that owner: a second call frees nothing.
  CHECK(f.store->free_owned_by(0x77) == 0);
  CHECK(f.store->free_owned_by(0x99) == 0);
  CHECK(f.store->stats().objects == 1);
}
