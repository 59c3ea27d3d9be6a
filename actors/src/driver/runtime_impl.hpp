#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <typeinfo>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"

#include "core/process_refs.hpp"
#include "durable/checkpointer.hpp"
#include "node/node_host.hpp"
#include "node/signal_cleanup.hpp"
#include "node/worker_pool.hpp"
#include "submit/dispatcher.hpp"
#include "wire/interfaces.hpp"

#include "dref/actors/runtime.hpp"

namespace dref::internal {

/// A connected worker as the driver knows it.
struct worker_conn {
  worker_id id = 0;
  int pid = 0;
  /// Its ref server and where it is published (its incarnation included).
  process_address address;
  ref_server_actor refs;
  executor_actor executor;
  worker_control_actor control;
  caf::actor echo;
};

/// The state behind `runtime`: the driver of a local cluster. It submits
/// the driver's calls (the dispatcher places them on workers), supervises
/// the worker processes, hosts the node store, coordinates durable actors,
/// and collects introspection. Its refs are counted and served by its
/// `process_refs`, the same ref layer every process runs.
///
/// Threads: user threads (calls, gets, ref copies) and the driver actor (a
/// scheduled CAF actor: registrations, results, worker deaths, timers)
/// share the dispatcher and the worker list under the ref layer's lock
/// (`refs_->mutex()`, which also guards the ownership table the dispatcher
/// reads). Sends to workers happen in `flush`, one flush at a time
/// (`flush_mtx_`), so each worker receives its tasks in the order the
/// dispatcher decided.
///
/// Lifetime: owned by `runtime` and by every actor handle (through
/// `shared_ptr`); refs hold the ref layer, which outlives `stop` as a
/// counter.
class runtime_impl : public std::enable_shared_from_this<runtime_impl> {
public:
  explicit runtime_impl(config cfg);
  ~runtime_impl();

  // Starts the system, the driver actor and the workers (blocking).
  void start();

  // Stops everything (blocking, bounded).
  void stop();

  const std::shared_ptr<process_refs>& refs() const noexcept {
    return refs_;
  }

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
  // The value's bytes (see `process_refs::read`); the refs inside a
  // borrowed value are held in `held` until the caller read them.
  caf::expected<buffer> get_blob(const ref_base& x, caf::timespan timeout,
                                 std::vector<object_id>& held);

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
  // Store ports of the live workers' ref servers.
  std::vector<uint16_t> worker_ports() const;

  bool running() const {
    return running_;
  }
  caf::error status() const;
  caf::actor_system& system() {
    return *sys_;
  }

  // -- driver actor callbacks (run in the driver actor) -----------------------

  caf::error on_register(const worker_registration& reg);
  void on_results(worker_id w, std::vector<task_result>& results);
  // Tasks a worker's task called: the worker owns their results.
  void on_submit(worker_id from, std::vector<task_spec>& specs);
  void on_worker_down(const caf::actor_addr& who);
  // A replacement worker `pid` should have registered by now.
  void on_start_deadline(int pid);
  // Writes the pending checkpoints of time policies that are due.
  void on_checkpoint_timer();

  // Sends queued tasks to the workers, each batch carrying the frees the
  // ref layer queued for its worker.
  void flush();

  // The driver actor's behavior.
  static driver_actor::behavior_type driver_fn(driver_actor::pointer self,
                                               runtime_impl* rt);

private:
  object_id make_id() {
    return object_id{owner_id_, next_seq_++};
  }
  // @pre refs_->mutex() held. Applies a dispatcher step; ids whose state
  // changed are appended to `changed`.
  void apply(dispatch_result& res, std::vector<object_id>* changed);
  // @pre refs_->mutex() held. When no worker exists and none is starting,
  // fails held tasks and makes new ones fail at once.
  void check_capacity(std::vector<object_id>& changed);
  // @pre refs_->mutex() held. Applies `res`, then retries held tasks until
  // nothing changes.
  void settle(dispatch_result& res, std::vector<object_id>& changed);
  // @pre refs_->mutex() held. Makes sure a flush follows.
  void schedule_flush();
  // @pre refs_->mutex() held. Queues the result of a worker's task for its
  // owner (sent by the next `flush`); `where` keeps its copy.
  void forward_result(worker_id where, task_result r);
  // @pre refs_->mutex() held. Sends the queued results of workers' tasks.
  void send_forwards(
    std::map<uint64_t, std::map<worker_id, std::vector<task_result>>>& fw);
  // @pre refs_->mutex() held. The results of `results` classified
  // (rollback step 1): stale and unknown ones are dropped (their copies
  // freed); returns the durable ones (actor id, class, name).
  std::vector<std::tuple<uint64_t, std::string, std::string>>
  classify_results(worker_id w, std::vector<task_result>& results);
  // @pre refs_->mutex() held. Marks the objects of `results` ready or
  // failed (rollback steps 2-3 already done); `in_node` are those whose
  // bytes are in the node store.
  void complete_results(worker_id w, std::vector<task_result>& results,
                        const std::set<object_id>& in_node,
                        dispatch_result& out,
                        std::vector<object_id>& changed);
  caf::expected<int> launch_worker(worker_id id);
  caf::error runtime_down_error() const;
  void arm_checkpoint_timer(
    const std::optional<std::chrono::steady_clock::time_point>& due);
  // Tells the signal cleanup which files this runtime made now.
  void update_exit_files();
  // Kept copies for the ref layer's readers (worker gets ask the driver
  // actor, which calls these).
  std::vector<object_id> kept_ids(const std::vector<object_id>& ids);

  config cfg_;
  uint64_t owner_id_;
  std::atomic<uint64_t> next_seq_{1};
  std::atomic<uint64_t> next_actor_{1};
  std::atomic<worker_id> next_worker_{1};
  std::unique_ptr<caf::actor_system_config> caf_cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::shared_ptr<process_refs> refs_;
  driver_actor driver_;
  uint16_t driver_port_ = 0;
  worker_pool pool_;
  std::string run_file_; // announces this driver to `dref memory`
  // While it lives, SIGINT or SIGTERM removes this runtime's files
  // (node/signal_cleanup.hpp); from start to the end of stop.
  std::unique_ptr<exit_cleanup> exit_cleanup_;
  // Checkpoints of durable actors; the store opens on the first durable
  // spawn. Thread-safe on its own; lock order: refs_->mutex() before its
  // lock.
  std::unique_ptr<checkpointer> ckpt_;
  // Handle states of durable actors by name while a handle lives, so one
  // name has one instance per runtime. Lock order: durable_mtx_ before
  // refs_->mutex() and the checkpointer's lock.
  struct durable_entry {
    const std::type_info* type = nullptr;
    std::weak_ptr<void> handle;
  };
  std::mutex durable_mtx_;
  std::map<std::string, durable_entry> durables_; // guarded by durable_mtx_
  // The node store this driver hosts for the local cluster.
  node_host node_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopped_{false};
  // Serializes starting replacement workers with `stop`.
  std::mutex launch_mtx_;
  // Replacement workers started and not yet registered (driver actor only).
  std::set<int> starting_;

  // Guarded by refs_->mutex():
  caf::error status_;
  dispatcher dispatcher_;
  std::map<worker_id, worker_conn> workers_;
  std::map<caf::actor_addr, worker_id> by_addr_;
  std::vector<std::pair<worker_id, task_spec>> outbox_;
  // Results of workers' tasks for their owners: owner incarnation ->
  // worker keeping the copy -> results (sent by `flush`).
  std::map<uint64_t, std::map<worker_id, std::vector<task_result>>> forwards_;
  bool flush_pending_ = false;
  std::mutex flush_mtx_;

  // Driver actor only: when the checkpoint timer (ckpt_atom) fires next.
  std::optional<std::chrono::steady_clock::time_point> ckpt_timer_;
  // Driver actor only: the actor itself, while it runs.
  driver_actor::pointer self_ = nullptr;
};

} // namespace dref::internal
