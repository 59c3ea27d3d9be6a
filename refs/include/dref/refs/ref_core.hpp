#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "caf/error.hpp"

#include "dref/refs/borrow_table.hpp"
#include "dref/refs/object_id.hpp"
#include "dref/refs/ownership_table.hpp"
#include "dref/refs/process_address.hpp"
#include "dref/refs/ref_descriptor.hpp"
#include "dref/refs/timed_holds.hpp"

namespace dref {

/// A request to register borrows with their owner (borrowing, step 2).
/// The owner answers with the ids it does not know; the answer goes to
/// `ref_core::on_borrow_answer(token, ...)`.
struct borrow_request {
  uint64_t token = 0;
  process_address owner;
  std::vector<object_id> ids;
  /// The generation of each borrow, parallel to `ids`.
  std::vector<uint64_t> gens;
};

/// A release of borrows at their owner (borrowing, step 4).
struct release_request {
  process_address owner;
  std::vector<object_id> ids;
  std::vector<uint64_t> gens;
};

/// Transit holds a receiver lets go of at their holder (step 3 of "refs in
/// plain CAF messages").
struct hold_release_request {
  process_address holder;
  std::vector<uint64_t> tokens;
};

/// What a `ref_core` asks its process to send, filled by `ref_core::take`.
/// The process sends every entry (after releasing the lock that guards the
/// core); the core has already counted them as sent.
struct ref_outbox {
  std::vector<borrow_request> registrations;
  std::vector<release_request> releases;
  std::vector<hold_release_request> hold_releases;
  /// Copies of freed objects held by other processes, by location.
  std::map<worker_id, std::vector<object_id>> frees;
  /// Copies of freed objects in the node store.
  std::vector<object_id> node_frees;

  bool empty() const noexcept {
    return registrations.empty() && releases.empty() && hold_releases.empty()
           && frees.empty() && node_frees.empty();
  }
};

/// One process's part of the reference protocol: every process of a
/// cluster (driver, worker, and later node services and programs started on
/// their own) runs one `ref_core`, the single implementation of owning,
/// borrowing, nested refs and transit holds. It is plain synchronous
/// bookkeeping: no messaging, no I/O, no clock of its own. The process
/// feeds it events (refs copied and dropped, refs read from bytes, messages
/// of other processes, deaths, the time) and sends what `take` hands out;
/// a deterministic test feeds several cores through a simulated network.
///
/// Who may touch it: one thread at a time; the process guards it with one
/// lock (`internal::process_refs`). Ownership: the core owns its tables;
/// the process owns the core and frees it at stop.
///
/// Invariants:
/// - Every ref this process holds is counted once, in the ownership table
///   (objects whose id names this process's incarnation) or in the borrow
///   table (objects owned elsewhere). A value held here that contains refs
///   (an owned object's value, or a copy kept for another owner) counts
///   one local ref per contained ref; so does every transit and lingering
///   hold.
/// - An owned entry exists exactly while
///   `local_refs > 0 || submitted_refs > 0 || borrowers > 0 || pending`
///   (the freeing rule, `ownership_table`).
/// - The release barrier: a message that ends a protection (a release, a
///   transit hold's release, a free of a copy held elsewhere) leaves only
///   after every registration this process started before it was queued has
///   been answered or has failed. So no protection this process received
///   can end before the owner counts this process.
///
/// Borrowing, for an object X owned by process O and a process P (numbered
/// as in docs/architecture.md, "Borrowing and nested refs"):
/// 1. Arrive: bytes holding a ref to X reach P (`adopt`, `hold_in_owned`,
///    `hold_in_copy`); P counts a local ref; a new entry draws a generation.
/// 2. Register: P sends `borrow(X, gen)` to O (`take`); O counts P once per
///    generation (`on_borrow`, `borrower_set`); P marks it registered on the
///    answer (`on_borrow_answer`). Until then the release barrier holds back
///    every protection-ending message P queued meanwhile.
/// 3. Use and pass on: copies count locally; a ref sent in a plain message
///    is kept by a transit hold until the receiver, registered, releases it
///    (`hold_for_transit`, `release_holds`); refs inside values are
///    protected by whoever holds the value.
/// 4. Release: the last local ref goes; P queues `release(X, gen)` for O
///    (behind the barrier); O uncounts P only for that generation
///    (`on_release`), so a late release cannot undo a newer borrow.
/// 5. Deaths (`on_process_down`): O ends a dead borrower's borrows, but
///    keeps each as a *lingering hold* for `death_grace`, so refs the dead
///    process sent just before dying can still be registered by their
///    receivers; P marks a dead owner's objects failed (`owner_died`) and
///    stops waiting for its answers. The protections a process gave a dead
///    one's tasks (submitted refs) linger the same way (`linger`).
/// Termination: every step is local bookkeeping or one message; a
/// registration ends with an answer, a failure reported by the process (its
/// request timed out), or the owner's death, so the barrier always opens;
/// transit and lingering holds end by their deadlines at the latest.
class ref_core {
public:
  using clock_type = std::chrono::steady_clock;
  using time_point = clock_type::time_point;
  using duration = clock_type::duration;

  struct settings {
    /// This process: its incarnation names the objects it owns.
    process_address self;
    /// How long a ref sent in a plain message is kept for a receiver that
    /// never registers (the message was lost).
    duration transit_timeout = std::chrono::seconds{60};
    /// How long the protections of a dead process linger.
    duration death_grace = std::chrono::seconds{2};
  };

  explicit ref_core(settings cfg);

  ref_core(const ref_core&) = delete;
  ref_core& operator=(const ref_core&) = delete;

  const process_address& self() const noexcept {
    return cfg_.self;
  }

  /// Sets the port this process's ref server listens on (known only once
  /// it is published, before the first descriptor is written).
  void set_port(uint16_t port) noexcept {
    cfg_.self.port = port;
  }

  const settings& config() const noexcept {
    return cfg_;
  }

  /// True if this process owns `id`.
  bool owns(const object_id& id) const noexcept {
    return id.owner == cfg_.self.process;
  }

  // -- local refs --------------------------------------------------------------

  /// A ref to `id` was copied in this process.
  void add_local_ref(const object_id& id);

  /// A ref to `id` in this process was destroyed; may free or release.
  void remove_local_ref(const object_id& id);

  // -- owning ------------------------------------------------------------------

  /// The ownership table, for the owner's own updates (new objects, results,
  /// submitted refs, locations). Its frees go through this core.
  ownership_table& owned() noexcept {
    return owned_;
  }

  const ownership_table& owned() const noexcept {
    return owned_;
  }

  /// The value of owned object `outer` contains refs whose local counts
  /// the caller already holds (collected while serializing it): the entry
  /// takes them over until it is freed.
  void adopt_in_owned(const object_id& outer, std::vector<object_id> inner);

  /// The value of owned object `outer` (a result that arrived) contains the
  /// refs `ds`: counts them until the entry is freed; new borrows are
  /// registered.
  void hold_in_owned(const object_id& outer,
                     const std::vector<ref_descriptor>& ds);

  /// Descriptors of the refs inside the value of owned object `id`.
  std::vector<ref_descriptor> owned_contained(const object_id& id) const;

  // -- copies kept for other owners --------------------------------------------

  /// A copy of `outer` (owned by another process, e.g. a task result this
  /// worker made) is kept here and contains refs whose local counts the
  /// caller already holds.
  void adopt_in_copy(const object_id& outer, std::vector<object_id> inner);

  /// A copy of `outer` kept here contains the refs `ds`: counts them while
  /// the copy lives; new borrows are registered. Returns the registration
  /// tokens the refs wait for (see `adopt`).
  std::vector<uint64_t> hold_in_copy(const object_id& outer,
                                     const std::vector<ref_descriptor>& ds);

  /// Descriptors of the refs inside the copy of `id`.
  std::vector<ref_descriptor> copy_contained(const object_id& id) const;

  /// The copy of `outer` is gone: the refs inside it are dropped.
  void drop_copy(const object_id& outer);

  // -- borrowing ---------------------------------------------------------------

  /// A ref read from bytes: counts one local ref; for an object owned
  /// elsewhere this makes the process a borrower (registration queued,
  /// unless the owner is known dead); a transit hold in `d` is let go once
  /// the borrow is registered. Returns the token of the registration the
  /// ref waits for (0: none).
  uint64_t adopt(const ref_descriptor& d);

  /// The token of the registration `id`'s borrow waits for, 0 if none.
  uint64_t registration_of(const object_id& id) const;

  /// True while registration `token` has neither been answered nor failed.
  bool registration_pending(uint64_t token) const;

  /// Fills in the owner's address of `id` (a ref is being serialized).
  void describe(const object_id& id, ref_descriptor& out) const;

  /// A ref to `id` leaves in a plain message: keeps it under a transit hold
  /// until the receiver releases it or `now + transit_timeout`, and
  /// describes the hold in `out`.
  void hold_for_transit(const object_id& id, ref_descriptor& out,
                        time_point now);

  /// Receivers released the transit holds `tokens`.
  void release_holds(const std::vector<uint64_t>& tokens);

  /// Owner side of step 2: `borrower` registers `ids` (generations
  /// `gens`). Returns the ids this process does not own (freed, never made)
  /// or that a dead borrower asks for.
  std::vector<object_id> on_borrow(const std::vector<object_id>& ids,
                                   const std::vector<uint64_t>& gens,
                                   const process_address& borrower);

  /// Owner side of step 4.
  void on_release(const std::vector<object_id>& ids,
                  const std::vector<uint64_t>& gens, uint64_t borrower);

  /// The owner answered registration `token`; `unknown` are the ids it
  /// does not know (those borrows stay unregistered: a read of them fails).
  void on_borrow_answer(uint64_t token, const std::vector<object_id>& unknown);

  /// Registration `token` failed: its request timed out or the owner is
  /// unreachable (only `on_process_down` proves an owner dead). Those
  /// borrows stay unregistered; with `maybe_counted` (the request may have
  /// reached the owner) they are still released when they go.
  void on_borrow_failed(uint64_t token, bool maybe_counted = true);

  // -- deaths and time ---------------------------------------------------------

  /// Process `process` is gone (`why` names it): its borrows here linger
  /// until `now + death_grace`; its objects borrowed here fail with `why`;
  /// registrations to it fail; nothing more is sent to it. Messages from it
  /// that arrive later are refused.
  void on_process_down(uint64_t process, const caf::error& why,
                       time_point now);

  /// True if `process` was reported down.
  bool is_dead(uint64_t process) const {
    return dead_.count(process) > 0;
  }

  /// Keeps one local ref on `id` (owned or borrowed here) until
  /// `now + death_grace`: a protection that a dead process held, which must
  /// outlive it briefly (see step 5).
  void linger(const object_id& id, time_point now);

  /// Ends the transit and lingering holds whose deadline passed.
  void expire(time_point now);

  /// The earliest deadline of a transit or lingering hold.
  std::optional<time_point> next_deadline() const;

  /// Ends every transit and lingering hold (the process stops).
  void clear_holds();

  // -- the outbox --------------------------------------------------------------

  /// Moves into `out` what may be sent now: every queued registration, and
  /// the protection-ending messages the release barrier lets go.
  void take(ref_outbox& out);

  /// Moves into `out` the frees queued for location `w` that the barrier
  /// lets go (they can ride on a task batch to `w`).
  void take_frees(worker_id w, std::vector<object_id>& out);

  /// A copy of `id` kept at location `w` (and with `in_node` its bytes in
  /// the node store) that no entry lists (a result that arrived for an
  /// object no longer pending here): freed like the copies of a freed
  /// object.
  void free_copy(worker_id w, const object_id& id, bool in_node);

  /// Moves the node-store copies of freed objects into `out` (no barrier:
  /// bytes only, the refs inside are counted where the copies are).
  void take_node_frees(std::vector<object_id>& out);

  /// True if a registration waits to be sent.
  bool has_open_registrations() const noexcept {
    return !open_.empty();
  }

  /// Frees queued for location `w` are moot (it died).
  void drop_frees(worker_id w);

  /// True if `take` would hand out anything.
  bool has_sendable() const;

  /// True if something was queued since the last call (then the caller
  /// looks at `has_sendable` and the node frees): the cheap check of the
  /// hot paths (copying and dropping refs queue nothing most of the time).
  bool take_dirty() noexcept {
    bool result = dirty_;
    dirty_ = false;
    return result;
  }

  /// True if anything waits (sendable or behind the barrier).
  bool has_queued() const noexcept {
    return !open_.empty() || !releases_.empty() || !hold_releases_.empty()
           || !frees_.empty() || !node_frees_.empty();
  }

  // -- introspection -----------------------------------------------------------

  const borrow_table& borrowed() const noexcept {
    return borrowed_;
  }

  /// Registrations queued or sent and not answered.
  size_t registrations_pending() const noexcept {
    return tokens_.size();
  }

  /// Releases, hold releases and frees waiting to be sent.
  size_t releases_pending() const noexcept {
    return releases_.size() + hold_releases_.size() + frees_.size();
  }

  size_t transit_holds() const noexcept {
    return transit_.size();
  }

  size_t lingering_holds() const noexcept {
    return lingering_.size();
  }

  /// Counted borrowers of owned object `id`.
  size_t borrowers_of(const object_id& id) const {
    return borrowers_.count(id);
  }

  /// The address of process `process`, if known.
  const process_address* address_of(uint64_t process) const;

  /// Learns where process `addr.process` listens.
  void learn(const process_address& addr);

  /// True when this process holds nothing: no owned, borrowed or contained
  /// object, no hold, nothing queued. The end state of every test.
  bool empty() const noexcept;

private:
  struct queued_release {
    uint64_t barrier;
    uint64_t owner;
    object_id id;
    uint64_t gen;
  };
  struct queued_hold_release {
    uint64_t barrier;
    process_address holder;
    uint64_t token;
  };
  struct queued_free {
    uint64_t barrier;
    worker_id where;
    object_id id;
  };
  struct registration {
    uint64_t owner = 0;
    std::vector<object_id> ids;
    std::vector<uint64_t> gens;
    bool sent = false;
  };

  // The free handler of the ownership table.
  void on_free(const object_id& id, object_entry&& e);
  // Counts one local ref on `d.id` for a held value or an arrival; starts
  // a registration for a borrow that needs one. Returns the token `d.id`
  // waits for (0: none); false when `d.id` is owned here but freed
  // already (the ref reads as unknown). Does not look at transit holds.
  std::pair<bool, uint64_t> count(const ref_descriptor& d);
  // One local ref less on `id` (owned or borrowed), without draining.
  void drop(const object_id& id);
  // Drops the refs collected by frees, until none is left (iterative, so
  // deeply nested values cannot overflow the stack).
  void drain();
  // The token of the open registration to `owner` (made if needed).
  uint64_t open_registration(uint64_t owner);
  // Registration `token` is over (answered or failed).
  void close_registration(uint64_t token);
  // The barrier value for a message queued now.
  uint64_t barrier() const noexcept {
    return next_token_ - 1;
  }
  // True if a message queued with `b` may leave.
  bool open_for(uint64_t b) const noexcept {
    return tokens_.empty() || tokens_.begin()->first > b;
  }

  settings cfg_;
  ownership_table owned_;
  borrow_table borrowed_;
  borrower_set borrowers_;
  // Refs inside values held here: an owned object's value, a kept copy.
  std::unordered_map<object_id, std::vector<object_id>> owned_contained_;
  std::unordered_map<object_id, std::vector<object_id>> copy_contained_;
  timed_holds transit_;
  timed_holds lingering_;
  // Registrations not answered yet (queued or sent), by token, and the open
  // (not yet taken) one per owner.
  std::map<uint64_t, registration> tokens_;
  std::unordered_map<uint64_t, uint64_t> open_;
  uint64_t next_token_ = 1;
  // Protection-ending messages, in the order they were queued.
  std::deque<queued_release> releases_;
  std::deque<queued_hold_release> hold_releases_;
  std::deque<queued_free> frees_;
  std::vector<object_id> node_frees_;
  // Refs to drop once the current update is done (see `drain`).
  std::vector<object_id> to_drop_;
  bool draining_ = false;
  // Something was queued since the last `take_dirty`.
  bool dirty_ = false;
  // Processes reported down.
  std::unordered_set<uint64_t> dead_;
  // Where borrowers listen (owners' addresses are in the borrow table).
  std::unordered_map<uint64_t, process_address> peers_;
};

} // namespace dref
