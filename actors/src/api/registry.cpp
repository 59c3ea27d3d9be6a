#include "dref/actors/registry.hpp"

#include <cstdio>
#include <cstdlib>

namespace dref {

registry& registry::instance() {
  static registry obj;
  return obj;
}

namespace {

[[noreturn]] void duplicate(const char* what, const std::string& name) {
  // Runs before main: two registrations under one name would make workers
  // run the wrong code, so refuse to start at all.
  std::fprintf(stderr, "dref: two %s registered as '%s'; names must be unique\n",
               what, name.c_str());
  std::abort();
}

} // namespace

void registry::add_function(const void* fn, function_entry entry) {
  if (functions_.count(entry.name) > 0)
    duplicate("functions", entry.name);
  function_names_[fn] = entry.name;
  auto name = entry.name;
  functions_[name] = std::move(entry);
}

const function_entry* registry::function(const std::string& name) const {
  auto i = functions_.find(name);
  return i != functions_.end() ? &i->second : nullptr;
}

const std::string* registry::function_name(const void* fn) const {
  auto i = function_names_.find(fn);
  return i != function_names_.end() ? &i->second : nullptr;
}

void registry::add_class(std::type_index type, actor_class_entry entry) {
  if (classes_.count(entry.name) > 0)
    duplicate("actor classes", entry.name);
  class_names_.emplace(type, entry.name);
  auto name = entry.name;
  classes_[name] = std::move(entry);
}

const actor_class_entry* registry::actor_class(const std::string& name) const {
  auto i = classes_.find(name);
  return i != classes_.end() ? &i->second : nullptr;
}

const actor_class_entry* registry::actor_class(std::type_index type) const {
  auto i = class_names_.find(type);
  return i != class_names_.end() ? actor_class(i->second) : nullptr;
}

void registry::add_state(const std::string& type_tag, state_entry entry) {
  states_[type_tag] = std::move(entry);
}

const state_entry* registry::state(const std::string& type_tag) const {
  auto i = states_.find(type_tag);
  return i != states_.end() ? &i->second : nullptr;
}

void registry::add_message_type(
  std::function<void(caf::actor_system_config&)> f) {
  message_types_.push_back(std::move(f));
}

void registry::add_user_message_types(caf::actor_system_config& cfg) const {
  for (auto& f : message_types_)
    f(cfg);
}

void registry::add_constructor(const std::string& key, constructor_entry entry) {
  constructors_[key] = std::move(entry);
}

const constructor_entry* registry::constructor(const std::string& key) const {
  auto i = constructors_.find(key);
  return i != constructors_.end() ? &i->second : nullptr;
}

std::string registry::constructor_key(const std::string& type_tag,
                                      const std::vector<std::string>& args) {
  auto key = type_tag;
  key += '(';
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0)
      key += ',';
    key += args[i];
  }
  key += ')';
  return key;
}

} // namespace dref
