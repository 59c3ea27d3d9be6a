#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <tuple>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "caf/error.hpp"

#include "dref/actors/task_spec.hpp"
#include "dref/refs/ownership_table.hpp"

namespace dref::internal {

/// What one dispatcher step decided; the caller applies it.
struct dispatch_result {
  /// Tasks to send now, in order, with their ref arguments resolved.
  std::vector<std::pair<worker_id, task_spec>> sends;
  /// Tasks that failed at the owner: (result id, error).
  std::vector<std::pair<object_id, caf::error>> failures;
  /// Tasks that are over (completed or failed): the caller releases the
  /// submitted refs of their ref arguments.
  std::vector<std::shared_ptr<const task_spec>> finished;
};

/// Decides where and when each task runs. Plain synchronous class, guarded
/// by the runtime's mutex, unit-tested without processes.
///
/// Placement: an actor task goes to its actor's worker; a function task goes
/// to the worker that is producing one of its arguments (so chains stay on
/// one worker and read their arguments from its local store), else to the
/// worker holding its largest stored argument, else to the least-loaded one.
///
/// Holding: a task is sent only when every ref argument is ready, or pending
/// on the very worker the task goes to (that worker runs tasks in arrival
/// order, so the producer finishes first). A ready argument in the node store
/// (`node_location`) counts as held by every worker. Other tasks wait here,
/// and so do
/// all later calls of the same actor, keeping actor calls in submission
/// order. `retry_held` re-examines them after results arrive.
///
/// Invariant: every task is in exactly one of: held, in flight (sent and not
/// completed), or over (reported in `finished`).
class dispatcher {
public:
  /// Calls on durable actors are numbered per actor and carry `caller` as
  /// their caller id (docs/architecture.md, "Retries and the sequence
  /// table"). With `resend_durable_calls` (a test hook, see
  /// `config::test_resend_durable_calls`) each such call is sent twice in
  /// a row and the first report of it is dropped as stale, so the answer
  /// the owner takes is the retry's.
  void set_caller(std::string caller, bool resend_durable_calls = false);

  void add_worker(worker_id w, process_address address);

  /// The worker died: its in-flight tasks and the queued calls of its
  /// actors fail with `worker_died`; its actors are dead from now on, except
  /// durable actors listed in `restores` (actor id -> a restore task made
  /// from its latest checkpoint): each moves to another worker, where the
  /// restore runs first, then its calls that were in flight (in submission
  /// order: their effects were never made durable), then its queued calls.
  /// With no other worker left, such an actor waits for the next worker to
  /// `add_worker`, or dies in `fail_held` when none is coming.
  void remove_worker(
    worker_id w, dispatch_result& out,
    const std::map<uint64_t, std::shared_ptr<const task_spec>>& restores = {});

  /// Rolls durable actor `actor` back after a checkpoint write failed
  /// (docs/architecture.md, "Rollback after a failed write"), step 3:
  /// - with `restore` (a restore task made from its last good checkpoint):
  ///   its in-flight calls, which ran or will run on the state being
  ///   dropped, are taken back (their results from the worker will be
  ///   `stale`), and its queue becomes: `restore`, those calls in the order
  ///   they were sent, then the calls queued already. It stays on its
  ///   worker; nothing of it is sent before `restore`.
  /// - without (it has no good checkpoint, or it could not be read): the
  ///   actor dies with `err`: its in-flight and queued calls fail with
  ///   `err`, and its worker is told to drop the instance.
  void rollback(uint64_t actor, std::shared_ptr<const task_spec> restore,
                const caf::error& err, dispatch_result& out);

  /// True while an instance of the durable actor `name` exists here or a
  /// call of an earlier, destroyed one is still in flight.
  bool durable_busy(const std::string& name);

  /// How a result reported by a worker relates to the tasks in flight.
  enum class report {
    current, ///< the result of the task in flight: complete it
    stale,   ///< of a call a rollback took back: drop it (its re-run follows)
    unknown, ///< of no task in flight (its worker was declared dead, or its
             ///< actor died): free the worker's copy
  };

  /// Classifies the result `id` that worker `w` reported. A `stale` answer
  /// is given once per call taken back, so the re-run's result, which the
  /// worker reports later (it runs tasks in arrival order), is `current`.
  report classify(const object_id& id, worker_id w);

  /// The task in flight that makes `id`, if any.
  const task_spec* in_flight_task(const object_id& id) const;

  /// The durable actors living on worker `w`: (actor id, class name,
  /// durable name).
  std::vector<std::tuple<uint64_t, std::string, std::string>>
  durable_actors_on(worker_id w) const;

  /// Takes a new task.
  void submit(std::shared_ptr<const task_spec> t, const ownership_table& table,
              dispatch_result& out);

  /// The worker reported the result of `result`; returns false when the
  /// task is not in flight (e.g. its worker was already declared dead).
  bool completed(const object_id& result, dispatch_result& out);

  /// `n` workers are starting (replacements of dead ones) and expected to
  /// register soon. Meanwhile a function task with no argument pinning it
  /// elsewhere is held rather than queued behind a busy worker; it goes to
  /// the first worker that is idle or registers (`retry_held`), so a call
  /// made just after a death does not wait for a long task on a survivor.
  void set_starting(size_t n) {
    starting_ = n;
  }

  /// From now until the next `add_worker`, function tasks that find no
  /// worker fail with `err` instead of waiting (no worker is coming).
  void set_unavailable(caf::error err);

  /// Fails every held function task with `err`.
  void fail_held(const caf::error& err, dispatch_result& out);

  /// Re-examines held tasks after the table changed.
  void retry_held(const ownership_table& table, dispatch_result& out);

  /// The worker a pending object is being made on, if it is in flight.
  const worker_id* producer(const object_id& id) const;

  size_t in_flight() const noexcept {
    return in_flight_.size();
  }

  size_t held() const noexcept;

  size_t actors() const noexcept {
    return actors_.size();
  }

  size_t workers() const noexcept {
    return workers_.size();
  }

  /// Tasks in flight on worker `w`.
  size_t load(worker_id w) const;

private:
  enum class verdict { sent, hold, failed };

  struct worker_state {
    process_address address; // its ref server
    size_t load = 0;
  };

  // The worker of a durable actor whose worker died when no other was
  // left: it is placed on the next worker that registers.
  static constexpr worker_id no_worker = 0;

  struct actor_state {
    worker_id worker = no_worker;
    std::deque<std::shared_ptr<const task_spec>> queue;
    std::string cls;     // class name
    std::string durable; // durable name, empty for plain actors
  };

  struct flight {
    worker_id worker = 0;
    std::shared_ptr<const task_spec> spec;
    uint64_t seq = 0; // send order
  };

  verdict try_send(const std::shared_ptr<const task_spec>& t, worker_id target,
                   const ownership_table& table, dispatch_result& out);
  verdict try_function(const std::shared_ptr<const task_spec>& t,
                       const ownership_table& table, dispatch_result& out);
  verdict try_actor(const std::shared_ptr<const task_spec>& t,
                    const ownership_table& table, dispatch_result& out);
  void fail(const std::shared_ptr<const task_spec>& t, caf::error err,
            dispatch_result& out);
  void drain_actor(uint64_t actor, const ownership_table& table,
                   dispatch_result& out);
  worker_id least_loaded();
  // A durable actor's call with the next sequence number of its name.
  std::shared_ptr<const task_spec>
  numbered(const std::shared_ptr<const task_spec>& t, const actor_state& a);

  std::map<worker_id, worker_state> workers_;
  std::unordered_map<object_id, flight> in_flight_;
  std::deque<std::shared_ptr<const task_spec>> held_;
  std::unordered_map<uint64_t, actor_state> actors_;
  std::unordered_set<uint64_t> blocked_actors_; // actors with a queue
  std::unordered_map<uint64_t, caf::error> dead_actors_;
  // Results a worker will still report for calls a rollback took back:
  // (result id, worker) -> how many. Up in `rollback`, down in `classify`
  // (and dropped with the worker in `remove_worker`).
  std::map<std::pair<object_id, worker_id>, size_t> stale_;
  // Destroyed durable actors (id -> name) that may have calls in flight;
  // pruned by `durable_busy`.
  std::map<uint64_t, std::string> destroyed_durable_;
  size_t next_ = 0; // round-robin start among equally loaded workers
  uint64_t next_seq_ = 0; // counts sends
  caf::error unavailable_; // set while no worker exists or is coming
  std::string caller_;     // caller id of durable calls
  // Per durable name: the sequence numbers given out to `caller_`'s calls
  // (per name, not per instance: a later instance of the name restores the
  // table that holds the earlier instance's numbers).
  std::unordered_map<std::string, uint64_t> durable_calls_;
  bool resend_ = false;    // test hook: send durable calls twice
  size_t starting_ = 0;    // workers expected to register soon
};

} // namespace dref::internal
