#include "durable/checkpointer.hpp"

#include <algorithm>
#include <cstdio>

#include "caf/all.hpp"

#include "dref/actors/error.hpp"
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
  // A pending state of an earlier instance (weaker policy) goes first.
  auto pending = write_lazy([&name](const std::string& x, const lazy_state&,
                                    clock_type::time_point) {
    return x == name;
  });
  if (pending.err)
    return pending.err;
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
    note_kept(name, *cp);
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

void checkpointer::set_policy(const std::string& name,
                              const checkpoint_policy& policy) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (policy.every_call()) {
    lazy_.erase(name);
    return;
  }
  auto& l = lazy_[name];
  l.policy = policy;
  l.last_write = clock_type::now();
}

void checkpointer::note_kept(const std::string& name, const checkpoint& cp) {
  std::vector<object_id> ids;
  ids.reserve(cp.refs.size());
  for (auto& key : cp.refs)
    if (auto id = object_id_from_string(key.substr(0, key.find('/'))))
      ids.push_back(*id);
  kept_.loaded(name, cp.version, std::move(ids));
}

caf::error checkpointer::add(write_batch& batch, const std::string& name,
                             const blob& state, const sequence_table& table,
                             const std::string& cls,
                             const std::vector<object_id>& kept,
                             const value_map& values,
                             std::vector<std::string>& new_meta) {
  // Steps 3-4 of "Refs in durable state" (docs/architecture.md): the
  // values this checkpoint is the first to list go into the same batch;
  // those only the replaced checkpoint listed are erased with it.
  if (stale_views_.count(name) > 0) {
    if (auto err = reload_view(name))
      return err;
    stale_views_.erase(name);
  }
  auto version = versions_[name] + 1;
  for (auto& id : kept_.preview(name, version, kept).put)
    if (values.count(id) == 0) {
      // Not kept, not sent: only possible if the worker believes an
      // earlier state was written that was not. Fail; the rollback makes
      // the worker send every value again.
      return make_error(persist_errc::io_error,
                        "durable actor '" + name + "': the value of "
                          + to_string(id)
                          + " that its state refers to was not sent");
    }
  checkpoint cp;
  cp.actor = name;
  cp.version = ++versions_[name];
  cp.state.assign(state.begin(), state.end());
  // The sequence table goes into the same record: one atomic write.
  cp.sequence_numbers = table.seqs;
  for (auto& [caller, reply] : table.replies)
    cp.replies.emplace(caller, std::string{reply.begin(), reply.end()});
  cp.refs.reserve(kept.size());
  for (auto& id : kept)
    cp.refs.push_back(kept_values::key(id, name));
  auto plan = kept_.stage(name, cp.version, kept);
  for (auto& id : plan.put) {
    auto& v = values.at(id);
    kept_value kv;
    kv.value.assign(v.value.begin(), v.value.end());
    for (auto& inner : v.refs)
      kv.refs.push_back(to_string(inner));
    batch.put(column_family::ref_values, kept_values::key(id, name),
              record_codec::encode_value(kept_values::key(id, name), kv));
  }
  batch.put(slot(cp.version), cp.actor, record_codec::encode(cp));
  for (auto& id : plan.erase)
    batch.erase(column_family::ref_values, kept_values::key(id, name));
  if (meta_written_.count(name) == 0 && !cls.empty()) {
    batch.put(column_family::actor_meta, name, encode_meta(cls));
    new_meta.push_back(name);
  }
  return caf::none;
}

caf::error checkpointer::reload_view(const std::string& name) {
  kept_.forget(name);
  for (auto cf : {column_family::actor_state, column_family::actor_state_alt}) {
    auto bytes = store_->read(cf, name);
    if (!bytes)
      return std::move(bytes.error());
    if (!*bytes)
      continue;
    auto cp = record_codec::decode(name, **bytes);
    if (!cp)
      return std::move(cp.error());
    note_kept(name, *cp);
  }
  return caf::none;
}

caf::expected<std::optional<kept_value>>
checkpointer::kept_copy(const object_id& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  // A weaker policy's pending state: its values are here, not on disk yet.
  for (auto& [name, ls] : lazy_)
    if (auto v = ls.values.find(id); v != ls.values.end()) {
      kept_value kv;
      kv.value.assign(v->second.value.begin(), v->second.value.end());
      for (auto& inner : v->second.refs)
        kv.refs.push_back(to_string(inner));
      return std::optional<kept_value>{std::move(kv)};
    }
  // Only a hit in the index costs a read (a failed get of any ref asks).
  if (store_ == nullptr || !kept_.kept_anywhere(id))
    return std::optional<kept_value>{};
  auto keys = store_->keys(column_family::ref_values, kept_values::prefix(id));
  if (!keys)
    return std::move(keys.error());
  if (keys->empty())
    return std::optional<kept_value>{};
  // Every actor keeping `id` keeps the same bytes: take the first copy
  // that reads back.
  caf::error first_err;
  for (auto& key : *keys) {
    auto bytes = store_->read(column_family::ref_values, key);
    if (bytes && *bytes) {
      auto kv = record_codec::decode_value(key, **bytes);
      if (kv)
        return std::optional<kept_value>{std::move(*kv)};
      if (!first_err)
        first_err = std::move(kv.error());
    } else if (!bytes && !first_err) {
      first_err = std::move(bytes.error());
    }
  }
  if (first_err)
    return first_err;
  return std::optional<kept_value>{};
}

bool checkpointer::has_kept_copy(const object_id& id) {
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& [name, ls] : lazy_)
    if (ls.values.count(id) > 0)
      return true;
  return kept_.kept_anywhere(id);
}

size_t checkpointer::kept_count() {
  std::lock_guard<std::mutex> guard{mtx_};
  return kept_.size();
}

std::optional<checkpointer::clock_type::time_point>
checkpointer::next_due() const {
  std::optional<clock_type::time_point> result;
  for (auto& [name, l] : lazy_)
    if (l.dirty && l.policy.interval > caf::timespan{0}) {
      auto t = l.last_write
               + std::chrono::duration_cast<clock_type::duration>(
                 l.policy.interval);
      if (!result || t < *result)
        result = t;
    }
  return result;
}

checkpointer::outcome
checkpointer::write(std::vector<task_result>& results,
                    const std::map<std::string, std::string>& classes) {
  std::lock_guard<std::mutex> guard{mtx_};
  outcome res;
  if (store_ == nullptr)
    return res;
  auto now = clock_type::now();
  // An actor with a refused state (its worker could not save it) writes
  // nothing from this batch: every result of it here ran on a state that
  // is rolled back, so each fails (step 2 of "Refs in durable state").
  for (auto& r : results)
    if (r.refused && !r.durable.empty() && res.failed.count(r.durable) == 0)
      res.failed.emplace(r.durable, r.error);
  value_map values;
  for (auto& r : results)
    for (auto& v : r.kept_values) {
      auto id = v.id;
      values.emplace(id, std::move(v));
    }
  write_batch batch;
  std::vector<std::string> new_meta;
  std::set<std::string> strict;
  std::vector<std::string> lazy_written;
  for (auto& r : results) {
    if (r.durable.empty())
      continue;
    if (auto f = res.failed.find(r.durable); f != res.failed.end()) {
      if (!r.refused) {
        r.status = task_result::failed;
        r.error = make_error(
          actors_errc::task_failed,
          "durable actor '" + r.durable + "': not applied, the actor is "
            "rolled back because the state of a call in the same batch "
            "could not be saved: " + caf::to_string(f->second));
        r.value.clear();
      }
      continue;
    }
    if (r.unchanged)
      continue;
    auto c = classes.find(r.durable);
    auto cls = c != classes.end() ? c->second : std::string{};
    auto l = lazy_.find(r.durable);
    if (l == lazy_.end()) {
      // A later state of the same actor in the batch wins (later version).
      if (auto err = add(batch, r.durable, r.state, r.table, cls, r.kept,
                         values, new_meta)) {
        res.failed.emplace(r.durable, err);
        r.status = task_result::failed;
        r.error = std::move(err);
        r.value.clear();
        continue;
      }
      strict.insert(r.durable);
      continue;
    }
    auto& ls = l->second;
    ls.state = std::move(r.state);
    ls.table = std::move(r.table);
    ls.kept = std::move(r.kept);
    for (auto& id : ls.kept)
      if (auto v = values.find(id); v != values.end())
        ls.values[id] = v->second;
    ls.cls = cls;
    ls.dirty = true;
    ++ls.since;
    auto& p = ls.policy;
    bool due = versions_[r.durable] == 0
               || (p.calls > 0 && ls.since >= p.calls)
               || (p.interval > caf::timespan{0}
                   && now - ls.last_write >= p.interval);
    if (due)
      lazy_written.push_back(r.durable);
  }
  std::vector<std::string> lazy_added;
  for (auto& name : lazy_written) {
    auto& ls = lazy_[name];
    if (ls.dirty) { // once per actor, with its newest state
      if (auto err = add(batch, name, ls.state, ls.table, ls.cls, ls.kept,
                         ls.values, new_meta)) {
        // Stays pending; the actor is restored from it, so its worker
        // sends every value again with its next state.
        res.failed.emplace(name, std::move(err));
        continue;
      }
      ls.dirty = false;
      lazy_added.push_back(name);
    }
  }
  if (!batch.empty()) {
    // One synced write for every durable call in this batch.
    res.err = store_->write(batch);
    ++writes_;
  }
  if (!res.err) {
    kept_.commit();
    meta_written_.insert(new_meta.begin(), new_meta.end());
    for (auto& name : lazy_added) {
      auto& ls = lazy_[name];
      ls.since = 0;
      ls.last_write = now;
      ls.state = blob{};
      ls.table = sequence_table{};
      ls.kept.clear();
      ls.values.clear();
    }
  } else {
    kept_.abort();
    // The failed write may still have reached the disk (a failed fsync):
    // read what these actors' checkpoints list before the next write.
    stale_views_.insert(strict.begin(), strict.end());
    stale_views_.insert(lazy_added.begin(), lazy_added.end());
    for (auto& name : lazy_added)
      lazy_[name].dirty = true; // stays pending; versions only go up
    for (auto& r : results)
      if (strict.count(r.durable) > 0) {
        r.status = task_result::failed;
        r.error = res.err;
        r.value.clear();
      }
    for (auto& name : strict)
      res.failed.emplace(name, res.err);
    if (!lazy_added.empty())
      std::fprintf(stderr, "dref: writing %zu pending checkpoint(s) failed, "
                           "retrying at the next trigger: %s\n",
                   lazy_added.size(), caf::to_string(res.err).c_str());
  }
  res.next_due = next_due();
  return res;
}

template <class Pick>
checkpointer::outcome checkpointer::write_lazy(Pick pick) {
  outcome res;
  if (store_ == nullptr)
    return res;
  auto now = clock_type::now();
  write_batch batch;
  std::vector<std::string> new_meta;
  std::vector<std::string> names;
  for (auto& [name, ls] : lazy_) {
    if (!ls.dirty || !pick(name, ls, now))
      continue;
    if (auto err = add(batch, name, ls.state, ls.table, ls.cls, ls.kept,
                       ls.values, new_meta)) {
      std::fprintf(stderr, "dref: cannot write the pending checkpoint of "
                           "'%s': %s\n",
                   name.c_str(), caf::to_string(err).c_str());
      continue;
    }
    names.push_back(name);
  }
  if (!batch.empty()) {
    res.err = store_->write(batch);
    ++writes_;
    if (!res.err) {
      kept_.commit();
      meta_written_.insert(new_meta.begin(), new_meta.end());
      for (auto& name : names) {
        auto& ls = lazy_[name];
        ls.dirty = false;
        ls.since = 0;
        ls.last_write = now;
        ls.state = blob{};
        ls.table = sequence_table{};
        ls.kept.clear();
        ls.values.clear();
      }
    } else {
      kept_.abort();
      stale_views_.insert(names.begin(), names.end());
      std::fprintf(stderr, "dref: writing %zu pending checkpoint(s) failed, "
                           "retrying later: %s\n",
                   names.size(), caf::to_string(res.err).c_str());
      // Retry after another interval: push the deadline.
      for (auto& name : names)
        lazy_[name].last_write = now;
    }
  }
  res.next_due = next_due();
  return res;
}

checkpointer::outcome checkpointer::write_due() {
  std::lock_guard<std::mutex> guard{mtx_};
  return write_lazy([](const std::string&, const lazy_state& ls,
                        clock_type::time_point now) {
    return ls.policy.interval > caf::timespan{0}
           && now - ls.last_write >= ls.policy.interval;
  });
}

checkpointer::outcome checkpointer::write_all() {
  std::lock_guard<std::mutex> guard{mtx_};
  return write_lazy([](const std::string&, const lazy_state&,
                        clock_type::time_point) { return true; });
}

caf::expected<std::shared_ptr<const task_spec>>
checkpointer::restore_task(uint64_t id, const std::string& cls,
                           const std::string& name) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (auto err = open())
    return err;
  if (auto l = lazy_.find(name); l != lazy_.end() && l->second.dirty) {
    // A weaker policy: the newest state is here, not on disk yet.
    auto t = std::make_shared<task_spec>();
    t->kind = static_cast<uint8_t>(task_kind::actor_restore);
    t->name = cls;
    t->actor = id;
    t->durable = name;
    t->result_type = type_tag<unit_t>();
    t->args.resize(2);
    t->args[0].type = type_tag<blob>();
    t->args[0].value = l->second.state;
    t->args[1].type = type_tag<blob>();
    auto table = l->second.table;
    prune_callers(table, caller_);
    static_cast<void>(to_blob(table, t->args[1].value));
    return std::shared_ptr<const task_spec>{std::move(t)};
  }
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
  t->args = restore_args(*cp->cp, caller_);
  return std::shared_ptr<const task_spec>{std::move(t)};
}

void checkpointer::set_caller(std::string caller) {
  caller_ = std::move(caller);
}

void checkpointer::prune_callers(sequence_table& table,
                                 const std::string& caller) {
  static const std::string driver_prefix = "driver-";
  auto stale = [&](const std::string& x) {
    return x != caller && x.compare(0, driver_prefix.size(), driver_prefix) == 0;
  };
  for (auto i = table.seqs.begin(); i != table.seqs.end();)
    i = stale(i->first) ? table.seqs.erase(i) : std::next(i);
  for (auto i = table.replies.begin(); i != table.replies.end();)
    i = stale(i->first) ? table.replies.erase(i) : std::next(i);
}

std::vector<task_arg> checkpointer::restore_args(const checkpoint& cp,
                                                 const std::string& caller) {
  std::vector<task_arg> args(2);
  args[0].type = type_tag<blob>();
  args[0].value.assign(cp.state.begin(), cp.state.end());
  sequence_table table;
  table.seqs = cp.sequence_numbers;
  for (auto& [caller, reply] : cp.replies)
    table.replies.emplace(caller, blob{reply.begin(), reply.end()});
  prune_callers(table, caller);
  args[1].type = type_tag<blob>();
  static_cast<void>(to_blob(table, args[1].value)); // plain maps: no error
  return args;
}

} // namespace dref::internal
