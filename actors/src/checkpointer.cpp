#include "checkpointer.hpp"

#include "dref/actors/serialization.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

namespace dref::internal {

checkpointer::checkpointer(std::string dir,
                           std::function<void(fault_injecting_store&)> hook)
  : dir_(std::move(dir)), hook_(std::move(hook)) {
  // nop
}

checkpointer::~checkpointer() {
  faults_.reset(); // borrows inner_
  inner_.reset();
}

caf::error checkpointer::open() {
  if (store_ != nullptr)
    return caf::none;
  auto db = rocksdb_checkpoint_store::open(dir_);
  if (!db)
    return std::move(db.error());
  inner_ = std::move(*db);
  store_ = inner_.get();
  if (hook_) {
    faults_ = std::make_unique<fault_injecting_store>(*inner_);
    store_ = faults_.get();
    hook_(*faults_);
  }
  return caf::none;
}

caf::expected<std::optional<checkpoint>>
checkpointer::load(const std::string& name) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto err = open())
    return err;
  auto cp = read_checkpoint(*store_, name);
  if (cp)
    versions_[name] = *cp ? (*cp)->version : 0;
  return cp;
}

caf::error checkpointer::write(std::vector<task_result>& results) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (store_ == nullptr)
    return caf::none;
  write_batch batch;
  for (auto& r : results) {
    if (r.durable.empty())
      continue;
    checkpoint cp;
    cp.actor = r.durable;
    cp.version = ++versions_[r.durable];
    cp.state.assign(r.state.begin(), r.state.end());
    // The sequence table goes into the same record: one atomic write.
    cp.sequence_numbers = r.table.seqs;
    for (auto& [caller, reply] : r.table.replies)
      cp.replies.emplace(caller, std::string{reply.begin(), reply.end()});
    put_checkpoint(batch, cp); // a later state of the same actor wins
  }
  if (batch.empty())
    return caf::none;
  // One synced write for every durable call in this batch.
  auto err = store_->write(batch);
  if (!err)
    return caf::none;
  for (auto& r : results)
    if (!r.durable.empty()) {
      r.status = task_result::failed;
      r.error = err;
      r.value.clear();
    }
  return err;
}

caf::expected<std::shared_ptr<const task_spec>>
checkpointer::restore_task(uint64_t id, const std::string& cls,
                           const std::string& name) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto err = open())
    return err;
  auto cp = read_checkpoint(*store_, name);
  if (!cp)
    return std::move(cp.error());
  if (!*cp)
    return std::shared_ptr<const task_spec>{};
  auto t = std::make_shared<task_spec>();
  t->kind = static_cast<uint8_t>(task_kind::actor_restore);
  t->name = cls;
  t->actor = id;
  t->durable = name;
  t->result_type = type_tag<unit_t>();
  t->args = restore_args(**cp);
  return std::shared_ptr<const task_spec>{std::move(t)};
}

std::vector<task_arg> checkpointer::restore_args(const checkpoint& cp) {
  std::vector<task_arg> args(2);
  args[0].type = type_tag<blob>();
  args[0].value.assign(cp.state.begin(), cp.state.end());
  sequence_table table;
  table.seqs = cp.sequence_numbers;
  for (auto& [caller, reply] : cp.replies)
    table.replies.emplace(caller, blob{reply.begin(), reply.end()});
  args[1].type = type_tag<blob>();
  static_cast<void>(to_blob(table, args[1].value)); // plain maps: no error
  return args;
}

} // namespace dref::internal
