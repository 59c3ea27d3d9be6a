#pragma once

// CAF's own errors (category `system`: `sec`, and `exit`) at dref's API
// edges. docs/api.md promises every error a user sees is of one of dref's
// four categories; a request made by the runtime can still end with CAF's
// `request_timeout`, `request_receiver_down` or a connection error. These
// functions turn such an error into dref's, saying the same in words.

#include <string>

#include "caf/error.hpp"

namespace dref::internal {

/// True for an error of dref's own categories (actors_errc, refs_errc,
/// store_errc, persist_errc).
bool is_dref_error(const caf::error& err);

/// CAF's reason in words ("the process asked is gone", "no answer in
/// time", ...), for an error's context.
std::string caf_reason_text(const caf::error& err);

/// `err` itself when it is dref's own (or none). Otherwise dref's error for
/// the same thing: `actors_errc::timeout` for CAF's request timeout, else
/// `unreachable`'s code and category (e.g. `refs_errc::owner_died` for a
/// request to an owner); the context reads "<what>: <CAF's reason>".
caf::error dref_error_of(caf::error err, const std::string& what,
                         const caf::error& unreachable);

} // namespace dref::internal
