#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <typeinfo>
#include <unordered_map>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/typed_response_promise.hpp"

#include "checkpointer.hpp"
#include "dispatcher.hpp"
#include "messages.hpp"
#include "worker_pool.hpp"

#include "dref/actors/runtime.hpp"
#include "dref/persist/checkpoint_store.hpp"
#include "dref/refs/borrow_table.hpp"
#include "dref/refs/ownership_table.hpp"
#include "dref/refs/transit_holds.hpp"
#include "dref/store/buffer.hpp"
#include "dref/store/node_store.hpp"
#include "dref/store/transfer_server.hpp"

namespace dref::internal {

class exit_cleanup;

/// A connected worker as the owner knows it.
struct worker_conn {
  worker_id id = 0;
  int pid = 0;
  uint16_t port = 0;
  uint64_t process = 0; // the worker's id as an owner
  executor_actor executor;
  store_actor store;
  caf::actor echo;
};

/// The state behind `runtime`: the owner of every object the driver's calls
/// create, the connection to the workers, and the worker processes.
///
/// Threads: user threads (calls, gets, ref copies) and the owner actor (a
/// scheduled CAF actor: registrations, results, worker deaths) share the
/// bookkeeping below under `mtx_`. Sends to workers happen in `flush`, one
/// flush at a time (`flush_mtx_`), so each worker receives its tasks in the
/// order the dispatcher decided.
///
/// Lifetime: owned by `runtime` and by every ref and actor handle (through
/// `shared_ptr`); `stop` ends the actor system and the processes, after
/// which the remaining refs only update the table.
class runtime_impl : public ref_context,
                     public std::enable_shared_from_this<runtime_impl> {
public:
  explicit runtime_impl(config cfg);
  ~runtime_impl() override;

  // Starts the system, the owner actor and the workers (blocking).
  void start();

  // Stops everything (blocking, bounded).
  void stop();

  // -- ref_context ------------------------------------------------------------

  void add_local_ref(const object_id& id) noexcept override;
  void remove_local_ref(const object_id& id) noexcept override;
  void describe(const object_id& id, ref_descriptor& out) const override;
  void adopt(const ref_descriptor& d) noexcept override;
  void hold_for_transit(const ref_base& x, ref_descriptor& out) override;

  // -- API --------------------------------------------------------------------

  ref_base submit(task_spec spec, const void* call_site);
  ref_base submit_durable(task_spec create, const void* call_site,
                          const checkpoint_policy& policy);
  // Spawn by name (docs/architecture.md, "Durable actors" step 1): waits
  // until no earlier instance of the name has calls left, checks the class
  // recorded for it, then submits a restore from its newest good checkpoint
  // or, without one, `create` (or `unknown_actor` with `must_exist`).
  caf::expected<ref_base> spawn_durable(task_spec create,
                                        const void* call_site,
                                        bool must_exist,
                                        const checkpoint_policy& policy);
  caf::expected<std::shared_ptr<void>>
  durable_actor(const std::string& name, const std::type_info& type,
                const std::function<caf::expected<std::shared_ptr<void>>()>&
                  make);
  ref_base failed_ref(caf::error err);
  ref_base put_blob(blob value, const void* call_site,
                    std::vector<ref_base>&& refs);
  // The value's bytes: a view of the owner's copy, of the node store's
  // mapping (no copy), or of a copy fetched from a worker.
  caf::expected<buffer> get_blob(const ref_base& x, caf::timespan timeout);

  /// The copy of `id` a durable actor's checkpoint keeps, as a value whose
  /// `contained` names ids only ("Refs in durable state"). Errors:
  /// `object_lost` when no checkpoint keeps it, the store's read errors.
  caf::expected<value_msg> kept_copy(const object_id& id);

  /// Number of values durable checkpoints keep (tests, leak checks).
  size_t kept_values();
  // Where the node store's files are (see `runtime::node_store_prefix`).
  std::string node_store_prefix() const;
  std::vector<bool> wait_ids(const std::vector<const ref_base*>& xs, size_t n,
                             caf::timespan timeout);
  uint64_t next_actor_id() {
    return next_actor_++;
  }
  void destroy_actor(uint64_t actor, const std::string& cls);
  std::vector<worker_info> workers() const;
  caf::expected<runtime_stats> stats(caf::timespan timeout);
  caf::expected<memory_report> memory(caf::timespan timeout);
  // The owner's own listing (any thread).
  process_memory own_memory() const;
  // Store ports of the live workers.
  std::vector<uint16_t> worker_ports() const;
  caf::actor owner_handle() const;

  bool running() const {
    return running_;
  }
  caf::error status() const;
  caf::actor_system& system() {
    return *sys_;
  }

  // -- owner actor callbacks (run in the owner actor) ------------------------

  caf::error on_register(const worker_registration& reg);
  void on_results(worker_id w, std::vector<task_result>& results);
  void on_worker_down(const caf::actor_addr& who);
  // A replacement worker `pid` should have registered by now.
  void on_start_deadline(int pid);
  // Writes the pending checkpoints of time policies that are due.
  void on_checkpoint_timer();
  // `node_ok`: the requester reads the node store itself (a worker), so a
  // value there is answered without its bytes (`value_msg::in_node_store`).
  void on_get(const object_id& id, caf::typed_response_promise<value_msg> rp,
              bool node_ok);
  // Answers `rp` from the value of `id` (pending objects: later).
  void answer(const object_id& id, caf::typed_response_promise<value_msg> rp,
              bool node_ok);
  // Borrowing, step 2 at the owner: a borrower registers.
  std::vector<object_id> on_borrow(const std::vector<object_id>& ids,
                                   uint64_t borrower, const caf::actor& handle);
  // Borrowing, step 4 at the owner: a borrower releases.
  void on_release(const std::vector<object_id>& ids, uint64_t borrower);
  // A receiver of refs sent in plain CAF messages is registered: let go of
  // the transit holds `tokens`.
  void release_holds(const std::vector<uint64_t>& tokens);
  // Borrowing, step 2 at this borrower: sends the registration of `ids`
  // (owned by `owner`) and counts it done when the owner answers.
  void send_registration(uint64_t owner, std::vector<object_id> ids);

  // Sends queued tasks to the workers, each batch carrying the frees queued
  // for its worker; with `all_frees`, frees for the other workers too.
  void flush(bool all_frees = false);

  // The owner actor's behavior.
  static owner_actor::behavior_type owner_fn(owner_actor::pointer self,
                                             runtime_impl* rt);

private:
  object_id make_id() {
    return object_id{owner_id_, next_seq_++};
  }
  // @pre mtx_ held. Applies a dispatcher step; ids whose state changed are
  // appended to `changed`.
  void apply(dispatch_result& res, std::vector<object_id>* changed);
  // @pre mtx_ held. When no worker exists and none is starting, fails held
  // tasks and makes new ones fail at once.
  void check_capacity(std::vector<object_id>& changed);
  // @pre mtx_ held. Applies `res`, then retries held tasks until nothing
  // changes.
  void settle(dispatch_result& res, std::vector<object_id>& changed);
  // @pre mtx_ held. Makes sure a flush follows.
  void schedule_flush();
  // @pre mtx_ held. Makes sure queued frees are sent soon: at once when
  // many are queued, else within `free_delay` (unless a task batch for the
  // same worker carries them first).
  void schedule_free_flush();
  // @pre mtx_ held. Called by the table for each freed object.
  void on_free(const object_id& id, object_entry&& entry);
  // @pre mtx_ held. One local ref less on a borrowed object; the last one
  // queues a release for its owner.
  void drop_borrow(const object_id& id);
  // @pre mtx_ held; `id` was just borrowed anew. If a release of an earlier
  // borrow still waits in the queue, cancels it and marks the borrow
  // registered (the owner never stopped counting this process).
  bool revive_borrow(const object_id& id);
  // @pre mtx_ held. Counts one local ref per contained ref of a value held
  // here (`outer`); new borrows are added to `todo` for registration.
  void hold_contained(const object_id& outer,
                      const std::vector<ref_descriptor>& ds,
                      std::map<uint64_t, std::vector<object_id>>& todo);
  // @pre mtx_ held. Counts the registrations in `todo` as under way.
  void count_registrations(
    const std::map<uint64_t, std::vector<object_id>>& todo);
  // @pre mtx_ held. Descriptors of the refs inside the value of `id`.
  std::vector<ref_descriptor> contained_of(const object_id& id) const;
  // @pre mtx_ held. The ref server of process `owner` (a worker), if known.
  caf::actor ref_server_of(uint64_t owner) const;
  // Delivers answers to `get` requests waiting for `ids` (owner actor only).
  void deliver_waiters(const std::vector<object_id>& ids);
  caf::expected<int> launch_worker(worker_id id);
  // Opens the node store and its transfer server (start).
  caf::error open_node_store();
  // The node store while the runtime runs, else null (any thread).
  std::shared_ptr<node_store> node() const;
  // A view of `id` in the node store this process hosts (a process that
  // was asked answered "in the node store"). Errors: the owner's death
  // (`owner_died`, when the owner is known dead: its objects were freed),
  // `object_lost`, `runtime_down`. Takes mtx_ only on failure.
  caf::expected<buffer> read_node_copy(const object_id& id);
  // Frees `ids` in the node store (without mtx_).
  void free_in_node(const std::vector<object_id>& ids);
  caf::error runtime_down_error() const;

  config cfg_;
  uint64_t owner_id_;
  std::atomic<uint64_t> next_seq_{1};
  std::atomic<uint64_t> next_actor_{1};
  std::atomic<worker_id> next_worker_{1};
  std::unique_ptr<caf::actor_system_config> caf_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  owner_actor owner_;
  uint16_t port_ = 0;
  worker_pool pool_;
  std::string run_file_; // announces this driver to `dref memory`
  // Checkpoints of durable actors; the store opens on the first durable
  // spawn. Thread-safe on its own; lock order: mtx_ before its lock.
  std::unique_ptr<checkpointer> ckpt_;
  // Handle states of durable actors by name while a handle lives, so one
  // name has one instance per runtime. Lock order: durable_mtx_ before
  // mtx_ and the checkpointer's lock.
  struct durable_entry {
    const std::type_info* type = nullptr;
    std::weak_ptr<void> handle;
  };
  std::mutex durable_mtx_;
  std::map<std::string, durable_entry> durables_; // guarded by durable_mtx_
  // The node store this driver hosts for the local cluster, and its
  // transfer server (workers' zero-copy reads and in-place writes). Set in
  // `start`, closed in `stop` (which removes every file of the store).
  mutable std::mutex node_mtx_;
  std::shared_ptr<node_store> node_;                  // guarded by node_mtx_
  std::unique_ptr<transfer_server> node_server_;      // start/stop only
  std::string spill_dir_;         // made by this runtime if `own_spill_dir_`
  bool own_spill_dir_ = false;
  std::string node_prefix_;       // shm_dir + "/" + the store's file prefix
  // Removes the files above and the run file if the process is ended by
  // SIGINT or SIGTERM; held from `start` to the end of `stop`.
  std::unique_ptr<exit_cleanup> exit_cleanup_;
  // Tells `exit_cleanup_` the files this runtime has made so far (start).
  void update_exit_files();
  std::atomic<bool> running_{false};
  std::atomic<bool> stopped_{false};
  // Serializes starting replacement workers with `stop`.
  std::mutex launch_mtx_;
  // Replacement workers started and not yet registered (owner actor only).
  std::set<int> starting_;

  mutable std::mutex mtx_;
  std::condition_variable cv_;                           // signals mtx_ changes
  caf::error status_;                                    // guarded by mtx_
  ownership_table table_;                                // guarded by mtx_
  dispatcher dispatcher_;                                // guarded by mtx_
  std::map<worker_id, worker_conn> workers_;             // guarded by mtx_
  std::map<caf::actor_addr, worker_id> by_addr_;         // guarded by mtx_
  std::vector<std::pair<worker_id, task_spec>> outbox_;  // guarded by mtx_
  std::map<worker_id, std::vector<object_id>> frees_;    // guarded by mtx_
  // Objects to free in the node store (the next flush does it, without
  // mtx_).
  std::vector<object_id> node_frees_;                    // guarded by mtx_
  // Borrowing (see docs/architecture.md, "Borrowing"):
  borrow_table borrows_;                                 // guarded by mtx_
  borrower_set borrowers_;                               // guarded by mtx_
  // Refs inside the values this process holds: outer -> inner ids, each
  // counted once as a local ref.
  std::unordered_map<object_id, std::vector<object_id>> contained_; // mtx_
  // Releases waiting to be sent, per owner process.
  std::map<uint64_t, std::vector<object_id>> releases_;  // guarded by mtx_
  // Registrations sent and not answered, in all and per owner. While any
  // is under way, frees and releases wait (so none can overtake one).
  size_t registering_ = 0;                               // guarded by mtx_
  std::map<uint64_t, size_t> registering_by_;            // guarded by mtx_
  // Transit holds to release at their holder (by port) once no
  // registration is under way.
  std::map<uint16_t, std::vector<uint64_t>> hold_releases_; // mtx_
  // Monitored borrower processes: handle -> process id.
  std::map<caf::actor_addr, uint64_t> borrower_addrs_;   // guarded by mtx_
  bool flush_pending_ = false;                           // guarded by mtx_
  bool free_flush_pending_ = false;                      // guarded by mtx_
  size_t queued_frees_ = 0;                              // guarded by mtx_
  std::mutex flush_mtx_;
  // Refs this process sent in plain CAF messages, kept until their
  // receivers registered (thread-safe on its own).
  transit_holds transit_;
  // Drops expired transit holds (any thread, without mtx_).
  void expire_holds();

  // Owner actor only: when the checkpoint timer (ckpt_atom) fires next.
  std::optional<std::chrono::steady_clock::time_point> ckpt_timer_;
  // Owner actor only: arms the checkpoint timer for `due`.
  void arm_checkpoint_timer(
    const std::optional<std::chrono::steady_clock::time_point>& due);

  // Owner actor only: the actor itself, while it runs.
  owner_actor::pointer self_ = nullptr;
  // Owner actor only: promises of `get` requests for pending objects.
  std::unordered_map<
    object_id,
    std::vector<std::pair<caf::typed_response_promise<value_msg>, bool>>>
    waiters_;
  // Owner actor only: `get` requests forwarded to another process (the
  // owner of a borrowed object, or a worker holding an owned value), so
  // that the process's death answers them at once.
  struct forward {
    uint64_t process = 0; // the process asked
    bool owner = false;   // it owns the object (else: holds a copy)
    caf::typed_response_promise<value_msg> rp;
  };
  std::map<uint64_t, forward> forwarded_;
  // Owner actor only: sends `get_atom`/`fetch_atom` for `id` to `peer`
  // through `forwarded_`. A reply "in the node store" (a worker's value
  // sealed there) is passed on as is if `node_ok`, else with the bytes
  // copied from the store.
  void forward_get(const caf::actor& peer, uint64_t process, bool owner,
                   const object_id& id,
                   caf::typed_response_promise<value_msg> rp, bool node_ok);
  uint64_t next_token_ = 1;
};

} // namespace dref::internal
