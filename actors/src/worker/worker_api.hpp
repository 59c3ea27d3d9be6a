#pragma once

// The worker's side of the free functions of dref/actors/task.hpp (the
// driver's side is its runtime; api/task_api.cpp chooses). Each acts on the
// worker whose task runs on this process (`current_worker`).

#include <memory>
#include <vector>

#include "caf/expected.hpp"
#include "caf/timespan.hpp"

#include "dref/actors/task.hpp"

namespace dref::internal {

class worker_context;

/// The worker this process runs, or null (not a worker, or stopping).
std::shared_ptr<worker_context> current_worker();

caf::expected<ref_base> put_in_worker(const void* value, put_writer write);
caf::expected<buffer> get_in_worker(const ref_base& x, caf::timespan timeout,
                                    std::vector<object_id>& held);
void unhold_in_worker(std::vector<object_id>& held);
const ref_context* refs_in_worker();
ref_base submit_in_worker(task_spec spec, const void* call_site);
ref_base failed_in_worker(caf::error err);
std::vector<bool> wait_in_worker(const std::vector<const ref_base*>& xs,
                                 size_t n, caf::timespan timeout);

} // namespace dref::internal
