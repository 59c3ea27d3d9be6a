#include "dref/store/error.hpp"

#include "dref/refs/error_category.hpp"
#include "caf/make_message.hpp"
#include "caf/message.hpp"

namespace dref {

std::string to_string(store_errc x) {
  switch (x) {
    case store_errc::store_full:
      return "store_full";
    case store_errc::not_found:
      return "not_found";
    case store_errc::io_error:
      return "io_error";
    case store_errc::disk_full:
      return "disk_full";
    case store_errc::corrupt:
      return "corrupt";
    case store_errc::already_exists:
      return "already_exists";
    case store_errc::transfer_failed:
      return "transfer_failed";
    case store_errc::invalid_argument:
      return "invalid_argument";
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

std::string describe(const caf::error& err) {
  if (!err)
    return "none";
  std::string text = err.category() == store_category
                       ? to_string(static_cast<store_errc>(err.code()))
                       : caf::to_string(err);
  if (err.category() == store_category
      && err.context().match_elements<std::string>())
    text += " (" + err.context().get_as<std::string>(0) + ")";
  return text;
}

bool is(const caf::error& err, store_errc x) {
  return err && err.category() == store_category
         && err.code() == static_cast<uint8_t>(x);
}

} // namespace dref
