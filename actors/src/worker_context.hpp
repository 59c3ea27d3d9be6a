#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_addr.hpp"
#include "caf/fwd.hpp"

#include "dref/actors/config.hpp"
#include "dref/actors/memory.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/refs/borrow_table.hpp"
#include "dref/refs/ownership_table.hpp"
#include "dref/refs/ref.hpp"
#include "dref/refs/transit_holds.hpp"
#include "dref/store/buffer.hpp"
#include "dref/store/local_store.hpp"
#include "dref/store/node_client.hpp"

namespace dref::internal {

/// A worker process's refs: the objects its tasks `put` (it owns them),
/// the objects it borrows from the driver and from other workers, and the
/// refs contained in the values its store holds.
///
/// Who touches it: the executor (tasks, holds, results), task code (ref
/// copies, `dref::put`/`dref::get`), and the store actor (serving values,
/// borrow and release requests from other processes, frees). Every member
/// function locks `mtx_`; none blocks while holding it.
///
/// Invariants: every ref this process holds is counted once, in `own_`
/// (objects it owns) or in `borrows_` (objects owned elsewhere); a value in
/// the store that contains refs counts one local ref per contained ref
/// (`contained_`), released when the value is erased. An owned object whose
/// slot is `in_node_store` has exactly one primary copy in the node store,
/// freed when `own_` frees the object (queued in `node_frees_` under
/// `mtx_`, sent by the same call after it releases `mtx_`) or, if this
/// process dies, by the driver (`node_store::free_owned_by`).
///
/// Lifetime: made by `run_worker`, shared with every ref it hands out; it
/// outlives the actor system only as a counter (sends then go nowhere).
class worker_context : public ref_context,
                       public std::enable_shared_from_this<worker_context> {
public:
  worker_context(caf::actor_system& sys, worker_id id, uint64_t process,
                 config cfg, std::shared_ptr<local_store> store);

  /// The worker's ref server (its store actor) and its port.
  void set_server(caf::actor server, uint16_t port);

  /// The driver's ref server (its owner actor).
  void set_driver(caf::actor driver, std::string host, uint16_t port);

  /// The node store this worker writes large results into and reads
  /// arguments from (set once at start, before any task runs).
  void set_node(node_client node);

  /// True if this worker is connected to the node store.
  bool has_node() const noexcept {
    return node_.has_value();
  }

  uint64_t process() const noexcept {
    return process_;
  }

  /// A fresh id owned by this worker process (also for node-store segments
  /// that task code fills before the final id of their value is known).
  object_id new_object_id() noexcept {
    return object_id{process_, next_seq_++};
  }

  /// This worker's settings.
  const config& settings() const noexcept {
    return cfg_;
  }

  // -- ref_context -------------------------------------------------------------

  void add_local_ref(const object_id& id) noexcept override;
  void remove_local_ref(const object_id& id) noexcept override;
  void describe(const object_id& id, ref_descriptor& out) const override;
  void adopt(const ref_descriptor& d) noexcept override;
  void hold_for_transit(const ref_base& x, ref_descriptor& out) override;

  /// Receivers of refs this worker sent in plain CAF messages registered:
  /// let go of the transit holds `tokens`.
  void release_holds(const std::vector<uint64_t>& tokens);

  /// The worker is stopping: drops transit holds, no more background work.
  void stop();

  caf::actor_system& system() noexcept {
    return sys_;
  }

  // -- task side ---------------------------------------------------------------

  /// Borrowing, steps 1-2 at a receiver: counts one local ref for each of
  /// `ds` (appending its id to `held`) and registers new borrows with their
  /// owners, waiting for the answers. An owner proven dead is no error (a
  /// get decides later). Errors: `unknown_object` (the owner freed it),
  /// `object_lost` (the owner cannot be reached and no durable checkpoint
  /// keeps the value), `timeout`; on error `*failed` (if given) names the
  /// ref that could not be held.
  caf::error hold(const std::vector<ref_descriptor>& ds,
                  std::vector<object_id>& held, object_id* failed = nullptr);

  /// Drops the local refs `hold` counted.
  void unhold(std::vector<object_id>& held);

  /// Stores the value of object `id` (bytes, or a node-store slot); `refs`
  /// are the refs it contains (collected while serializing it), whose counts
  /// the stored copy takes over. Returns their descriptors.
  std::vector<ref_descriptor> store(const object_id& id, stored_object obj,
                                    std::vector<ref_base>&& refs);

  /// Writes `bytes` into the node store as object `id` (create, copy,
  /// seal). Errors: the node store's (`store_full`, `transfer_failed`, ...),
  /// or `invalid_argument` without a node store.
  caf::error put_in_node(const object_id& id, const blob& bytes);

  /// Starts writing `size` bytes of object `id` in place in the node store.
  caf::expected<node_client::writer> create_in_node(const object_id& id,
                                                    uint64_t size);

  /// Deletes `id` from the node store (a result written there whose task
  /// then failed).
  void free_in_node(const object_id& id);

  /// A zero-copy view of `id` in the node store. Errors: `not_found`, the
  /// store's restore errors, `transfer_failed`, `invalid_argument` without
  /// a node store.
  caf::expected<buffer> read_node(const object_id& id);

  /// The value of `id` in this worker's own store: its bytes (a heap copy or
  /// a view of the node store), its error, or nothing if not held here.
  std::optional<caf::expected<buffer>> read_local(const object_id& id);

  /// Stores the failure of the task that should have made `id`.
  void store_error(const object_id& id, caf::error err);

  /// A new object `id` (from `new_object_id`) owned by this worker,
  /// holding `value` (for `dref::put`). Above `inline_limit` (with a node
  /// store, and `try_node`) the value is sealed once in the node store as
  /// this worker's primary copy and the slot keeps no bytes; a refusal
  /// (`store_full`, ...) keeps it in the heap instead.
  ref_base put(const object_id& id, blob value, std::vector<ref_base>&& refs,
               bool try_node = true);

  /// A new object `id` owned by this worker whose `size` bytes were
  /// serialized (or filled by a `buffer_writer`) straight into the node
  /// store and sealed there under `id` (for `dref::put`).
  ref_base put_sealed(const object_id& id, uint64_t size,
                      std::vector<ref_base>&& refs);

  /// Results larger than this many serialized bytes go to the node store.
  size_t inline_limit() const noexcept {
    return cfg_.inline_limit;
  }

  /// The value of `x` for task code, fetched from its owner when needed;
  /// the refs inside it are held (in `held`) until the caller unholds them.
  caf::expected<buffer>
  get(const ref_base& x, caf::timespan timeout, std::vector<object_id>& held);

  /// The value of `id` from the store of worker `w` at `port`, with the
  /// refs inside it held (in `held`). `w == 0`: the process at `port` is
  /// the object's owner (its death gives `owner_died`, else `object_lost`).
  caf::expected<buffer>
  fetch_from(worker_id w, uint16_t port, const object_id& id,
             std::vector<object_id>& held);

  /// Refs in durable state: the value of `id` with the refs inside it, to
  /// be kept with a checkpoint: from this worker's store, from its owner
  /// (ref server at `port`; 0: the one its borrow names), else from a copy
  /// an earlier checkpoint kept. Errors: the object's own (its task
  /// failed), or a fetch failure (`is_fetch_failure`) when none has it.
  caf::expected<value_msg> value_to_keep(const object_id& id, uint16_t port);

  /// The copy of `id` a durable actor's checkpoint keeps, asked from the
  /// driver (`contained` names ids only). Errors: `object_lost` when no
  /// checkpoint keeps it, the driver's read errors.
  caf::expected<value_msg> kept_copy(const object_id& id);

  // -- server side (store actor) ---------------------------------------------

  /// A stored value with the descriptors of the refs inside it. A value
  /// sealed in the node store is answered without its bytes
  /// (`value_msg::in_node_store`): every process asking is on this node and
  /// maps it itself (`receive_value`, the driver's `get_blob` and
  /// `forward_get`); a caller that needs the bytes (a checkpoint) copies
  /// them with `with_bytes`.
  caf::expected<value_msg> serve(const object_id& id);

  /// Borrowing, step 2 at the owner: records `borrower` for each of `ids`
  /// this worker owns; returns the unknown ones. `monitor` is set when
  /// `handle` is new (the caller monitors it).
  std::vector<object_id> on_borrow(const std::vector<object_id>& ids,
                                   uint64_t borrower, const caf::actor& handle,
                                   bool& monitor);

  /// Borrowing, step 4 at the owner.
  void on_release(const std::vector<object_id>& ids, uint64_t borrower);

  /// A monitored borrower process is gone: its borrows end.
  void on_down(const caf::actor_addr& who);

  /// The driver frees `ids` (their owner decided so).
  void free_stored(const std::vector<object_id>& ids);

  /// Objects owned, borrowed and stored here (`dref memory`).
  process_memory memory(worker_id id) const;

  /// Owned plus borrowed objects plus transit holds (for stats and leak
  /// checks); drops expired transit holds first.
  size_t refs();

private:
  // Registers a put's object `id` as owned and ready, with the one local
  // ref the returned ref adopts; its slot takes over the refs inside.
  ref_base adopt_put(const object_id& id, stored_object obj,
                     std::vector<ref_base>&& refs);

  // @pre mtx_ held. Called by `own_` for each freed object.
  void on_free(const object_id& id, object_entry&& e);
  // @pre mtx_ held. Drops the contained refs of a value being erased.
  void drop_contained(const object_id& id);
  // @pre mtx_ held. One local ref less on a borrowed object.
  void drop_borrow(const object_id& id);
  // @pre mtx_ held. The ref server of `owner`, if connected.
  caf::actor peer_of(uint64_t owner) const;
  // The ref server at `port` (connects once; blocking, without mtx_).
  caf::actor connect(uint16_t port);
  // `get` of a borrowed object: from its owner.
  caf::expected<buffer> get_from_owner(const object_id& id,
                                       caf::timespan timeout,
                                       std::vector<object_id>& held);
  // `fetch_from` without the fallback to a kept copy.
  caf::expected<buffer> fetch_once(worker_id w, uint16_t port,
                                   const object_id& id,
                                   std::vector<object_id>& held);
  // A fetched value: holds the refs inside it, maps it if the reply says
  // "in the node store". `owner`: the process asked owns the object; if
  // the mapping fails it is asked again, so that a dead owner (whose
  // objects the driver freed from the store) gives `owner_died`.
  caf::expected<buffer> receive_value(const object_id& id,
                                      caf::expected<value_msg> reply,
                                      std::vector<object_id>& held,
                                      const caf::actor& owner = {});
  // Turns an "in the node store" reply into one with the bytes (a copy).
  // Errors: `object_lost` if the store no longer has it.
  caf::error with_bytes(const object_id& id, value_msg& v);
  // Frees `ids` in the node store (without mtx_); clears `ids`.
  void free_node_copies(std::vector<object_id>& ids);
  // Registers `id` with its owner (if `todo`) and then releases the
  // sender's transit hold described in `d`, on the registrar thread.
  void register_later(ref_descriptor d, bool todo);
  // The registrar thread: registrations that nobody waits for.
  void run_registrar();
  // Registers `ids` (owned by `owner`, ref server at `port`) and waits for
  // the answer; sends the releases that waited for it. Not under mtx_.
  caf::error register_now(uint64_t owner, uint16_t port,
                          const std::vector<object_id>& ids);
  void expire_holds();

  caf::actor_system& sys_;
  const worker_id id_;
  const uint64_t process_;
  const config cfg_;
  std::shared_ptr<local_store> store_;
  // Set once by `set_node` before tasks run; node_client is thread-safe.
  std::optional<node_client> node_;
  std::atomic<uint64_t> next_seq_{1};

  mutable std::mutex mtx_;
  caf::actor server_;                                   // guarded by mtx_
  uint16_t port_ = 0;                                   // guarded by mtx_
  caf::actor driver_;                                   // guarded by mtx_
  uint16_t driver_port_ = 0;                            // guarded by mtx_
  std::string driver_host_;                             // guarded by mtx_
  ownership_table own_;                                 // guarded by mtx_
  borrow_table borrows_;                                // guarded by mtx_
  borrower_set borrowers_;                              // guarded by mtx_
  std::unordered_map<object_id, std::vector<object_id>> contained_; // mtx_
  // Owned objects just freed whose node-store copy must go; drained by the
  // call that freed them, after it releases mtx_ (guarded by mtx_).
  std::vector<object_id> node_frees_;
  std::unordered_map<uint16_t, caf::actor> peers_;      // guarded by mtx_
  std::unordered_map<caf::actor_addr, uint64_t> borrower_addrs_; // mtx_
  // Refs this worker sent in plain CAF messages (see runtime_impl).
  transit_holds transit_;
  std::atomic<bool> stopped_{false};
  // Borrows dropped while their registration was under way: released once
  // the owner answered (a release must never overtake its registration).
  std::unordered_set<object_id> release_after_registration_; // mtx_
  // The registrar thread and its queue (guarded by reg_mtx_).
  std::mutex reg_mtx_;
  std::condition_variable reg_cv_;
  std::deque<std::pair<ref_descriptor, bool>> reg_queue_;
  std::thread registrar_;
};

} // namespace dref::internal
