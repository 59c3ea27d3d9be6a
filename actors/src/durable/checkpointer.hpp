#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/actors/config.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/persist/checkpoint_store.hpp"
#include "dref/persist/fault_injecting_store.hpp"
#include "dref/persist/kept_values.hpp"
#include "dref/persist/record_codec.hpp"

namespace dref::internal {

/// The owner's side of durable actors' storage: the checkpoint store
/// (RocksDB under `config::state_dir`, opened on the first durable spawn),
/// each actor's checkpoint version and slot, its class in `actor_meta`, the
/// write of a result batch's states, the pending states of actors with a
/// weaker checkpoint policy, and the restore tasks. Protocols: "Durable
/// actors", "Checkpoint policies", "Corrupt checkpoints" in
/// docs/architecture.md.
///
/// Threads: user threads (`load`, `set_policy`, at spawn), the owner actor
/// (`write`, `write_due`, `restore_task`) and `runtime_impl::stop`
/// (`write_all`) share it; `mtx_` guards every field but `writes_` and is
/// held during each store call (writes are serialized anyway).
/// Invariant: `versions_[name]` is at least the version of every checkpoint
/// of `name` on disk, so each write gets a new, higher version and goes to
/// the slot that does not hold the newest one.
/// Ownership: owned by `runtime_impl`; the store lives as long as it.
class checkpointer {
public:
  /// `dir`: the RocksDB directory. `hook`, when set (tests only, see
  /// `config::checkpoint_faults`), wraps the store in a
  /// `fault_injecting_store` and is called with it once it is open.
  checkpointer(std::string dir,
               std::function<void(fault_injecting_store&)> hook);

  ~checkpointer();

  /// What `load` found for one durable actor.
  struct found {
    /// The newest checkpoint that decodes; none when the actor has none.
    std::optional<checkpoint> cp;
    /// Set when a record of the actor is corrupt and `cp` is the other
    /// (previous) one: the `checkpoint_corrupt` error naming the actor.
    caf::error fell_back;
    /// The actor's class as recorded in `actor_meta`; empty if unknown
    /// (written before dref recorded classes).
    std::string cls;
  };

  /// Reads the newest good checkpoint of `name` and its class (opening the
  /// store on first use). Protocol (docs/architecture.md, "Corrupt
  /// checkpoints"): both slots are read; the newest record that decodes
  /// wins; a corrupt record is skipped when the other slot decodes (and
  /// reported in `fell_back`); with no good record but a corrupt one, the
  /// result is that `checkpoint_corrupt` error; `incompatible_state` and
  /// I/O errors are returned as they are.
  caf::expected<found> load(const std::string& name);

  /// Sets the checkpoint policy of durable actor `name` (default: every
  /// call).
  void set_policy(const std::string& name, const checkpoint_policy& policy);

  /// What a write did.
  struct outcome {
    /// The store's error, if the write failed.
    caf::error err;
    /// Actors whose results this write failed, with the reason: they must
    /// be rolled back. Every-call actors of a failed write (reason: `err`),
    /// and actors of any policy whose worker could not save a state
    /// (`task_result::refused`).
    std::map<std::string, caf::error> failed;
    /// Set when an actor with a time policy has an unwritten state: call
    /// `write_due` at this time.
    std::optional<std::chrono::steady_clock::time_point> next_due;
  };

  /// Makes the states carried by `results` (those with a durable name)
  /// durable in ONE synced write; each state goes to the slot its version
  /// selects, so the actor's previous checkpoint stays. `classes` maps the
  /// durable names to their class names, recorded in `actor_meta` with the
  /// first write of each actor.
  /// - Every-call actors: if the write fails, nothing was written and each
  ///   of their results in `results` becomes a failure with its error.
  /// - Actors with a weaker policy: the state is kept here and written only
  ///   when due (and always when the actor has no checkpoint yet); their
  ///   results never fail: a failed write leaves the state pending, to be
  ///   written at the next trigger.
  outcome write(std::vector<task_result>& results,
                const std::map<std::string, std::string>& classes);

  /// Writes the pending states whose time is due (time policies).
  outcome write_due();

  /// Writes every pending state (a clean stop).
  outcome write_all();

  /// The kept copy of `id` (a value some durable actor's state refers
  /// to), if a checkpoint keeps one: docs/architecture.md, "Refs in
  /// durable state". Reads nothing before the store was opened by a
  /// durable actor. Errors: the store's, `checkpoint_corrupt` naming the
  /// value.
  caf::expected<std::optional<kept_value>> kept_copy(const object_id& id);

  /// True if a checkpoint (or a pending state of a weaker policy) keeps a
  /// copy of `id`; reads nothing from disk.
  bool has_kept_copy(const object_id& id);

  /// Number of values the checkpoints keep (tests, `dref memory`).
  size_t kept_count();

  /// Store writes made so far.
  uint64_t writes() const {
    return writes_;
  }

  /// The column family that holds checkpoint `version` of an actor: odd
  /// versions `actor_state`, even ones `actor_state_alt`.
  static column_family slot(uint64_t version) {
    return version % 2 == 1 ? column_family::actor_state
                            : column_family::actor_state_alt;
  }

  /// The value recorded in `actor_meta` for an actor of class `cls`, and
  /// back (empty when `value` is not in this format).
  static std::string encode_meta(const std::string& cls);
  static std::string decode_meta(const std::string& value);

  /// The caller id of this driver's calls; set once, before any durable
  /// actor is spawned, and only read afterwards.
  void set_caller(std::string caller);
  const std::string& caller() const noexcept {
    return caller_;
  }

  /// The arguments of a restore task from `cp`: the state, and the
  /// sequence table stored with it, without the entries of earlier
  /// drivers (see `prune_callers`).
  static std::vector<task_arg> restore_args(const checkpoint& cp,
                                            const std::string& caller);

  /// Drops from `table` the entries of callers that are drivers other
  /// than `caller` ("driver-..." ids): a driver's calls are retried only
  /// by that driver during its run, so once another driver restores the
  /// actor those entries can never be used again, and without pruning the
  /// table (and each checkpoint) would grow by one entry and one kept
  /// reply per driver run. Other caller ids are kept.
  static void prune_callers(sequence_table& table, const std::string& caller);

  /// A restore task for actor `id` (class `cls`, durable name `name`) from
  /// its newest good checkpoint (as `load`); null when it has none; the
  /// read's error when it cannot be read.
  caf::expected<std::shared_ptr<const task_spec>>
  restore_task(uint64_t id, const std::string& cls, const std::string& name);

private:
  using clock_type = std::chrono::steady_clock;

  // An actor with a weaker policy: its newest state, kept until written.
  struct lazy_state {
    checkpoint_policy policy;
    uint64_t since = 0; // calls since the last write
    clock_type::time_point last_write;
    bool dirty = false;
    blob state;
    sequence_table table;
    std::string cls;
    // The ids the newest state refers to, and every value sent since the
    // last write (the newest state may list one sent with an older one).
    std::vector<object_id> kept;
    std::map<object_id, kept_ref_value> values;
  };

  // The values sent with the results of one write, by id.
  using value_map = std::map<object_id, kept_ref_value>;

  // Opens the store on first use. @pre mtx_ held.
  caf::error open();
  // Adds the checkpoint of `name` (next version) to `batch`, with its
  // class in actor_meta when not written yet, and the values it refers to
  // that no checkpoint of `name` kept yet (from `values`); stages those in
  // `kept_`. Fails (adding nothing) when such a value was not sent.
  // @pre mtx_ held.
  caf::error add(write_batch& batch, const std::string& name,
                 const blob& state, const sequence_table& table,
                 const std::string& cls, const std::vector<object_id>& kept,
                 const value_map& values, std::vector<std::string>& new_meta);
  // Records what the decoded checkpoint `cp` of `name` lists. @pre mtx_.
  void note_kept(const std::string& name, const checkpoint& cp);
  // Reads again from disk what both checkpoints of `name` list (after a
  // failed write, whose effects may still have reached the disk).
  // @pre mtx_ held, store open.
  caf::error reload_view(const std::string& name);
  // Writes the dirty lazy states chosen by `pick`. @pre mtx_ held.
  template <class Pick>
  outcome write_lazy(Pick pick);
  // The next time a lazy state is due. @pre mtx_ held.
  std::optional<clock_type::time_point> next_due() const;
  // `load` without the lock. @pre mtx_ held, store open.
  caf::expected<found> load_locked(const std::string& name);

  std::string dir_;
  std::function<void(fault_injecting_store&)> hook_;
  std::string caller_; // set before the first durable spawn
  std::mutex mtx_;
  std::unique_ptr<checkpoint_store> inner_;       // guarded by mtx_
  std::unique_ptr<fault_injecting_store> faults_; // guarded by mtx_
  checkpoint_store* store_ = nullptr;             // guarded by mtx_
  std::map<std::string, uint64_t> versions_;      // guarded by mtx_
  std::set<std::string> meta_written_;            // guarded by mtx_
  std::map<std::string, lazy_state> lazy_;        // guarded by mtx_
  kept_values kept_;                              // guarded by mtx_
  std::set<std::string> stale_views_;             // guarded by mtx_
  std::atomic<uint64_t> writes_{0};
};

} // namespace dref::internal
