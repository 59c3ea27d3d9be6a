#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_system.hpp"
#include "caf/expected.hpp"
#include "caf/timespan.hpp"

#include "core/node_access.hpp"
#include "core/peer_directory.hpp"

#include "dref/actors/memory.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/refs/ref.hpp"
#include "dref/refs/ref_core.hpp"
#include "dref/store/buffer.hpp"
#include "dref/store/local_store.hpp"

namespace dref::internal {

/// One process's refs, as every dref process runs them (the driver, each
/// worker): its `ref_core` behind one mutex, the sending of what the core
/// queues (through the process's ref server actor, `ref_server.hpp`), the
/// copies it keeps for other owners, and reading values with bounded waits.
/// Every `ref` of the process counts here (it is their `ref_context`).
///
/// Who may touch it: any thread. `mtx_` guards the core and the peers'
/// pending messages; no member blocks while holding it; callers that need
/// several core updates at once (the driver's submitter, whose dispatcher
/// shares the lock) take `mutex()` and use `core()`.
///
/// Policies (not copies of the protocol): `wait_for_registrations` makes a
/// read wait until the refs inside the value are registered with their
/// owners (a worker: its task results end the protections that covered the
/// refs, and results are not held back by the release barrier); the driver
/// does not wait (it never reports results, and its own protection-ending
/// messages wait behind the barrier), so its ref server never blocks.
///
/// Lifetime: made at process start, shared with every ref; `stop` ends the
/// background work before the actor system goes; afterwards the refs only
/// update the tables.
class process_refs : public ref_context,
                     public std::enable_shared_from_this<process_refs> {
public:
  struct settings {
    ref_core::settings core;
    /// See the class comment.
    bool wait_for_registrations = false;
    /// Bound on one request to another process (a registration, a read).
    caf::timespan fetch_timeout = std::chrono::seconds{30};
    /// How long queued releases and frees may wait to be sent in a batch
    /// (unless many are queued).
    caf::timespan send_delay = std::chrono::milliseconds{20};
    /// "driver" or "worker" (for `dref memory`).
    std::string role;
    /// This process's worker id (0: the driver).
    worker_id id = 0;
  };

  /// The copy of `id` a durable checkpoint keeps ("Refs in durable state").
  using kept_copy_fn = std::function<caf::expected<value_msg>(const object_id&)>;
  /// Which of `ids` a durable checkpoint keeps.
  using kept_ids_fn =
    std::function<std::vector<object_id>(const std::vector<object_id>&)>;
  /// The ref server of location `w` (a worker keeping copies), or null.
  /// Called with `mutex()` held.
  using location_fn = std::function<caf::actor(worker_id)>;

  process_refs(caf::actor_system& sys, settings cfg);
  ~process_refs() override;

  // -- set-up (before the first ref) ------------------------------------------

  /// Spawns the process's ref server (unpublished; publish `server()`).
  void start();
  /// The node store (null: none, e.g. after the runtime closed it).
  void set_node(std::shared_ptr<node_access> node);
  void set_kept_copies(kept_copy_fn copy, kept_ids_fn ids);
  void set_locations(location_fn f);

  /// Ends background work; drops transit and lingering holds.
  void stop();

  caf::actor server() const;
  caf::actor_system& system() noexcept {
    return sys_;
  }
  const settings& config() const noexcept {
    return cfg_;
  }
  const process_address& self() const noexcept {
    return cfg_.core.self;
  }
  /// Learns (or corrects) this process's published address (after publish).
  void set_port(uint16_t port);
  std::shared_ptr<node_access> node() const;
  peer_directory& peers() noexcept {
    return peers_;
  }

  // -- ref_context --------------------------------------------------------------

  void add_local_ref(const object_id& id) noexcept override;
  void remove_local_ref(const object_id& id) noexcept override;
  void describe(const object_id& id, ref_descriptor& out) const override;
  void adopt(const ref_descriptor& d) noexcept override;
  void hold_for_transit(const ref_base& x, ref_descriptor& out) override;

  // -- the core, for owner-side updates ----------------------------------------

  std::mutex& mutex() const noexcept {
    return mtx_;
  }
  /// @pre `mutex()` held.
  ref_core& core() noexcept {
    return core_;
  }
  const ref_core& core() const noexcept {
    return core_;
  }
  /// Signalled (under `mutex()`) when owned objects leave pending and when
  /// registrations end.
  std::condition_variable& changed() noexcept {
    return cv_;
  }
  /// The process `process` died: objects it owned fail with `why` here,
  /// and the copies this process keeps for it are dropped (nobody will
  /// free them). Not under `mutex()`.
  void process_gone(uint64_t process, caf::error why);

  /// Owned objects `ids` left pending: wakes blocked readers and answers
  /// the ref server's waiting gets. Not under `mutex()`.
  void ready(std::vector<object_id> ids);

  /// Makes sure what the core queued is sent: registrations at once, the
  /// rest within `send_delay` (at once with `now` or when many are queued).
  /// Any thread; not under `mutex()`.
  void schedule_send(bool now = false);

  /// Moves what the core may send now into `out` (the ref server sends
  /// it).
  void take(ref_outbox& out);

  /// After an update from outside (a message, a timer): frees the node
  /// copies the core queued and schedules what else it queued.
  void settle();

  /// Arms the ref server's timer for the next transit or lingering hold
  /// deadline.
  void arm_timer();

  /// The ref server of location `w` (through the resolver, under the lock).
  caf::actor location(worker_id w);

  /// Node copies of freed objects, freed now (not under `mutex()`).
  void free_in_node(std::vector<object_id>& ids);

  // -- copies kept for other owners --------------------------------------------

  local_store& copies() noexcept {
    return *copies_;
  }
  const std::shared_ptr<local_store>& copies_ptr() const noexcept {
    return copies_;
  }

  /// Keeps `obj` as the copy of `id` (a task's result); `refs` are the refs
  /// inside it (collected while serializing), whose counts the copy takes
  /// over. Returns their descriptors.
  std::vector<ref_descriptor> keep_copy(const object_id& id, stored_object obj,
                                        std::vector<ref_base>&& refs);

  /// The owner freed the copies `ids` (the ref server's `free_atom`).
  void drop_copies(const std::vector<object_id>& ids);

  /// The copy of `id` kept here: its bytes (or a view of the node store),
  /// its error, or nothing if none is kept.
  std::optional<caf::expected<buffer>> read_copy(const object_id& id);

  // -- holding and reading -----------------------------------------------------

  /// Counts one local ref for each of `ds` (appending its id to `held`)
  /// and registers new borrows; with `wait_for_registrations`, waits for
  /// the answers. Errors: `unknown_object` (the owner freed it), `object_lost`
  /// (its owner cannot be reached and no durable checkpoint keeps it),
  /// `timeout`; on error `*failed` (if given) names the ref that could not
  /// be held. An owner known dead is no error (a read says so).
  caf::error hold(const std::vector<ref_descriptor>& ds,
                  std::vector<object_id>& held, object_id* failed = nullptr);

  /// Drops the local refs `hold` counted.
  void unhold(std::vector<object_id>& held);

  /// The value of `x`, waiting at most `timeout`: an owned object's (its
  /// copy here, in the node store, or at a worker), a copy kept here, or a
  /// borrowed one from its owner; the refs inside are held in `held` until
  /// the caller unholds them (after reading them). Falls back to a durable
  /// checkpoint's copy when the owner or holder is gone. Errors: the
  /// object's own, `owner_died`, `object_lost`, `unknown_object`,
  /// `actors_errc::timeout`.
  /// Waits until at least `n` of `xs` are ready (their value or error is
  /// known) or `timeout` passed; which are. A ref this process does not own
  /// (borrowed, or of another runtime) counts as ready: reading it asks its
  /// owner. Not under `mutex()`; a wait of a task thread hands its slot on.
  std::vector<bool> wait_ready(const std::vector<const ref_base*>& xs,
                               size_t n, caf::timespan timeout);

  caf::expected<buffer> read(const ref_base& x, caf::timespan timeout,
                             std::vector<object_id>& held);

  /// The value of `id` from the process at `from`: its owner (`owner`:
  /// its death gives `owner_died`) or a process keeping a copy (its death
  /// gives `object_lost`). Falls back to a kept copy for an owner.
  caf::expected<buffer> fetch_from(const process_address& from, bool owner,
                                   const object_id& id,
                                   std::vector<object_id>& held);

  /// The value of `id`, which this process owns, waiting at most
  /// `timeout` while it is pending.
  caf::expected<buffer> read_own(const object_id& id, caf::timespan timeout);

  /// A zero-copy view of `id` in this node's store. Errors: the store's,
  /// `not_found` without a node store.
  caf::expected<buffer> read_node(const object_id& id);

  /// A durable checkpoint's copy of `id`, or an error (`object_lost`).
  caf::expected<value_msg> kept_copy(const object_id& id);

  /// Turns an "in the node store" answer into one with the bytes (a copy).
  caf::error with_bytes(const object_id& id, value_msg& v);

  // -- serving (the ref server) ------------------------------------------------

  /// How an owned object can be served now.
  struct serve_plan {
    enum kind_t { value, pending, at_location, error } kind = error;
    value_msg msg;          // value
    caf::actor location;    // at_location: the holder's ref server
    caf::error err;         // error
  };

  /// Plans the answer to a get of owned object `id`; `node_ok`: the reader
  /// maps the node store itself (another process on this node).
  serve_plan plan_get(const object_id& id, bool node_ok);

  /// The copy of `id` kept here, as a message (a value in the node store
  /// without its bytes).
  caf::expected<value_msg> serve_copy(const object_id& id);

  // -- introspection -----------------------------------------------------------

  /// Owned, borrowed and kept objects (`dref memory`).
  process_memory memory(worker_id id) const;

  /// Owned plus borrowed objects plus transit and lingering holds.
  size_t refs() const;

  /// Values held in this process: kept copies plus owned objects, and the
  /// bytes of those in its memory (not the node store's).
  std::pair<uint64_t, uint64_t> values() const;

  /// Registrations under way and messages waiting (for stats).
  size_t pending_registrations() const;
  size_t pending_releases() const;
  size_t transit_holds() const;

  /// True while the ref server waits for gets of pending objects.
  std::atomic<size_t>& waiting_gets() noexcept {
    return waiting_gets_;
  }

private:
  // @pre mtx_ held. True if queued messages should leave at once.
  bool urgent_locked() const;
  // Asks the ref server to send (at once, or within `send_delay`).
  void request_send(bool now);
  caf::expected<buffer> read_borrowed(const object_id& id,
                                      caf::timespan timeout,
                                      std::vector<object_id>& held);
  caf::expected<buffer> receive_value(const object_id& id,
                                      caf::expected<value_msg> reply,
                                      std::vector<object_id>& held,
                                      const caf::actor& owner);
  // Waits (bounded) until none of `tokens` is pending.
  void wait_registered(const std::vector<uint64_t>& tokens);
  caf::error check_held(const std::vector<object_id>& ids,
                        object_id* failed);

  caf::actor_system& sys_;
  settings cfg_;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  ref_core core_;                         // guarded by mtx_
  std::shared_ptr<local_store> copies_;  // thread-safe on its own
  std::shared_ptr<node_access> node_;    // atomic_load / atomic_store
  kept_copy_fn kept_copy_;               // set once before use
  kept_ids_fn kept_ids_;                 // set once before use
  location_fn locations_;                // set once before use
  peer_directory peers_;
  caf::actor server_;                    // set once at start
  std::atomic<bool> send_pending_{false};
  std::atomic<bool> send_soon_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<size_t> waiting_gets_{0};
};

} // namespace dref::internal
