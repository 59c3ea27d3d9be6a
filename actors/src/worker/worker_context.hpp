#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "caf/actor_system.hpp"
#include "caf/expected.hpp"

#include "core/process_refs.hpp"

#include "dref/actors/config.hpp"
#include "dref/actors/task_spec.hpp"
#include "dref/refs/ref.hpp"
#include "dref/store/node_client.hpp"

namespace dref::internal {

class task_pool;
class worker_calls;

/// What task code in a worker process reaches besides its refs: the
/// worker's settings, fresh object ids, writing into the node store, and
/// the objects its tasks `put` (the worker owns them, Ray-style).
///
/// Who touches it: the executor and task code (any thread); the refs it
/// makes count in the worker's `process_refs`, which serves them.
/// Lifetime: made by `run_worker`, shared with task code through the
/// process-wide current worker; outlives the actor system only as a
/// counter.
class worker_context {
public:
  worker_context(std::shared_ptr<process_refs> refs, worker_id id,
                 config cfg);
  ~worker_context();

  process_refs& refs() noexcept {
    return *refs_;
  }

  const std::shared_ptr<process_refs>& refs_ptr() const noexcept {
    return refs_;
  }

  worker_id id() const noexcept {
    return id_;
  }

  /// This worker's incarnation (the owner of the ids it makes).
  uint64_t process() const noexcept {
    return refs_->self().process;
  }

  const config& settings() const noexcept {
    return cfg_;
  }

  caf::actor_system& system() noexcept {
    return refs_->system();
  }

  /// A fresh id owned by this worker process (also for node-store segments
  /// that task code fills before the final id of their value is known).
  object_id new_object_id() noexcept {
    return object_id{process(), next_seq_++};
  }

  /// Results larger than this many serialized bytes go to the node store.
  size_t inline_limit() const noexcept {
    return cfg_.inline_limit;
  }

  /// The calls this worker's tasks make (set once at start, before any
  /// task runs; null until then).
  worker_calls* calls() const noexcept {
    return calls_.get();
  }

  void set_calls(std::unique_ptr<worker_calls> calls);

  /// The threads running this worker's tasks (null before the executor
  /// starts and after it ends).
  task_pool* pool() const noexcept {
    return pool_.load();
  }

  void set_pool(task_pool* pool) noexcept {
    pool_.store(pool);
  }

  // -- the node store ----------------------------------------------------------

  bool has_node() const noexcept;

  /// Writes `bytes` into the node store as object `id` (one copy).
  caf::error put_in_node(const object_id& id, const blob& bytes);

  /// Starts writing `size` bytes of object `id` in place in the node store.
  caf::expected<node_client::writer> create_in_node(const object_id& id,
                                                    uint64_t size);

  /// Deletes `id` from the node store (written, then its task failed).
  void free_in_node(const object_id& id);

  // -- objects this worker owns (`dref::put`) ----------------------------------

  /// A new object `id` (from `new_object_id`) owned by this worker,
  /// holding `value`. Above `inline_limit` (with a node store, and
  /// `try_node`) the value is sealed once in the node store as this
  /// worker's primary copy; a refusal (`store_full`, ...) keeps it in the
  /// heap instead. `refs` are the refs inside it (their counts move to the
  /// object).
  ref_base put(const object_id& id, blob value, std::vector<ref_base>&& refs,
               bool try_node = true);

  /// A new object `id` owned by this worker whose `size` bytes were
  /// serialized (or filled by a `buffer_writer`) straight into the node
  /// store and sealed there under `id`.
  ref_base put_sealed(const object_id& id, uint64_t size,
                      std::vector<ref_base>&& refs);

  // -- refs in durable state ---------------------------------------------------

  /// The value of `id` with the refs inside it, to be kept with a
  /// checkpoint: this worker's own (owned, or a copy), from `from` (its
  /// owner; invalid: the one its borrow names), else a copy an earlier
  /// checkpoint kept. Errors: the object's own (its task failed), or a
  /// fetch failure (`is_fetch_failure`) when none has it.
  caf::expected<value_msg> value_to_keep(const object_id& id,
                                         const process_address& from);

private:
  // Registers a put's object as owned and ready (value in the entry, or
  // at `node_location`), with the one local ref the returned ref adopts.
  ref_base own(const object_id& id, std::shared_ptr<const blob> value,
               uint64_t node_size, std::vector<ref_base>&& refs);

  std::shared_ptr<process_refs> refs_;
  const worker_id id_;
  const config cfg_;
  std::atomic<uint64_t> next_seq_{1};
  std::atomic<task_pool*> pool_{nullptr};
  std::unique_ptr<worker_calls> calls_;
};

} // namespace dref::internal
