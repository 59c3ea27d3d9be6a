#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "caf/expected.hpp"
#include "caf/meta/type_name.hpp"
#include "caf/timespan.hpp"

#include "dref/refs/fwd.hpp"
#include "dref/refs/object_id.hpp"

namespace dref {

/// One object as `dref memory` shows it, from the point of view of one
/// process: the owner's bookkeeping, or a worker's stored copy.
struct memory_entry {
  object_id id;
  /// Owner: pending, ready or failed. Worker: stored or failed.
  std::string state;
  /// Serialized bytes.
  uint64_t size = 0;
  uint32_t local_refs = 0;
  uint32_t submitted_refs = 0;
  /// Processes borrowing the object (borrowing lands with issue 3).
  uint32_t borrowers = 0;
  /// Workers holding a copy.
  std::vector<worker_id> locations;
  /// Whether the owner holds a copy in its own memory.
  bool owner_copy = false;
  /// Name of the function or method whose result it is (empty for `put`).
  std::string made_by;
  /// The user's call that created it: `module+0xoffset (symbol)`; resolve
  /// the offset with `addr2line -e <module>`.
  std::string call_site;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, memory_entry& x) {
  return f(caf::meta::type_name("dref.memory_entry"), x.id, x.state, x.size,
           x.local_refs, x.submitted_refs, x.borrowers, x.locations,
           x.owner_copy, x.made_by, x.call_site);
}

/// What one process holds.
struct process_memory {
  /// "driver" (an owner) or "worker".
  std::string role;
  int32_t pid = 0;
  /// Worker id (0 for the driver).
  worker_id id = 0;
  std::vector<memory_entry> objects;
  /// False for a worker that died (or could not be reached) before it
  /// answered: `objects` is empty, its copies went with it.
  bool alive = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, process_memory& x) {
  return f(caf::meta::type_name("dref.process_memory"), x.role, x.pid, x.id,
           x.objects, x.alive);
}

/// A cluster's refs and values, per process: what `dref memory` prints.
struct memory_report {
  std::vector<process_memory> processes;
};

/// Renders the report as the table `dref memory` prints, with totals.
std::string to_text(const memory_report& report);

/// Pids of the dref drivers running on this machine under this user (each
/// leaves a run file while its runtime runs; see docs/operations.md).
std::vector<int32_t> running_drivers();

/// Connects to the running driver `pid` and collects the report of it and of
/// its workers.
caf::expected<memory_report> memory_of_driver(int32_t pid,
                                              caf::timespan timeout);

/// The directory holding the run files: $DREF_RUN_DIR, else /tmp/dref-<uid>.
std::string run_directory();

} // namespace dref
