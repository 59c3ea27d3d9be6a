#include "dref/persist/kept_values.hpp"

#include <algorithm>

namespace dref {

namespace {

void sort_unique(std::vector<object_id>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

} // namespace

bool kept_values::lists(const slots& s, const object_id& id) {
  for (auto& e : s)
    if (e && std::binary_search(e->ids.begin(), e->ids.end(), id))
      return true;
  return false;
}

std::vector<object_id> kept_values::all_of(const slots& s) {
  std::vector<object_id> all;
  for (auto& e : s)
    if (e)
      all.insert(all.end(), e->ids.begin(), e->ids.end());
  sort_unique(all);
  return all;
}

void kept_values::set_committed(const std::string& actor, slots s) {
  if (auto i = committed_.find(actor); i != committed_.end())
    for (auto& id : all_of(i->second))
      if (auto c = counts_.find(id); c != counts_.end() && --c->second == 0)
        counts_.erase(c);
  for (auto& id : all_of(s))
    ++counts_[id];
  committed_[actor] = std::move(s);
}

const kept_values::slots* kept_values::current(const std::string& actor) const {
  if (auto i = staged_.find(actor); i != staged_.end())
    return &i->second;
  if (auto i = committed_.find(actor); i != committed_.end())
    return &i->second;
  return nullptr;
}

void kept_values::loaded(const std::string& actor, uint64_t version,
                         std::vector<object_id> ids) {
  sort_unique(ids);
  auto c = committed_.find(actor);
  auto s = c != committed_.end() ? c->second : slots{};
  s[version % 2] = slot_entry{version, std::move(ids)};
  set_committed(actor, std::move(s));
}

void kept_values::forget(const std::string& actor) {
  set_committed(actor, slots{});
  committed_.erase(actor);
}

kept_values::plan kept_values::preview(const std::string& actor,
                                       uint64_t version,
                                       std::vector<object_id> ids) const {
  sort_unique(ids);
  static const slots none;
  auto cur = current(actor);
  auto& s = cur != nullptr ? *cur : none;
  auto& replaced = s[version % 2];
  auto& other = s[1 - version % 2];
  plan result;
  for (auto& id : ids)
    if (!lists(s, id))
      result.put.push_back(id);
  if (replaced)
    for (auto& id : replaced->ids)
      if (!std::binary_search(ids.begin(), ids.end(), id)
          && !(other
               && std::binary_search(other->ids.begin(), other->ids.end(),
                                     id)))
        result.erase.push_back(id);
  return result;
}

kept_values::plan kept_values::stage(const std::string& actor,
                                     uint64_t version,
                                     std::vector<object_id> ids) {
  sort_unique(ids);
  auto result = preview(actor, version, ids);
  auto i = staged_.find(actor);
  if (i == staged_.end()) {
    auto c = committed_.find(actor);
    i = staged_.emplace(actor, c != committed_.end() ? c->second : slots{})
          .first;
  }
  i->second[version % 2] = slot_entry{version, std::move(ids)};
  return result;
}

void kept_values::commit() {
  for (auto& [actor, s] : staged_)
    set_committed(actor, std::move(s));
  staged_.clear();
}

void kept_values::abort() {
  staged_.clear();
}

bool kept_values::kept(const std::string& actor, const object_id& id) const {
  auto i = committed_.find(actor);
  return i != committed_.end() && lists(i->second, id);
}

size_t kept_values::size() const {
  size_t n = 0;
  for (auto& [actor, s] : committed_)
    n += all_of(s).size();
  return n;
}

std::string kept_values::key(const object_id& id, const std::string& actor) {
  return prefix(id) + actor;
}

std::string kept_values::prefix(const object_id& id) {
  return to_string(id) + "/";
}

} // namespace dref
