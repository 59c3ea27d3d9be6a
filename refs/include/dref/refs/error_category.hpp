#pragma once

#include <string>

#include "caf/actor_system_config.hpp"
#include "caf/atom.hpp"
#include "caf/message.hpp"

namespace dref::detail {

/// Renders an error of the enum `E` (which has `to_string(E)`) as
/// "category: code (context)", e.g. "dref_refs: owner_died (...)".
template <class E>
std::string render_error(uint8_t code, caf::atom_value cat,
                         const caf::message& ctx) {
  std::string result = caf::to_string(cat);
  result += ": ";
  result += to_string(static_cast<E>(code));
  if (ctx.match_elements<std::string>()) {
    result += " (";
    result += ctx.get_as<std::string>(0);
    result += ")";
  } else if (!ctx.empty()) {
    result += " ";
    result += caf::to_string(ctx);
  }
  return result;
}

/// Registers the error enum `E` (which has `to_string(E)`) as the CAF error
/// category `category`, rendering as `render_error` does.
template <class E>
void add_error_category(caf::actor_system_config& cfg,
                        caf::atom_value category) {
  cfg.add_error_category(category, render_error<E>);
}

} // namespace dref::detail
