#include "caf_errors.hpp"

#include <algorithm>

#include "caf/atom.hpp"
#include "caf/exit_reason.hpp"
#include "caf/make_message.hpp"
#include "caf/sec.hpp"

#include "dref/actors/error.hpp"
#include "dref/persist/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

namespace dref::internal {

namespace {

std::string words(std::string s) {
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

std::string sec_text(caf::sec code) {
  switch (code) {
    case caf::sec::request_receiver_down:
      return "the process asked is gone";
    case caf::sec::request_timeout:
      return "no answer in time";
    case caf::sec::unexpected_message:
      return "the request was not understood";
    case caf::sec::unexpected_response:
      return "the answer was not understood";
    case caf::sec::cannot_connect_to_node:
      return "cannot connect to the process";
    case caf::sec::connection_timeout:
      return "the connection timed out";
    case caf::sec::disconnect_during_handshake:
      return "the connection closed during its handshake";
    case caf::sec::no_route_to_receiving_node:
      return "no connection to the process";
    case caf::sec::incompatible_versions:
    case caf::sec::incompatible_application_ids:
      return "the process runs an incompatible build";
    default:
      return words(caf::to_string(code));
  }
}

} // namespace

bool is_dref_error(const caf::error& err) {
  auto c = err.category();
  return c == actors_category || c == refs_category || c == store_category
         || c == persist_category;
}

std::string caf_reason_text(const caf::error& err) {
  if (err.category() == caf::atom("system"))
    return sec_text(static_cast<caf::sec>(err.code()));
  if (err.category() == caf::atom("exit"))
    return "the actor asked exited ("
           + words(caf::to_string(static_cast<caf::exit_reason>(err.code())))
           + ")";
  return caf::to_string(err);
}

caf::error dref_error_of(caf::error err, const std::string& what,
                         const caf::error& unreachable) {
  if (!err || is_dref_error(err))
    return err;
  auto context = what + ": " + caf_reason_text(err);
  if (err == caf::sec::request_timeout)
    return make_error(actors_errc::timeout, std::move(context));
  return caf::error{unreachable.code(), unreachable.category(),
                    caf::make_message(std::move(context))};
}

} // namespace dref::internal
