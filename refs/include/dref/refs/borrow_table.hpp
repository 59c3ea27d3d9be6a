#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "caf/error.hpp"

#include "dref/refs/object_id.hpp"
#include "dref/refs/process_address.hpp"
#include "dref/refs/ref_descriptor.hpp"

namespace dref {

/// What a borrower knows about one object another process owns.
struct borrow_entry {
  /// Refs to the object in this process: live `ref` values plus one per
  /// value held here that contains the ref, plus one per transit hold or
  /// lingering hold of this process on it.
  uint32_t local_refs = 0;
  /// This borrow's generation: unique within the process and increasing,
  /// drawn when the entry is made. Its registration and its release carry
  /// it, so the owner can tell a late release of an earlier borrow of the
  /// same object from the current borrow (see `borrower_set`).
  uint64_t gen = 0;
  /// Token of the registration under way (see `ref_core`), 0 when none.
  uint64_t registering = 0;
  /// The owner acknowledged this borrow.
  bool registered = false;
  /// The owner answered that it does not know the object (freed, or never
  /// made): a read of it fails with `unknown_object`.
  bool refused = false;
  /// A registration got no answer (timed out, connection lost): the owner
  /// may count this process all the same, so the last drop still releases.
  bool maybe_counted = false;
};

/// What a borrower knows about one owner process.
struct owner_record {
  /// The owner's ref server (learned from the first descriptor naming it).
  process_address address;
  /// Set once the owner is known to be gone; every object it owns fails
  /// with this error (`refs_errc::owner_died`) from then on.
  caf::error dead;
};

/// A process's bookkeeping for the objects it borrows: refs it holds to
/// objects that other processes own.
///
/// Thread safety: none; the process guards it with the same lock as the rest
/// of its `ref_core`. No messaging or I/O.
///
/// Invariant: an entry exists exactly while `local_refs > 0`. When the count
/// drops to zero the entry is removed and, if the owner counts this process
/// (registered, or a registration under way), the caller must release it.
class borrow_table {
public:
  /// Counts one more local ref to `d.id`, making the entry (with a fresh
  /// generation) if needed, and learns the owner's address from `d`.
  /// Returns true when the entry was new.
  bool add(const ref_descriptor& d);

  /// Counts one more local ref; false if `id` is not borrowed here.
  bool add_local_ref(const object_id& id);

  /// Counts one local ref less. When that was the last one the entry is
  /// gone and is returned (its generation and registration state say what
  /// the owner must be told). Nothing when `id` is unknown or still
  /// referenced.
  std::optional<borrow_entry> remove_local_ref(const object_id& id);

  /// Marks `id` as being registered by the registration `token`; false
  /// when it is unknown, registered, or being registered already.
  bool start_registration(const object_id& id, uint64_t token);

  /// The owner acknowledged registration `token` of `id` (ignored when the
  /// entry is gone or another registration replaced it).
  void registered(const object_id& id, uint64_t token);

  /// Registration `token` of `id` did not happen: neither registered nor
  /// under way; `refused`: the owner said it does not know the object
  /// (else no answer came); `maybe_counted`: the request may have reached
  /// the owner all the same (it timed out).
  void registration_failed(const object_id& id, uint64_t token,
                           bool refused = false, bool maybe_counted = false);

  /// The owner with incarnation `owner` is gone: its objects fail with
  /// `why`, registrations to it end. Returns the ids borrowed from it.
  std::vector<object_id> owner_died(uint64_t owner, caf::error why);

  /// The entry of `id`, or null.
  const borrow_entry* find(const object_id& id) const;

  /// The record of the owner of `id` (by `id.owner`), or null.
  const owner_record* owner_of(const object_id& id) const;

  /// The record of the owner with incarnation `owner`, or null.
  const owner_record* owner(uint64_t owner) const;

  /// Learns (or confirms) where process `addr.process` listens.
  void learn(const process_address& addr);

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
  uint64_t next_gen_ = 1;
};

/// The owner's list of borrowers per object: which processes (named by
/// their incarnation) hold a registered borrow, and of which generation.
/// The owner's table keeps only a count per object
/// (`object_entry::borrowers`); this set says who, so that a borrower's
/// death can end its borrows, and which borrow, so that messages arriving
/// late or twice cannot undo a newer one:
/// - a registration of generation g counts the borrower once, unless a
///   registration of generation >= g was seen (a duplicate, or one that a
///   newer borrow overtook);
/// - a release of generation g uncounts the borrower only when g is the
///   counted generation (a release of an earlier borrow that arrives after
///   a newer registration changes nothing).
/// Records of ended borrows stay (as tombstones) until the object is freed,
/// so a duplicated registration cannot count a borrower again.
///
/// Thread safety: none (guarded with the ownership table).
class borrower_set {
public:
  /// Records registration `gen` of `borrower` for `id`; true when the
  /// borrower was not counted before and is now (count one more).
  bool add(const object_id& id, uint64_t borrower, uint64_t gen);

  /// Ends registration `gen` of `borrower` for `id`; true when it was the
  /// counted one (count one less).
  bool remove(const object_id& id, uint64_t borrower, uint64_t gen);

  /// Removes `borrower` everywhere (it died); returns the ids where it was
  /// counted.
  std::vector<object_id> remove_borrower(uint64_t borrower);

  /// Forgets `id` (it was freed).
  void erase(const object_id& id);

  /// Counted borrowers of `id`.
  size_t count(const object_id& id) const;

  /// Number of objects with at least one record.
  size_t size() const noexcept {
    return map_.size();
  }

private:
  struct record {
    uint64_t borrower = 0;
    uint64_t gen = 0;
    bool counted = false;
  };
  std::unordered_map<object_id, std::vector<record>> map_;
};

} // namespace dref
