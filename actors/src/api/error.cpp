#include "dref/actors/error.hpp"

#include "dref/refs/error_category.hpp"
#include "caf/make_message.hpp"

#include "dref/persist/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

namespace dref {

std::string to_string(actors_errc x) {
  switch (x) {
    case actors_errc::task_failed:
      return "task_failed";
    case actors_errc::unknown_function:
      return "unknown_function";
    case actors_errc::timeout:
      return "timeout";
    case actors_errc::worker_died:
      return "worker_died";
    case actors_errc::runtime_down:
      return "runtime_down";
    case actors_errc::invalid_argument:
      return "invalid_argument";
    case actors_errc::already_applied:
      return "already_applied";
    case actors_errc::unknown_actor:
      return "unknown_actor";
    case actors_errc::would_block:
      return "would_block";
  }
  return "actors_errc(" + std::to_string(static_cast<int>(x)) + ")";
}

caf::error make_error(actors_errc x) {
  return caf::error{static_cast<uint8_t>(x), actors_category};
}

caf::error make_error(actors_errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), actors_category,
                    caf::make_message(std::move(context))};
}

void add_actors_error_category(caf::actor_system_config& cfg) {
  detail::add_error_category<actors_errc>(cfg, actors_category);
}

std::string render(const caf::error& err) {
  if (!err)
    return "none"; // CAF 0.17's to_string crashes on an empty error
  auto cat = err.category();
  if (cat == refs_category)
    return detail::render_error<refs_errc>(err.code(), cat, err.context());
  if (cat == store_category)
    return detail::render_error<store_errc>(err.code(), cat, err.context());
  if (cat == persist_category)
    return detail::render_error<persist_errc>(err.code(), cat,
                                              err.context());
  if (cat == actors_category)
    return detail::render_error<actors_errc>(err.code(), cat, err.context());
  return caf::to_string(err);
}

void add_dref_error_categories(caf::actor_system_config& cfg) {
  add_refs_error_category(cfg);
  add_store_error_category(cfg);
  add_persist_error_category(cfg);
  add_actors_error_category(cfg);
}

} // namespace dref
