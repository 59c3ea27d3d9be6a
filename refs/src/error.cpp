#include "dref/refs/error.hpp"

#include "dref/refs/error_category.hpp"

namespace dref {

std::string to_string(refs_errc x) {
  switch (x) {
    case refs_errc::owner_died:
      return "owner_died";
    case refs_errc::object_lost:
      return "object_lost";
    case refs_errc::type_mismatch:
      return "type_mismatch";
    case refs_errc::unknown_object:
      return "unknown_object";
    case refs_errc::serialization_failed:
      return "serialization_failed";
  }
  return "refs_errc(" + std::to_string(static_cast<int>(x)) + ")";
}

caf::error make_error(refs_errc x) {
  return caf::error{static_cast<uint8_t>(x), refs_category};
}

caf::error make_error(refs_errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), refs_category,
                    caf::make_message(std::move(context))};
}

void add_refs_error_category(caf::actor_system_config& cfg) {
  detail::add_error_category<refs_errc>(cfg, refs_category);
}

} // namespace dref
