#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "caf/error.hpp"
#include "caf/expected.hpp"

#include "dref/actors/task_spec.hpp"
#include "dref/persist/checkpoint_store.hpp"
#include "dref/persist/fault_injecting_store.hpp"
#include "dref/persist/record_codec.hpp"

namespace dref::internal {

/// The owner's side of durable actors' storage: the checkpoint store
/// (RocksDB under `config::state_dir`, opened on the first durable spawn),
/// each actor's checkpoint version, the write of a result batch's states,
/// and the restore tasks made from the latest checkpoints.
///
/// Threads: user threads (`load`, at spawn) and the owner actor (`write`,
/// `restore_task`) share it; `mtx_` guards the store and the versions and
/// is held during each store call (writes are serialized anyway: they come
/// from the owner actor, one result batch at a time).
/// Ownership: owned by `runtime_impl`; the store lives as long as it.
class checkpointer {
public:
  /// `dir`: the RocksDB directory. `hook`, when set (tests only, see
  /// `config::checkpoint_faults`), wraps the store in a
  /// `fault_injecting_store` and is called with it once it is open.
  checkpointer(std::string dir,
               std::function<void(fault_injecting_store&)> hook);

  ~checkpointer();

  /// Reads the latest checkpoint of `name` (opening the store on first
  /// use): an empty optional when it has none.
  caf::expected<std::optional<checkpoint>> load(const std::string& name);

  /// Makes the states carried by `results` (those with a durable name)
  /// durable in ONE synced write; a later state of the same actor in the
  /// batch wins. Returns the write's error; then nothing was written and
  /// every durable result in `results` is turned into a failure with it.
  caf::error write(std::vector<task_result>& results);

  /// The arguments of a restore task from `cp`: the state, and the
  /// sequence table stored with it.
  static std::vector<task_arg> restore_args(const checkpoint& cp);

  /// A restore task for actor `id` (class `cls`, durable name `name`) from
  /// its latest checkpoint; null when it has none; the read's error when it
  /// cannot be read.
  caf::expected<std::shared_ptr<const task_spec>>
  restore_task(uint64_t id, const std::string& cls, const std::string& name);

private:
  // Opens the store on first use. @pre mtx_ held.
  caf::error open();

  std::string dir_;
  std::function<void(fault_injecting_store&)> hook_;
  std::mutex mtx_;
  std::unique_ptr<checkpoint_store> inner_;       // guarded by mtx_
  std::unique_ptr<fault_injecting_store> faults_; // guarded by mtx_
  checkpoint_store* store_ = nullptr;             // guarded by mtx_
  std::map<std::string, uint64_t> versions_;      // guarded by mtx_
};

} // namespace dref::internal
