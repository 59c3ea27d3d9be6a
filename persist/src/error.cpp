#include "dref/persist/error.hpp"

#include "dref/refs/error_category.hpp"
#include "caf/make_message.hpp"

namespace dref {

std::string to_string(persist_errc x) {
  switch (x) {
    case persist_errc::checkpoint_corrupt:
      return "checkpoint_corrupt";
    case persist_errc::io_error:
      return "io_error";
    case persist_errc::disk_full:
      return "disk_full";
    case persist_errc::incompatible_state:
      return "incompatible_state";
  }
  return "persist_errc(" + std::to_string(static_cast<int>(x)) + ")";
}

caf::error make_error(persist_errc x) {
  return caf::error{static_cast<uint8_t>(x), persist_category};
}

caf::error make_error(persist_errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), persist_category,
                    caf::make_message(std::move(context))};
}

void add_persist_error_category(caf::actor_system_config& cfg) {
  detail::add_error_category<persist_errc>(cfg, persist_category);
}

} // namespace dref
