#pragma once

#include <chrono>
#include <utility>

#include "caf/error.hpp"
#include "caf/timespan.hpp"

#include "dref/actors/atoms.hpp"
#include "dref/actors/runtime.hpp"
#include "dref/actors/serialization.hpp"
#include "dref/refs/ref.hpp"

namespace dref {

/// Resolves `x` inside a CAF event-based actor without blocking: `on_value`
/// runs in `self`'s context with the value once it is ready, `on_error` with
/// the error if the task failed, the owner is gone, or `timeout` passed
/// (`actors_errc::timeout`; every error is of dref's categories), or `x`
/// names a value of another type than `T` (`type_mismatch`, at once).
/// Keeps `x` (and so the value) alive until one of the two has run.
template <class T, class Self, class OnValue, class OnError>
void then(Self* self, const ref<T>& x, OnValue on_value, OnError on_error,
          caf::timespan timeout = std::chrono::seconds(60)) {
  if (auto err = check_type(x)) {
    on_error(err);
    return;
  }
  auto owner = internal::ref_server_of(x);
  if (!owner) {
    on_error(make_error(actors_errc::runtime_down));
    return;
  }
  self->request(owner, timeout, get_atom::value, x.id())
    .then(
      [x, on_value, on_error](const value_msg& v) mutable {
        T value;
        ref_read_scope reading{x.shared_context()};
        if (auto err = from_blob(v.bytes, value)) {
          on_error(err);
          return;
        }
        on_value(value);
      },
      [x, on_error](caf::error& err) mutable {
        on_error(internal::owner_request_error(std::move(err), x.id()));
      });
}

} // namespace dref
