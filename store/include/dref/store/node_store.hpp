#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/store/buffer.hpp"
#include "dref/store/fwd.hpp"

namespace dref {

/// How a node store is set up.
struct store_config {
  /// Names the store on its node: letters, digits, '-' and '_' only, at
  /// most 64 characters. Part of every file name the store makes.
  std::string name;
  /// Bytes of values the store keeps in shared memory at most.
  uint64_t capacity = uint64_t{1} << 30;
  /// Where segments live: a tmpfs. One file per object.
  std::string shm_dir = "/dev/shm";
  /// Where spilled values go (must exist). Empty: no spilling; a put that
  /// needs it fails with `store_full`.
  std::string spill_dir;
  /// Keep the segments of freed objects (their pages allocated and mapped)
  /// and reuse them for new objects: allocating and mapping fresh tmpfs
  /// pages costs far more than copying into them (docs/performance.md).
  /// Kept segments count against `capacity` and go first when room is
  /// needed.
  bool recycle_segments = true;
  /// Fault hook for tests: called before writing each spill file; an error
  /// it returns is handled exactly as a failed write of that file.
  std::function<caf::error(const object_id&)> spill_fault;
};

/// What a store holds now.
struct store_stats {
  uint64_t capacity = 0;
  /// Bytes of values in shared memory (sealed or being written).
  uint64_t memory_bytes = 0;
  /// Objects known (in memory, on disk, or being written).
  uint64_t objects = 0;
  uint64_t in_memory = 0;
  /// Objects with a spill file.
  uint64_t on_disk = 0;
  /// Since the store opened: secondary copies evicted, spill files
  /// written, memory copies dropped (spilled), and restores from disk.
  uint64_t evictions = 0;
  uint64_t spill_writes = 0;
  uint64_t spills = 0;
  uint64_t restores = 0;
  /// Segments kept for reuse (`recycle_segments`), their value bytes, and
  /// how many new objects reused one.
  uint64_t pooled = 0;
  uint64_t pooled_bytes = 0;
  uint64_t reused = 0;
};

/// Where a sealed object's segment is, for a reader in another process on
/// the node (see `node_store::acquire`).
struct segment_location {
  std::string path;
  uint64_t size = 0;
  uint32_t elem_size = 0;
  /// The incarnation pinned by `acquire`; pass it back to `release`.
  uint64_t generation = 0;
};

/// Fills one new object's segment: `data()` is writable until `seal()`.
/// Made by `node_store::create`. Dropping a writer without sealing aborts
/// the object (its segment is removed, its memory released).
/// Thread safety: one thread at a time. Movable, not copyable.
class segment_writer {
public:
  segment_writer();
  segment_writer(segment_writer&&) noexcept;
  segment_writer& operator=(segment_writer&&) noexcept;
  ~segment_writer();

  /// The value's bytes, writable.
  char* data() const noexcept;
  uint64_t size() const noexcept;

  /// The segment file being written (`<name>.tmp`); another process on the
  /// node may map it read-write and fill it (`node_client::create`).
  const std::string& path() const noexcept;

  /// The index incarnation of the object being written.
  uint64_t generation() const noexcept;

  /// Makes the object immutable and visible: marks the header sealed and
  /// gives the segment its final name. Readers get the segment's read-only
  /// view; the writable view stays with the store for reuse (no
  /// `mprotect`).
  /// Returns a (pinned) view of the value. Fails with `not_found` if the
  /// object was freed meanwhile, `io_error` if the rename failed.
  caf::expected<buffer> seal();

  /// Seals the object under the id `as` instead of the one it was created
  /// with (for a writer that filled the segment before the value's final id
  /// was known, `node_client::writer::seal_as`): the index entry and the
  /// header take `as`, the segment gets `as`'s final name. Fails as `seal`,
  /// or with `already_exists` if `as` is in the store (the object is then
  /// aborted).
  caf::expected<buffer> seal_as(const object_id& as);

  /// Gives up the object (as the destructor does).
  void abort();

  struct state;
  explicit segment_writer(std::unique_ptr<state> st);

private:
  std::unique_ptr<state> st_;
};

/// A node's object store: values live in sealed shared-memory segments
/// (one file per object under `shm_dir`) that every process on the node
/// can map; under memory pressure, secondary copies are evicted and primary
/// copies spilled to `spill_dir`, and restored on access.
///
/// Life of a value (docs/architecture.md, "Object store"):
/// 1. create: room is made (evict / spill, see `store_index::make_room`),
///    the object enters the index as being written, and a segment file
///    `<name>.tmp` is created, allocated and mapped read-write;
/// 2. the writer fills it; 3. seal: header marked sealed, mapping made
///    read-only, file renamed to its final name; only then can anyone read;
/// 4. get/acquire: in-process readers get a pinned view of the mapping;
///    other processes on the node pin it (`acquire`) and map the file
///    read-only;
/// 5. evict (secondary) / spill (primary) when room is needed;
/// 6. restore: a get of a spilled object reads its spill file back into a
///    new segment (checking magic, version, size and CRC-32C);
/// 7. free: every copy goes (segment and spill file). An unpinned
///    segment is kept for reuse (`recycle_segments`); a pinned one is
///    unlinked, and the mappings its readers hold stay valid until they
///    drop them.
/// Each step ends in success or a definite `store_errc`; none waits for
/// anything but local I/O.
///
/// Thread safety: every member function may be called from any thread;
/// one mutex guards the index and the file operations of evicting,
/// spilling and restoring (values are copied into segments outside it).
/// Ownership: the store owns its files; closing it (destructor) removes
/// them all. Crash hygiene: `open` removes the files of stores on this node
/// whose process died (each live store holds an flock on its lock file).
class node_store {
public:
  /// Opens a store (and first removes the files of dead stores in
  /// `shm_dir` and `spill_dir`). Fails with `invalid_argument` for a bad
  /// name, `io_error` if the directories are unusable.
  static caf::expected<std::unique_ptr<node_store>> open(store_config cfg);

  ~node_store();

  node_store(const node_store&) = delete;
  node_store& operator=(const node_store&) = delete;

  /// Step 1 of the life of a value: reserves room for `size` bytes and
  /// returns the writer. Fails with `already_exists`, `store_full`,
  /// `io_error`/`disk_full` (a spill needed for room failed; nothing
  /// stored was lost).
  caf::expected<segment_writer> create(const object_id& id, uint64_t size,
                                       copy_kind kind = copy_kind::primary,
                                       uint32_t elem_size = 0);

  /// create + copy + seal.
  caf::expected<buffer> put(const object_id& id, const void* data,
                            uint64_t size,
                            copy_kind kind = copy_kind::primary,
                            uint32_t elem_size = 0);

  /// Puts an array of trivially copyable `T`, readable later without copy
  /// through `buffer::as_array<T>()`.
  template <class T>
  caf::expected<buffer> put_array(const object_id& id, const T* data,
                                  size_t n,
                                  copy_kind kind = copy_kind::primary) {
    static_assert(std::is_trivially_copyable_v<T>);
    return put(id, data, n * sizeof(T), kind,
               static_cast<uint32_t>(sizeof(T)));
  }

  /// A pinned view of the value (restored from disk first if spilled).
  /// Fails with `not_found`, `store_full` (no room to restore), `corrupt`,
  /// `io_error`.
  caf::expected<buffer> get(const object_id& id);

  /// Like `get`, for a reader in another process: makes sure the value is
  /// in memory, pins it, and returns its segment's path. The pin lasts until
  /// `release` (the transfer server also releases the pins of a connection
  /// that closes, so a reader that dies leaks none). While pinned, the
  /// segment is neither evicted, spilled nor reused; a free unlinks it
  /// but never reuses its pages.
  caf::expected<segment_location> acquire(const object_id& id);

  /// Drops the pin of an `acquire` (a no-op if that incarnation is gone).
  void release(const object_id& id, uint64_t generation);

  /// True if the object is sealed here (in memory or on disk).
  bool contains(const object_id& id) const;

  /// Deletes every copy (segment, spill file, index entry). Fails with
  /// `not_found`. A writer still filling the object then fails to seal.
  caf::error free(const object_id& id);

  /// Fate-sharing: the process `owner` died, so every object it owned goes
  /// (as by `free`, sealed or still being written): each id whose `owner`
  /// field is `owner`. Returns how many went. Objects of other owners are
  /// untouched. Called by the process hosting the store when it learns of
  /// the death (the runtime: `on_worker_down`); without it a dead worker's
  /// primary copies would stay until the store closes.
  size_t free_owned_by(uint64_t owner);

  store_stats stats() const;
  const store_config& config() const noexcept;

  /// File names (for tests, tools and docs).
  std::string segment_path(const object_id& id) const;
  std::string spill_path(const object_id& id) const;
  /// Prefix of every file this store makes: `dref.<uid>.<name>.<pid>.`
  std::string file_prefix() const;

  struct impl;

private:
  explicit node_store(std::shared_ptr<impl> ptr);
  std::shared_ptr<impl> impl_;
};

/// Maps a sealed segment read-only (for a reader in another process on the
/// node; `node_client` does it for you). Hold an `acquire` of the object
/// for as long as the mapping lives: an unpinned segment's pages may be
/// reused for another object once it is freed. Fails with `not_found` (no
/// such file), `corrupt` (bad header or not sealed), `io_error`.
caf::expected<buffer> map_sealed_segment(const std::string& path);

/// Removes the files of dead stores (lock file not held) from `shm_dir` and
/// `spill_dir` (either may be empty). Returns how many files went. Called
/// by `node_store::open`; callable alone (e.g. by `dref start`).
size_t remove_dead_store_files(const std::string& shm_dir,
                               const std::string& spill_dir);

} // namespace dref
