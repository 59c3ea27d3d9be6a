#include "checkpointer.hpp"

#include <algorithm>
#include <cstdio>

#include "caf/all.hpp"

#include "dref/actors/serialization.hpp"
#include "dref/persist/error.hpp"
#include "dref/persist/rocksdb_checkpoint_store.hpp"

namespace dref::internal {

namespace {

bool is_corrupt(const caf::error& err) {
  return err.category() == persist_category
         && err.code() == static_cast<uint8_t>(persist_errc::checkpoint_corrupt);
}

} // namespace

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

std::string checkpointer::encode_meta(const std::string& cls) {
  return "dref-meta 1\nclass " + cls + "\n";
}

std::string checkpointer::decode_meta(const std::string& value) {
  static const std::string head = "dref-meta 1\nclass ";
  if (value.size() <= head.size() || value.compare(0, head.size(), head) != 0
      || value.back() != '\n')
    return {};
  return value.substr(head.size(), value.size() - head.size() - 1);
}

caf::expected<checkpointer::found>
checkpointer::load(const std::string& name) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto err = open())
    return err;
  return load_locked(name);
}

caf::expected<checkpointer::found>
checkpointer::load_locked(const std::string& name) {
  found result;
  caf::error corrupt;
  for (auto cf : {column_family::actor_state, column_family::actor_state_alt}) {
    auto bytes = store_->read(cf, name);
    if (!bytes) {
      if (!is_corrupt(bytes.error()))
        return std::move(bytes.error());
      corrupt = make_error(persist_errc::checkpoint_corrupt,
                           "checkpoint of actor '" + name
                             + "': " + caf::to_string(bytes.error()));
      continue;
    }
    if (!*bytes)
      continue;
    auto cp = record_codec::decode(name, **bytes);
    if (!cp) {
      if (!is_corrupt(cp.error()))
        return std::move(cp.error()); // incompatible_state: stop
      corrupt = std::move(cp.error());
      continue;
    }
    if (!result.cp || cp->version > result.cp->version)
      result.cp = std::move(*cp);
  }
  if (corrupt) {
    if (!result.cp)
      return corrupt;
    result.fell_back = std::move(corrupt);
  }
  auto meta = store_->read(column_family::actor_meta, name);
  if (!meta)
    return std::move(meta.error());
  if (*meta) {
    result.cls = decode_meta(**meta);
    if (result.cls.empty())
      return make_error(persist_errc::checkpoint_corrupt,
                        "metadata of actor '" + name + "' is unreadable");
    meta_written_.insert(name);
  }
  auto& v = versions_[name];
  v = std::max(v, result.cp ? result.cp->version : 0);
  return result;
}

caf::error checkpointer::write(std::vector<task_result>& results,
                               const std::map<std::string, std::string>& classes) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (store_ == nullptr)
    return caf::none;
  write_batch batch;
  std::vector<std::string> new_meta;
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
    batch.put(slot(cp.version), cp.actor, record_codec::encode(cp));
    if (meta_written_.count(r.durable) == 0) {
      auto c = classes.find(r.durable);
      if (c != classes.end()) {
        batch.put(column_family::actor_meta, r.durable, encode_meta(c->second));
        new_meta.push_back(r.durable);
      }
    }
  }
  if (batch.empty())
    return caf::none;
  // One synced write for every durable call in this batch.
  auto err = store_->write(batch);
  if (!err) {
    meta_written_.insert(new_meta.begin(), new_meta.end());
    return caf::none;
  }
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
  auto cp = load_locked(name);
  if (!cp)
    return std::move(cp.error());
  if (!cp->cp)
    return std::shared_ptr<const task_spec>{};
  if (cp->fell_back)
    std::fprintf(stderr, "dref: %s; restoring version %llu instead\n",
                 caf::to_string(cp->fell_back).c_str(),
                 static_cast<unsigned long long>(cp->cp->version));
  auto t = std::make_shared<task_spec>();
  t->kind = static_cast<uint8_t>(task_kind::actor_restore);
  t->name = cls;
  t->actor = id;
  t->durable = name;
  t->result_type = type_tag<unit_t>();
  t->args = restore_args(*cp->cp);
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
