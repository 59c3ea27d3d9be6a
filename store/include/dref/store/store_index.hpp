#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/store/fwd.hpp"

namespace dref {

/// The bookkeeping of one node store: for each object its size, state, copy
/// kind, pins, where its bytes are (memory, disk or both) and its place in
/// the LRU order; and the decision which copies make room for a new one.
///
/// A plain synchronous class: no I/O, no locks, no messages. `node_store`
/// owns one and guards it with its mutex; the unit tests drive it directly.
///
/// Counters:
/// - `pins` goes up by `pin` (a reader took a buffer, or a writer is
///   filling the object) and down by `unpin`. A pinned object is never
///   chosen to make room.
/// - `memory_used()` goes up by `insert` and `restored` and down by
///   `erase` (of an object in memory) and `spilled`.
///
/// Invariants: `memory_used()` is the sum of the sizes of the entries in
/// memory and never exceeds `capacity()`; every entry is in memory, on disk,
/// or both; a secondary copy is never on disk (it is dropped instead).
class store_index {
public:
  /// One object's bookkeeping.
  struct entry {
    uint64_t size = 0;
    copy_kind kind = copy_kind::primary;
    /// False while the writer fills it (create .. seal): not readable yet.
    bool sealed = false;
    bool in_memory = true;
    /// A valid spill file exists (objects are immutable, so a spill file
    /// stays valid after a restore and the next spill is free).
    bool on_disk = false;
    uint32_t pins = 0;
    /// Distinguishes incarnations of the same id (freed, then put again),
    /// so a late unpin of the old one does not touch the new one.
    uint64_t generation = 0;
    /// Position in the LRU list (front = least recently used).
    std::list<object_id>::iterator lru;
  };

  /// What must go to make room, in this order, as `make_room` chose it.
  struct plan {
    /// Secondary copies to delete (can be pulled again).
    std::vector<object_id> evict;
    /// Primary copies that already have a spill file: drop the memory copy.
    std::vector<object_id> drop;
    /// Primary copies to write to a spill file, then drop from memory.
    std::vector<object_id> spill;
    /// Bytes the plan frees.
    uint64_t bytes = 0;
    bool empty() const noexcept {
      return evict.empty() && drop.empty() && spill.empty();
    }
  };

  explicit store_index(uint64_t capacity);

  uint64_t capacity() const noexcept {
    return capacity_;
  }
  /// Bytes of the values in memory (sealed or being written).
  uint64_t memory_used() const noexcept {
    return memory_used_;
  }
  /// Number of objects (in memory, on disk, or being written).
  size_t count() const noexcept {
    return entries_.size();
  }

  /// Chooses which copies to remove so that `bytes` more fit in memory:
  /// 1. unpinned sealed secondary copies, least recently used first;
  /// 2. unpinned primary copies that have a spill file, LRU first;
  /// 3. if `may_spill`, the other unpinned primary copies, LRU first.
  /// Stops as soon as enough is free. Changes nothing: the caller carries
  /// the plan out and reports each step (`erase`, `spilled`).
  /// Fails with `store_full` if even all candidates are not enough (or
  /// `bytes > capacity()`).
  caf::expected<plan> make_room(uint64_t bytes, bool may_spill) const;

  /// Adds an object being written: in memory, unsealed, pinned once (the
  /// writer's pin). Returns its generation.
  /// @pre `find(id) == nullptr` and `memory_used() + size <= capacity()`.
  uint64_t insert(const object_id& id, uint64_t size, copy_kind kind);

  /// The entry, or null.
  const entry* find(const object_id& id) const;

  /// The writer is done: the object becomes readable. Drops the writer's pin.
  void seal(const object_id& id);

  /// Renames an object being written from `from` to `to`, keeping
  /// everything else (size, pins, generation, LRU position): a writer that
  /// filled a segment before the object's final id was known seals it
  /// under that id (`segment_writer::seal_as`).
  /// @pre `find(from)` is unsealed and `find(to) == nullptr`.
  void rekey(const object_id& from, const object_id& to);

  /// Marks `id` as most recently used.
  void touch(const object_id& id);

  void pin(const object_id& id);

  /// Drops one pin of incarnation `generation`; false if that incarnation
  /// is gone (freed meanwhile) or has no pin left (a double release).
  bool unpin(const object_id& id, uint64_t generation);

  /// A spill file for `id` now exists.
  void set_on_disk(const object_id& id);

  /// The memory copy of `id` is gone; its spill file remains.
  /// @pre the entry is in memory and on disk.
  void spilled(const object_id& id);

  /// The memory copy is back (read from the spill file).
  /// @pre not in memory and `memory_used() + size <= capacity()`.
  void restored(const object_id& id);

  /// Forgets the object (freed, evicted, or its creation aborted).
  void erase(const object_id& id);

  /// Ids from least to most recently used.
  std::vector<object_id> lru_order() const;

private:
  entry& at(const object_id& id);

  uint64_t capacity_;
  uint64_t memory_used_ = 0;
  uint64_t next_generation_ = 1;
  std::unordered_map<object_id, entry> entries_;
  std::list<object_id> lru_;
};

} // namespace dref
