#pragma once

#include "dref/actors/task_spec.hpp"
#include "dref/refs/ref_core.hpp"

namespace dref::internal {

// The owner's half of the call path, the same in every process that calls
// (the driver, and a worker whose task calls another task): what submitting
// a task and taking its result do to the caller's own ref core
// (docs/architecture.md, "The call path" steps 2 and 7, "Task trees").
// Plain functions on a `ref_core`; every one needs the core's lock held.

/// Counts the protections task `spec` gives its arguments while it is not
/// over: one submitted ref on each ref argument (and each ref inside a
/// value argument) this process owns, one local ref on each it borrows;
/// with `up == false`, ends them.
void protect_args(ref_core& core, const task_spec& spec, bool up);

/// Records the result `r` of a task this process owns, run at location
/// `where` (the worker keeping a copy; `owner_location` for a failure that
/// no worker keeps, e.g. the worker died). With `in_node` the bytes are in
/// the node store too. Returns false when `r.id` is not pending here (the
/// caller frees the copy at `where`); else the object is ready or failed,
/// and the refs inside it are held by it (borrowing those owned elsewhere).
bool complete_owned(ref_core& core, task_result& r, worker_id where);

} // namespace dref::internal
