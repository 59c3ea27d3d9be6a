#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "caf/error.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/refs/ref_descriptor.hpp"

namespace dref {

/// What a borrower knows about one object another process owns.
struct borrow_entry {
  /// Refs to the object in this process: live `ref` values plus one per
  /// value held here that contains the ref.
  uint32_t local_refs = 0;
  /// The owner acknowledged this process as a borrower.
  bool registered = false;
  /// A registration request is on its way to the owner.
  bool registering = false;
};

/// What a borrower knows about one owner process.
struct owner_record {
  std::string host;
  uint16_t port = 0;
  /// Set once the owner is known to be gone; every object it owns fails
  /// with this error (`refs_errc::owner_died`) from then on.
  caf::error dead;
};

/// A process's bookkeeping for the objects it borrows: refs it holds to
/// objects that other processes own.
///
/// Thread safety: none; the process guards it with the same mutex as its
/// ownership table. No messaging or I/O: the caller sends what the return
/// values say (a registration, a release).
///
/// Invariant: an entry exists exactly while `local_refs > 0`. When the count
/// drops to zero the entry is removed and, if the owner had registered this
/// process, the caller must send the owner a release.
///
/// Borrowing, as seen from one process (numbered as in
/// docs/architecture.md, "Borrowing"):
/// 1. A ref to an object owned elsewhere arrives (inside a task argument, a
///    result, a fetched value): `add` counts it; a new entry must be
///    registered with the owner (`needs_registration`).
/// 2. The caller sends the registration and calls `registering`; on the
///    owner's answer, `registered` (or `owner_died` when it is gone).
/// 3. Copies and drops count through `add_local_ref`/`remove_local_ref`.
/// 4. The last drop removes the entry; the caller releases it at the owner.
class borrow_table {
public:
  /// Counts one more local ref to `d.id`, making the entry if needed.
  /// Returns true when the entry was new.
  bool add(const ref_descriptor& d);

  /// Counts one more local ref; false if `id` is not borrowed here.
  bool add_local_ref(const object_id& id);

  /// Counts one local ref less. When that was the last one, the entry is
  /// gone and the result says whether the owner must be told (the process
  /// was registered, or a registration was on its way). Nothing when `id`
  /// is unknown or still referenced.
  std::optional<bool> remove_local_ref(const object_id& id);

  /// Ids in `ids` that are borrowed here but neither registered nor being
  /// registered, marked as being registered now.
  std::vector<object_id> start_registration(const std::vector<object_id>& ids);

  /// The owner acknowledged the registration of `id` (if still borrowed).
  void registered(const object_id& id);

  /// The registration of `id` did not happen (no answer, unreachable):
  /// the entry is neither registered nor being registered any more.
  void registration_failed(const object_id& id);

  /// The owner with id `owner` is gone: its objects fail with `why`.
  /// Returns the ids borrowed from it.
  std::vector<object_id> owner_died(uint64_t owner, caf::error why);

  /// The entry of `id`, or null.
  const borrow_entry* find(const object_id& id) const;

  /// The record of the owner of `id` (by `id.owner`), or null.
  const owner_record* owner_of(const object_id& id) const;

  /// The error of `id`'s owner when it died, else none.
  caf::error owner_error(const object_id& id) const;

  /// Number of borrowed objects.
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
  std::unordered_map<object_id, borrow_entry> entries_;
  std::unordered_map<uint64_t, owner_record> owners_;
};

/// The owner's list of borrowers per object: which processes (named by
/// their 64-bit process id, the `owner` part of the ids they make) hold a
/// registered borrow. The owner's table keeps only a count per object
/// (`object_entry::borrowers`); this set says who, so that a borrower's
/// death can release its borrows.
///
/// Thread safety: none (guarded with the ownership table).
class borrower_set {
public:
  /// Records `borrower` for `id`; false when it was already recorded.
  bool add(const object_id& id, uint64_t borrower);

  /// Removes `borrower` from `id`; false when it was not recorded.
  bool remove(const object_id& id, uint64_t borrower);

  /// Removes `borrower` everywhere; returns the ids it borrowed.
  std::vector<object_id> remove_borrower(uint64_t borrower);

  /// Forgets `id` (it was freed).
  void erase(const object_id& id);

  /// Borrowers of `id`.
  size_t count(const object_id& id) const;

  /// Number of objects with at least one borrower.
  size_t size() const noexcept {
    return map_.size();
  }

private:
  std::unordered_map<object_id, std::vector<uint64_t>> map_;
};

} // namespace dref
