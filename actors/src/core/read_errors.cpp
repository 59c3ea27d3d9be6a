#include "core/read_errors.hpp"

#include "caf/atom.hpp"
#include "caf/sec.hpp"

#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"

namespace dref::internal {

bool is_fetch_failure(const caf::error& err) {
  if (!err)
    return false;
  if (err.category() == caf::atom("system"))
    // CAF's own (lost connections, unreachable nodes), but not a timeout.
    return err.code() != static_cast<uint8_t>(caf::sec::request_timeout);
  return err == refs_errc::owner_died || err == refs_errc::object_lost
         || err == refs_errc::unknown_object || err == store_errc::not_found
         || err == actors_errc::runtime_down;
}

bool is_object_failure(const caf::error& err) {
  // The errors an owner stores for an object whose task failed
  // (docs/architecture.md, "Failures").
  return err == actors_errc::task_failed || err == actors_errc::worker_died
         || err == actors_errc::unknown_function
         || err == actors_errc::already_applied
         || err == actors_errc::invalid_argument
         || err == refs_errc::type_mismatch
         || err == refs_errc::serialization_failed;
}

} // namespace dref::internal
