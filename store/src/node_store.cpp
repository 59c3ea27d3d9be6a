#include "dref/store/node_store.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dref/refs/crc32c.hpp"
#include "dref/store/error.hpp"
#include "dref/store/store_index.hpp"

#include "format.hpp"
#include "os.hpp"

namespace dref {

using internal::mapping;
using internal::os_error;

namespace {

std::string hex16(uint64_t x) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, x);
  return buf;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 64)
    return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      return false;
  return true;
}

std::string join(const std::string& dir, const std::string& file) {
  if (!dir.empty() && dir.back() == '/')
    return dir + file;
  return dir + "/" + file;
}

// Maps `length` bytes of `fd`; null on failure (errno set).
std::shared_ptr<mapping> map_fd(int fd, size_t length, int prot, int flags) {
  auto addr = ::mmap(nullptr, length, prot, MAP_SHARED | flags, fd, 0);
  if (addr == MAP_FAILED)
    return nullptr;
  return std::make_shared<mapping>(addr, length);
}

// Creates `path` (must not exist), allocates `length` bytes of it (so that a
// full tmpfs fails here with ENOSPC rather than with SIGBUS on a write) and
// maps it twice: read-write (populated: the writer touches every page) for
// its writer, read-only for readers (see `mapping`). The read-only view is
// not populated: a reader in this process faults its pages in as it reads,
// as readers in other processes do; populating it here cost ~10 ms per
// 100 MiB on every fresh put (docs/performance.md).
caf::expected<std::shared_ptr<mapping>> create_mapped(const std::string& path,
                                                      size_t length) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return os_error(errno, "cannot create segment", path);
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(length));
  if (rc != 0) {
    ::close(fd);
    ::unlink(path.c_str());
    return os_error(rc, "cannot allocate segment", path);
  }
  auto rw = ::mmap(nullptr, length, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, fd, 0);
  int err = errno;
  void* ro = MAP_FAILED;
  if (rw != MAP_FAILED) {
    ro = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
    err = errno;
    if (ro == MAP_FAILED)
      ::munmap(rw, length);
  }
  ::close(fd);
  if (ro == MAP_FAILED) {
    ::unlink(path.c_str());
    return os_error(err, "cannot map segment", path);
  }
  return std::make_shared<mapping>(ro, length, rw);
}

uint32_t header_crc(const unsigned char* header) {
  return crc32c_extend(0, header, 60);
}

/// A reader's pin: unpins the object when the last buffer copy goes.
struct pin_holder {
  std::weak_ptr<node_store::impl> store;
  object_id id;
  uint64_t generation = 0;
  std::shared_ptr<mapping> map;
  ~pin_holder();
};

} // namespace

// -- impl ---------------------------------------------------------------------

struct node_store::impl {
  store_config cfg;
  std::string prefix; // dref.<uid>.<name>.<pid>.
  std::string lock_path;
  int lock_fd = -1;

  mutable std::mutex mtx;
  // All below guarded by mtx.
  store_index index;
  /// A read-only mapping of every sealed object in memory.
  std::unordered_map<object_id, std::shared_ptr<mapping>> maps;
  bool closed = false;
  /// Segments of freed objects kept for reuse, oldest first. Their value
  /// bytes (`pool_bytes`) count against the capacity with the index's:
  /// index.memory_used() + pool_bytes <= capacity.
  struct pooled_segment {
    std::string path;
    std::shared_ptr<mapping> map;
    uint64_t bytes = 0;
  };
  std::vector<pooled_segment> pool;
  uint64_t pool_bytes = 0;
  uint64_t pool_counter = 0;
  uint64_t reused = 0;
  uint64_t evictions = 0;
  uint64_t spill_writes = 0;
  uint64_t spills = 0;
  uint64_t restores = 0;

  explicit impl(store_config c) : cfg(std::move(c)), index(cfg.capacity) {
  }

  std::string name_of(const object_id& id) const {
    return prefix + hex16(id.owner) + "." + hex16(id.seq);
  }
  std::string segment_path(const object_id& id) const {
    return join(cfg.shm_dir, name_of(id));
  }
  std::string tmp_path(const object_id& id) const {
    return segment_path(id) + ".tmp";
  }
  std::string spill_path(const object_id& id) const {
    return join(cfg.spill_dir, name_of(id) + ".spill");
  }

  // Writes the spill file of `id` from its mapping. The index is unchanged.
  caf::error write_spill_locked(const object_id& id, const mapping& m) {
    auto path = spill_path(id);
    auto tmp = path + ".tmp";
    auto payload = reinterpret_cast<const unsigned char*>(m.bytes())
                   + internal::header_size;
    internal::object_header seg;
    if (!internal::decode_header(
          reinterpret_cast<const unsigned char*>(m.bytes()),
          internal::segment_magic, seg))
      return make_error(store_errc::corrupt, "bad segment header of "
                                               + segment_path(id));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0600);
    if (fd < 0)
      return os_error(errno, "cannot create spill file", tmp);
    auto fail = [&](caf::error err) {
      ::close(fd);
      ::unlink(tmp.c_str());
      return err;
    };
    if (cfg.spill_fault)
      if (auto err = cfg.spill_fault(id))
        return fail(std::move(err));
    internal::object_header h;
    h.id = id;
    h.size = seg.size;
    h.elem_size = seg.elem_size;
    h.state_or_crc = crc32c_extend(0, payload, seg.size);
    unsigned char header[internal::header_size];
    internal::encode_header(header, internal::spill_magic,
                            internal::spill_version, h);
    internal::put_u32(header + 60, header_crc(header));
    if (int err = internal::write_all(fd, header, sizeof(header)))
      return fail(os_error(err, "cannot write spill file", tmp));
    if (int err = internal::write_all(fd, payload, seg.size))
      return fail(os_error(err, "cannot write spill file", tmp));
    if (::close(fd) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return os_error(err, "cannot write spill file", tmp);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return os_error(err, "cannot rename spill file", tmp);
    }
    ++spill_writes;
    return caf::none;
  }

  void drop_pooled_locked(size_t i) {
    ::unlink(pool[i].path.c_str());
    pool_bytes -= pool[i].bytes;
    pool.erase(pool.begin() + static_cast<ptrdiff_t>(i));
  }

  // Takes the smallest kept segment that holds `size` bytes without
  // wasting much (at most twice the size, or 1 MiB more), renames it to
  // `path` and trims it to the value; its writable view stays mapped. Null
  // if none fits.
  std::shared_ptr<mapping> take_pooled_locked(const std::string& path,
                                              uint64_t size) {
    size_t best = pool.size();
    auto limit = std::max<uint64_t>(2 * size, size + (uint64_t{1} << 20));
    for (size_t i = 0; i < pool.size(); ++i)
      if (pool[i].bytes >= size && pool[i].bytes <= limit
          && (best == pool.size() || pool[i].bytes < pool[best].bytes))
        best = i;
    if (best == pool.size())
      return nullptr;
    auto e = std::move(pool[best]);
    pool.erase(pool.begin() + static_cast<ptrdiff_t>(best));
    pool_bytes -= e.bytes;
    if (::rename(e.path.c_str(), path.c_str()) != 0) {
      ::unlink(e.path.c_str());
      return nullptr;
    }
    auto length = internal::header_size + size;
    if (e.bytes > size) {
      if (::truncate(path.c_str(), static_cast<off_t>(length)) != 0) {
        ::unlink(path.c_str());
        return nullptr;
      }
      auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
      e.map->shrink((length + page - 1) / page * page);
    }
    ++reused;
    return e.map;
  }

  // Puts a segment (renamed from `path`) into the pool.
  void keep_segment_locked(const std::string& path, std::shared_ptr<mapping> m,
                           uint64_t bytes) {
    auto kept = join(cfg.shm_dir,
                     prefix + "pool." + std::to_string(++pool_counter));
    if (::rename(path.c_str(), kept.c_str()) != 0) {
      ::unlink(path.c_str());
      return;
    }
    pool.push_back(pooled_segment{kept, std::move(m), bytes});
    pool_bytes += bytes;
  }

  // Deletes every copy of `id` (segment, spill file, index entry): step 7
  // of the life of a value. An unpinned sealed segment is kept for reuse.
  // @pre `index.find(id) != nullptr`.
  void free_locked(const object_id& id) {
    auto e = index.find(id);
    if (e->in_memory) {
      auto m = maps.find(id);
      // Reuse only pages nobody maps but us (no pin: no buffer here, no
      // acquire by another process).
      if (cfg.recycle_segments && e->sealed && e->pins == 0
          && m != maps.end())
        keep_segment_locked(segment_path(id), m->second, e->size);
      else
        ::unlink(e->sealed ? segment_path(id).c_str()
                           : tmp_path(id).c_str());
    }
    if (e->on_disk)
      ::unlink(spill_path(id).c_str());
    maps.erase(id);
    index.erase(id);
  }

  // Makes room for `bytes`: first drops kept segments (oldest first), then
  // carries out `index.make_room(bytes)`. On a failed spill, the copies
  // removed so far stay removed (each is safe: evicted copies can be pulled
  // again, spilled ones are on disk) and the failing one stays in memory.
  caf::error make_room_locked(uint64_t bytes) {
    while (!pool.empty()
           && index.memory_used() + pool_bytes + bytes > index.capacity())
      drop_pooled_locked(0);
    auto plan = index.make_room(bytes, !cfg.spill_dir.empty());
    if (!plan)
      return std::move(plan.error());
    for (auto& id : plan->evict) {
      ::unlink(segment_path(id).c_str());
      maps.erase(id);
      index.erase(id);
      ++evictions;
    }
    for (auto& id : plan->drop) {
      ::unlink(segment_path(id).c_str());
      maps.erase(id);
      index.spilled(id);
      ++spills;
    }
    for (auto& id : plan->spill) {
      auto i = maps.find(id);
      if (i == maps.end())
        return make_error(store_errc::io_error,
                          "no mapping of " + to_string(id));
      if (auto err = write_spill_locked(id, *i->second))
        return err;
      index.set_on_disk(id);
      ::unlink(segment_path(id).c_str());
      maps.erase(i);
      index.spilled(id);
      ++spills;
    }
    return caf::none;
  }

  // Reads the spill file of `id` back into a new segment.
  // The header is checked before room is made, the value after.
  caf::error restore_locked(const object_id& id, uint64_t size) {
    auto path = spill_path(id);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return os_error(errno, "cannot open spill file", path);
    struct closer {
      int fd;
      ~closer() {
        ::close(fd);
      }
    } close_fd{fd};
    unsigned char header[internal::header_size];
    if (int err = internal::read_all(fd, header, sizeof(header)))
      return err < 0 ? make_error(store_errc::corrupt,
                                  "spill file too short: " + path)
                     : os_error(err, "cannot read spill file", path);
    internal::object_header h;
    if (!internal::decode_header(header, internal::spill_magic, h))
      return make_error(store_errc::corrupt, "bad spill file magic: " + path);
    if (h.version != internal::spill_version)
      return make_error(store_errc::corrupt,
                        "unsupported spill format version "
                          + std::to_string(h.version) + ": " + path);
    if (internal::get_u32(header + 60) != header_crc(header))
      return make_error(store_errc::corrupt,
                        "spill file header checksum mismatch: " + path);
    if (h.id != id || h.size != size)
      return make_error(store_errc::corrupt,
                        "spill file holds another object: " + path);
    if (auto err = make_room_locked(size))
      return err;
    auto tmp = tmp_path(id);
    caf::expected<std::shared_ptr<mapping>> m{nullptr};
    if (cfg.recycle_segments)
      m = take_pooled_locked(tmp, size);
    if (*m == nullptr)
      m = create_mapped(tmp, internal::header_size + size);
    if (!m)
      return std::move(m.error());
    auto payload = (*m)->writable_bytes() + internal::header_size;
    if (int err = internal::read_all(fd, payload, size)) {
      ::unlink(tmp.c_str());
      return err < 0 ? make_error(store_errc::corrupt,
                                  "spill file truncated: " + path)
                     : os_error(err, "cannot read spill file", path);
    }
    if (crc32c_extend(0, payload, size) != h.state_or_crc) {
      ::unlink(tmp.c_str());
      return make_error(store_errc::corrupt,
                        "spill file checksum mismatch: " + path);
    }
    internal::object_header sh = h;
    sh.state_or_crc = internal::segment_sealed;
    encode_header(reinterpret_cast<unsigned char*>((*m)->writable_bytes()),
                  internal::segment_magic, internal::segment_version, sh);
    auto seg = segment_path(id);
    if (::rename(tmp.c_str(), seg.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return os_error(err, "cannot rename segment", tmp);
    }
    maps[id] = std::move(*m);
    index.restored(id);
    ++restores;
    return caf::none;
  }

  // Finds a sealed object and makes sure it is in memory.
  caf::expected<const store_index::entry*> ensure_in_memory_locked(
    const object_id& id) {
    auto e = index.find(id);
    if (e == nullptr || !e->sealed)
      return make_error(store_errc::not_found,
                        to_string(id) + (e == nullptr ? " is not in store "
                                                      : " is not sealed in ")
                          + cfg.name);
    if (!e->in_memory)
      if (auto err = restore_locked(id, e->size))
        return err;
    index.touch(id);
    return index.find(id);
  }

  // Removes every file of this store instance (also leftovers such as the
  // `.tmp` files of aborted writers).
  void remove_all_files_locked() {
    pool.clear();
    pool_bytes = 0;
    for (auto& dir : {cfg.shm_dir, cfg.spill_dir}) {
      if (dir.empty())
        continue;
      auto d = ::opendir(dir.c_str());
      if (d == nullptr)
        continue;
      while (auto ent = ::readdir(d)) {
        std::string n = ent->d_name;
        if (n.compare(0, prefix.size(), prefix) == 0 && n != prefix + "lock")
          ::unlink(join(dir, n).c_str());
      }
      ::closedir(d);
    }
  }
};

namespace {

pin_holder::~pin_holder() {
  if (auto s = store.lock()) {
    std::lock_guard<std::mutex> guard{s->mtx};
    s->index.unpin(id, generation);
  }
}

} // namespace

// -- segment_writer -----------------------------------------------------------

struct segment_writer::state {
  std::shared_ptr<node_store::impl> store;
  object_id id;
  uint64_t generation = 0;
  uint64_t size = 0;
  uint32_t elem_size = 0;
  std::shared_ptr<mapping> map;
  std::string tmp;
};

segment_writer::segment_writer(std::unique_ptr<state> st)
  : st_(std::move(st)) {
  // nop
}

segment_writer::segment_writer() = default;

segment_writer::segment_writer(segment_writer&&) noexcept = default;

segment_writer& segment_writer::operator=(segment_writer&& other) noexcept {
  if (this != &other) {
    abort();
    st_ = std::move(other.st_);
  }
  return *this;
}

segment_writer::~segment_writer() {
  abort();
}

char* segment_writer::data() const noexcept {
  return st_ ? st_->map->writable_bytes() + internal::header_size : nullptr;
}

uint64_t segment_writer::size() const noexcept {
  return st_ ? st_->size : 0;
}

const std::string& segment_writer::path() const noexcept {
  static const std::string none;
  return st_ ? st_->tmp : none;
}

uint64_t segment_writer::generation() const noexcept {
  return st_ ? st_->generation : 0;
}

void segment_writer::abort() {
  if (!st_)
    return;
  auto st = std::move(st_);
  auto& s = *st->store;
  std::lock_guard<std::mutex> guard{s.mtx};
  ::unlink(st->tmp.c_str());
  auto e = s.index.find(st->id);
  if (e != nullptr && e->generation == st->generation)
    s.index.erase(st->id);
}

caf::expected<buffer> segment_writer::seal() {
  if (!st_)
    return make_error(store_errc::invalid_argument, "writer already done");
  return seal_as(st_->id);
}

caf::expected<buffer> segment_writer::seal_as(const object_id& as) {
  if (!st_)
    return make_error(store_errc::invalid_argument, "writer already done");
  if (!as.valid())
    return make_error(store_errc::invalid_argument, "invalid object id");
  auto st = std::move(st_);
  auto& s = *st->store;
  internal::object_header h;
  h.id = as;
  h.size = st->size;
  h.elem_size = st->elem_size;
  h.state_or_crc = internal::segment_writing;
  auto hdr = reinterpret_cast<unsigned char*>(st->map->writable_bytes());
  // The header's state word is written last, after the value.
  encode_header(hdr, internal::segment_magic, internal::segment_version, h);
  std::atomic_thread_fence(std::memory_order_release);
  internal::put_u32(hdr + internal::segment_state_offset,
                    internal::segment_sealed);
  // Readers get the read-only view (`mapping`): no mprotect needed.
  std::unique_lock<std::mutex> guard{s.mtx};
  auto e = s.index.find(st->id);
  if (s.closed || e == nullptr || e->generation != st->generation) {
    ::unlink(st->tmp.c_str());
    return make_error(store_errc::not_found,
                      to_string(st->id) + " was freed while being written");
  }
  if (as != st->id) {
    if (s.index.find(as) != nullptr) {
      ::unlink(st->tmp.c_str());
      s.index.erase(st->id);
      return make_error(store_errc::already_exists,
                        to_string(as) + " is already in store " + s.cfg.name);
    }
    s.index.rekey(st->id, as);
    st->id = as;
  }
  auto path = s.segment_path(st->id);
  if (::rename(st->tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(st->tmp.c_str());
    s.index.erase(st->id);
    return os_error(err, "cannot rename segment", st->tmp);
  }
  s.index.seal(st->id);
  s.index.pin(st->id);
  s.maps[st->id] = st->map;
  auto pin = std::make_shared<pin_holder>();
  pin->store = st->store;
  pin->id = st->id;
  pin->generation = st->generation;
  pin->map = st->map;
  guard.unlock();
  auto data = st->map->bytes() + internal::header_size;
  return buffer{data, st->size, st->elem_size, std::move(pin)};
}

// -- node_store ---------------------------------------------------------------

node_store::node_store(std::shared_ptr<impl> ptr) : impl_(std::move(ptr)) {
  // nop
}

caf::expected<std::unique_ptr<node_store>> node_store::open(store_config cfg) {
  if (!valid_name(cfg.name))
    return make_error(store_errc::invalid_argument,
                      "bad store name '" + cfg.name
                        + "' (letters, digits, '-', '_'; at most 64)");
  struct stat st;
  if (::stat(cfg.shm_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error(store_errc::io_error,
                      "shared-memory directory " + cfg.shm_dir
                        + " does not exist");
  if (!cfg.spill_dir.empty()
      && (::stat(cfg.spill_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)))
    return make_error(store_errc::io_error,
                      "spill directory " + cfg.spill_dir + " does not exist");
  remove_dead_store_files(cfg.shm_dir, cfg.spill_dir);
  auto ptr = std::make_shared<impl>(std::move(cfg));
  auto& s = *ptr;
  s.prefix = "dref." + std::to_string(::getuid()) + "." + s.cfg.name + "."
             + std::to_string(::getpid()) + ".";
  s.lock_path = join(s.cfg.shm_dir, s.prefix + "lock");
  // Take the lock, then check the file is still the one we locked: a
  // concurrent remove_dead_store_files may have locked and removed it
  // between our open and our flock.
  for (int attempt = 0;; ++attempt) {
    int fd = ::open(s.lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
      return os_error(errno, "cannot create lock file", s.lock_path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return make_error(store_errc::invalid_argument,
                        "store " + s.cfg.name + " is already open here");
    }
    struct stat by_fd, by_path;
    if (::fstat(fd, &by_fd) == 0 && ::stat(s.lock_path.c_str(), &by_path) == 0
        && by_fd.st_ino == by_path.st_ino && by_fd.st_dev == by_path.st_dev) {
      s.lock_fd = fd;
      break;
    }
    ::close(fd);
    if (attempt == 10)
      return make_error(store_errc::io_error,
                        "cannot keep lock file " + s.lock_path);
  }
  return std::unique_ptr<node_store>{new node_store(std::move(ptr))};
}

node_store::~node_store() {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.mtx};
  s.closed = true;
  for (auto& id : s.index.lru_order())
    s.index.erase(id);
  s.maps.clear();
  s.remove_all_files_locked();
  ::unlink(s.lock_path.c_str());
  ::close(s.lock_fd);
}

caf::expected<segment_writer> node_store::create(const object_id& id,
                                                 uint64_t size,
                                                 copy_kind kind,
                                                 uint32_t elem_size) {
  auto& s = *impl_;
  if (!id.valid())
    return make_error(store_errc::invalid_argument, "invalid object id");
  if (elem_size != 0 && size % elem_size != 0)
    return make_error(store_errc::invalid_argument,
                      "size is not a multiple of the element size");
  auto st = std::make_unique<segment_writer::state>();
  st->store = impl_;
  st->id = id;
  st->size = size;
  st->elem_size = elem_size;
  st->tmp = s.tmp_path(id);
  {
    std::lock_guard<std::mutex> guard{s.mtx};
    if (s.index.find(id) != nullptr)
      return make_error(store_errc::already_exists,
                        to_string(id) + " is already in store " + s.cfg.name);
    if (s.cfg.recycle_segments)
      st->map = s.take_pooled_locked(st->tmp, size);
    if (auto err = s.make_room_locked(size)) {
      if (st->map)
        s.keep_segment_locked(st->tmp, std::move(st->map), size);
      return err;
    }
    st->generation = s.index.insert(id, size, kind);
  }
  if (st->map == nullptr) {
    // A fresh segment: allocated and mapped outside the lock (the slow
    // part of a put, see docs/performance.md).
    auto m = create_mapped(st->tmp, internal::header_size + size);
    if (!m) {
      std::lock_guard<std::mutex> guard{s.mtx};
      s.index.erase(id);
      return std::move(m.error());
    }
    st->map = std::move(*m);
  }
  internal::object_header h;
  h.id = id;
  h.size = size;
  h.elem_size = elem_size;
  h.state_or_crc = internal::segment_writing;
  encode_header(reinterpret_cast<unsigned char*>(st->map->writable_bytes()),
                internal::segment_magic, internal::segment_version, h);
  return segment_writer{std::move(st)};
}

caf::expected<buffer> node_store::put(const object_id& id, const void* data,
                                      uint64_t size, copy_kind kind,
                                      uint32_t elem_size) {
  auto w = create(id, size, kind, elem_size);
  if (!w)
    return std::move(w.error());
  if (size > 0)
    std::memcpy(w->data(), data, size);
  return w->seal();
}

caf::expected<buffer> node_store::get(const object_id& id) {
  auto& s = *impl_;
  auto pin = std::make_shared<pin_holder>();
  uint64_t size = 0;
  {
    std::lock_guard<std::mutex> guard{s.mtx};
    auto e = s.ensure_in_memory_locked(id);
    if (!e)
      return std::move(e.error());
    s.index.pin(id);
    pin->store = impl_;
    pin->id = id;
    pin->generation = (*e)->generation;
    pin->map = s.maps.at(id);
    size = (*e)->size;
  }
  auto hdr = reinterpret_cast<const unsigned char*>(pin->map->bytes());
  auto elem_size = internal::get_u32(hdr + 40);
  auto data = pin->map->bytes() + internal::header_size;
  return buffer{data, size, elem_size, std::move(pin)};
}

caf::expected<segment_location> node_store::acquire(const object_id& id) {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.mtx};
  auto e = s.ensure_in_memory_locked(id);
  if (!e)
    return std::move(e.error());
  s.index.pin(id);
  auto hdr = reinterpret_cast<const unsigned char*>(s.maps.at(id)->bytes());
  return segment_location{s.segment_path(id), (*e)->size,
                          internal::get_u32(hdr + 40), (*e)->generation};
}

void node_store::release(const object_id& id, uint64_t generation) {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.mtx};
  s.index.unpin(id, generation);
}

bool node_store::contains(const object_id& id) const {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.mtx};
  auto e = s.index.find(id);
  return e != nullptr && e->sealed;
}

caf::error node_store::free(const object_id& id) {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.mtx};
  if (s.index.find(id) == nullptr)
    return make_error(store_errc::not_found,
                      to_string(id) + " is not in store " + s.cfg.name);
  s.free_locked(id);
  return caf::none;
}

size_t node_store::free_owned_by(uint64_t owner) {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.mtx};
  std::vector<object_id> ids;
  for (auto& id : s.index.lru_order())
    if (id.owner == owner)
      ids.push_back(id);
  for (auto& id : ids)
    s.free_locked(id);
  return ids.size();
}

store_stats node_store::stats() const {
  auto& s = *impl_;
  std::lock_guard<std::mutex> guard{s.mtx};
  store_stats r;
  r.capacity = s.index.capacity();
  r.memory_bytes = s.index.memory_used();
  r.objects = s.index.count();
  for (auto& id : s.index.lru_order()) {
    auto e = s.index.find(id);
    r.in_memory += e->in_memory ? 1 : 0;
    r.on_disk += e->on_disk ? 1 : 0;
  }
  r.evictions = s.evictions;
  r.spill_writes = s.spill_writes;
  r.spills = s.spills;
  r.restores = s.restores;
  r.pooled = s.pool.size();
  r.pooled_bytes = s.pool_bytes;
  r.reused = s.reused;
  return r;
}

const store_config& node_store::config() const noexcept {
  return impl_->cfg;
}

std::string node_store::segment_path(const object_id& id) const {
  return impl_->segment_path(id);
}

std::string node_store::spill_path(const object_id& id) const {
  return impl_->spill_path(id);
}

std::string node_store::file_prefix() const {
  return impl_->prefix;
}

// -- free functions -----------------------------------------------------------

caf::expected<buffer> map_sealed_segment(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return os_error(errno, "cannot open segment", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return os_error(err, "cannot stat segment", path);
  }
  auto length = static_cast<size_t>(st.st_size);
  if (length < internal::header_size) {
    ::close(fd);
    return make_error(store_errc::corrupt, "segment too short: " + path);
  }
  auto m = map_fd(fd, length, PROT_READ, 0);
  int err = errno;
  ::close(fd);
  if (!m)
    return os_error(err, "cannot map segment", path);
  auto hdr = reinterpret_cast<const unsigned char*>(m->bytes());
  internal::object_header h;
  if (!internal::decode_header(hdr, internal::segment_magic, h)
      || h.version != internal::segment_version
      || h.size + internal::header_size > length)
    return make_error(store_errc::corrupt, "bad segment header: " + path);
  if (h.state_or_crc != internal::segment_sealed)
    return make_error(store_errc::corrupt, "segment not sealed: " + path);
  auto data = m->bytes() + internal::header_size;
  return buffer{data, h.size, h.elem_size, std::move(m)};
}

size_t remove_dead_store_files(const std::string& shm_dir,
                               const std::string& spill_dir) {
  // Instances by "dref.<uid>.<name>.<pid>." prefix, from both directories.
  auto own = "dref." + std::to_string(::getuid()) + ".";
  auto instance_of = [&](const std::string& n) -> std::string {
    if (n.compare(0, own.size(), own) != 0)
      return {};
    auto name_end = n.find('.', own.size());
    if (name_end == std::string::npos)
      return {};
    auto pid_end = n.find('.', name_end + 1);
    if (pid_end == std::string::npos || pid_end == name_end + 1)
      return {};
    return n.substr(0, pid_end + 1);
  };
  // files[instance] = {shm_dir files, spill_dir files}
  std::unordered_map<std::string, std::vector<std::string>[2]> files;
  for (int k = 0; k < 2; ++k) {
    auto& dir = k == 0 ? shm_dir : spill_dir;
    if (dir.empty())
      continue;
    auto d = ::opendir(dir.c_str());
    if (d == nullptr)
      continue;
    while (auto ent = ::readdir(d)) {
      std::string n = ent->d_name;
      auto inst = instance_of(n);
      if (!inst.empty())
        files[inst][k].push_back(join(dir, n));
    }
    ::closedir(d);
  }
  size_t removed = 0;
  for (auto& [inst, paths] : files) {
    auto lock_path = join(shm_dir, inst + "lock");
    int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd); // held: the store is alive
      continue;
    }
    // Dead: its lock is free, or it has no lock file in shm_dir (a store
    // makes its lock before, and removes it after, every other file in
    // shm_dir). Spill files are only removed on a free lock: without one,
    // the instance may be alive with its lock in another shm_dir.
    for (auto& p : paths[0])
      if (p != lock_path && ::unlink(p.c_str()) == 0)
        ++removed;
    if (fd >= 0)
      for (auto& p : paths[1])
        if (::unlink(p.c_str()) == 0)
          ++removed;
    if (fd >= 0) {
      if (::unlink(lock_path.c_str()) == 0)
        ++removed;
      ::close(fd);
    }
  }
  return removed;
}

} // namespace dref
