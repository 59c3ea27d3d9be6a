#include "dref/store/error.hpp"

#include "dref/refs/error_category.hpp"
#include "caf/make_message.hpp"

namespace dref {

std::string to_string(store_errc x) {
  switch (x) {
    case store_errc::store_full:
      return "store_full";
    case store_errc::not_found:
      return "not_found";
  }
  return "store_errc(" + std::to_string(static_cast<int>(x)) + ")";
}

caf::error make_error(store_errc x) {
  return caf::error{static_cast<uint8_t>(x), store_category};
}

caf::error make_error(store_errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), store_category,
                    caf::make_message(std::move(context))};
}

void add_store_error_category(caf::actor_system_config& cfg) {
  detail::add_error_category<store_errc>(cfg, store_category);
}

} // namespace dref
