#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "caf/error.hpp"

#include "dref/refs/fwd.hpp"
#include "dref/refs/location_list.hpp"
#include "dref/refs/object_id.hpp"

namespace dref {

/// Life of an owned object as its owner sees it.
enum class object_state : uint8_t {
  /// The task that makes the value has not finished.
  pending,
  /// The value exists (in the owner's memory, at `locations`, or both).
  ready,
  /// The task failed or every copy was lost; `error` says why.
  failed,
};

std::string to_string(object_state x);

/// How an object was made: the task whose result it is. Kept for
/// re-execution (lineage reconstruction) and for diagnostics.
struct lineage {
  /// Name of the function or actor method that makes the object.
  std::string function;
  /// The full task description, opaque to this table (owned by actors/).
  std::shared_ptr<const void> task;
};

/// What the owner knows about one object it owns.
///
/// Counters:
/// - `local_refs`: +1 when a `ref` to the object is made or copied in the
///   owner's process, -1 when one is destroyed.
/// - `submitted_refs`: +1 when a task that takes the object as an argument is
///   submitted, -1 when that task has finished (succeeded or failed). It keeps
///   the value alive while a worker may still read it.
/// - `borrowers`: +1 when another process registers as a borrower, -1 when
///   it releases the object or dies.
/// `local_refs` also counts, once per occurrence, values held by the owner
/// that contain a ref to the object (nested refs).
struct object_entry {
  object_state state = object_state::pending;
  /// Other processes holding a registered borrow (who: `borrower_set`).
  uint16_t borrowers = 0;
  uint32_t local_refs = 0;
  uint32_t submitted_refs = 0;
  /// The task that makes the object; null for `put` values.
  std::shared_ptr<const lineage> made_by;
  /// The owner's own in-memory copy (small values), or null.
  std::shared_ptr<const blob> value;
  /// Worker processes holding a copy; `owner_location` is never listed here,
  /// the owner's copy is `value`.
  location_list locations;
  /// Size of the serialized value in bytes (0 while pending).
  uint64_t size = 0;
  /// Why the object failed (state == failed).
  caf::error error;
  /// Code address of the user's call that created the object (diagnostics,
  /// `dref memory`), or null.
  const void* call_site = nullptr;
};

/// The owner's bookkeeping for the objects it owns: counts, lineage, value or
/// locations, and state. Decides when an object is freed.
///
/// Thread safety: none. The owner guards its table with one mutex (see
/// `runtime`); the table itself does no locking, no messaging and no I/O, so
/// it is unit-tested on its own.
///
/// Invariant (the freeing rule): an entry exists exactly as long as
/// `local_refs > 0 || submitted_refs > 0 || borrowers > 0 || state ==
/// pending`. The moment an
/// update makes all three false, the entry is removed and handed to the
/// free handler, which frees every copy listed in it. A pending object whose
/// refs are all gone stays until its task finishes, so the result that
/// arrives later is freed at the worker too and nothing leaks.
///
/// Ownership: the table owns its entries; the free handler receives each
/// removed entry by value.
class ownership_table {
public:
  /// Called with each entry at the moment it is freed.
  using free_handler = std::function<void(const object_id&, object_entry&&)>;

  explicit ownership_table(free_handler on_free = nullptr);

  /// Adds an object made by a task: state pending, one local ref.
  /// @pre `id` is not in the table.
  void add_pending(const object_id& id, std::shared_ptr<const lineage> made_by,
                   const void* call_site = nullptr);

  /// Adds an object whose value the owner already holds (`put`): state
  /// ready, one local ref.
  /// @pre `id` is not in the table.
  void add_ready(const object_id& id, std::shared_ptr<const blob> value,
                 const void* call_site = nullptr);

  /// Adds an object whose value of `size` bytes is held at `where` only
  /// (e.g. `node_location`: a `put` sealed in the node store): state
  /// ready, one local ref, no owner copy.
  /// @pre `id` is not in the table.
  void add_ready_at(const object_id& id, uint64_t size, worker_id where,
                    const void* call_site = nullptr);

  /// Counts one more local ref. Returns false if `id` is unknown.
  bool add_local_ref(const object_id& id);

  /// Counts one local ref less; may free the object. Returns false if `id`
  /// is unknown.
  bool remove_local_ref(const object_id& id);

  /// Counts one more submitted task that reads `id`.
  bool add_submitted_ref(const object_id& id);

  /// Counts one submitted task less (it finished); may free the object.
  bool remove_submitted_ref(const object_id& id);

  /// Counts one more borrowing process. Returns false if `id` is unknown.
  bool add_borrower(const object_id& id);

  /// Counts one borrowing process less; may free the object.
  bool remove_borrower(const object_id& id);

  /// Marks a pending object ready. `value` is the owner's copy (may be null
  /// when the value stays at `where`); `where` is the worker that holds a
  /// copy, or `owner_location` for none; `also` a second copy (e.g.
  /// `node_location`), listed after `where`. May free the object at once
  /// when no ref is left (the free handler then sees both locations).
  /// Returns false if `id` is unknown or not pending.
  bool set_ready(const object_id& id, std::shared_ptr<const blob> value,
                 uint64_t size, worker_id where,
                 worker_id also = owner_location);

  /// Marks a pending or ready object failed with `err`, dropping any copy
  /// the owner holds (copies at workers stay listed so they are freed).
  /// May free the object at once. Returns false if `id` is unknown.
  bool set_failed(const object_id& id, caf::error err);

  /// Records that worker `w` holds a copy of `id`.
  bool add_location(const object_id& id, worker_id w);

  /// Forgets every copy at worker `w` (it died). Ready objects left with no
  /// copy at all fail with `refs_errc::object_lost`; their ids are returned.
  /// A copy at `node_location` is a copy: it keeps the object ready.
  std::vector<object_id> drop_location(worker_id w);

  /// Returns the entry for `id`, or null when the object is not (or no
  /// longer) owned here.
  const object_entry* find(const object_id& id) const;

  /// Number of owned objects.
  size_t size() const noexcept {
    return entries_.size();
  }

  /// Visits every entry (id, entry).
  template <class F>
  void for_each(F&& f) const {
    for (auto& [id, e] : entries_)
      f(id, e);
  }

private:
  using map_type = std::unordered_map<object_id, object_entry>;

  // Applies the freeing rule to `i`.
  void maybe_free(map_type::iterator i);

  free_handler on_free_;
  map_type entries_;
};

} // namespace dref
