#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "caf/error.hpp"
#include "caf/meta/load_callback.hpp"
#include "caf/meta/type_name.hpp"
#include "caf/sec.hpp"

#include "dref/persist/kept_ref_value.hpp"
#include "dref/persist/sequence_table.hpp"
#include "dref/refs/fwd.hpp"
#include "dref/refs/object_id.hpp"
#include "dref/refs/process_address.hpp"
#include "dref/refs/ref_descriptor.hpp"

namespace dref {

/// Version of the messages between a driver and its workers. A worker built
/// from another version is refused at registration.
constexpr uint32_t cluster_protocol_version = 9;

/// What a task does.
enum class task_kind : uint8_t {
  function = 0,      ///< run a DREF_REMOTE function
  actor_create = 1,  ///< construct an instance of a DREF_ACTOR class
  actor_call = 2,    ///< run a method on an actor instance
  actor_destroy = 3, ///< drop an actor instance (after its earlier calls)
  actor_restore = 4, ///< re-create a durable actor from its saved state
};

/// How a task argument travels (frozen values: they are on the wire).
enum class arg_kind : uint8_t {
  /// `task_arg::value` holds the serialized argument.
  value = 0,
  /// `task_arg::ref` names an object the submitter owns; the dispatcher
  /// says where to read it (`location`, `from`).
  owned_ref = 1,
  /// `task_arg::ref` names an object another process owns (the submitter
  /// borrows it); `from` is the owner's ref server.
  borrowed_ref = 2,
};

/// One argument of a task: a serialized value, or a ref to one.
struct task_arg {
  arg_kind kind = arg_kind::value;
  /// type_tag of the parameter type, checked by the worker.
  std::string type;
  /// The serialized value (kind 0).
  blob value;
  /// The object holding the value (`owned_ref`, `borrowed_ref`).
  object_id ref;
  /// Worker holding a copy of `ref` (`owned_ref`), as decided at dispatch;
  /// `node_location` or the target itself: read it there.
  worker_id location = 0;
  /// The process to read `ref` from: the worker at `location`
  /// (`owned_ref`), or the owner (`borrowed_ref`).
  process_address from;
  /// Refs inside the argument's value; the submitter holds them until the
  /// task is over, the worker borrows them before it runs.
  std::vector<ref_descriptor> contained;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_arg& x) {
  // A kind this version does not know is refused, not misread.
  auto check = caf::meta::load_callback([&]() -> caf::error {
    if (static_cast<uint8_t>(x.kind) > 2)
      return caf::make_error(caf::sec::invalid_argument,
                             "unknown task argument kind");
    return caf::none;
  });
  return f(caf::meta::type_name("dref.task_arg"), x.kind, check, x.type,
           x.value, x.ref, x.location, x.from, x.contained);
}

/// A unit of work sent from an owner to a worker.
///
/// Made by `runtime` when the user calls, immutable afterwards (the owner
/// keeps it as the lineage of `result`); the copy sent to a worker has its
/// ref arguments resolved to values or locations.
struct task_spec {
  /// The object the task's return value becomes (invalid for destroy).
  object_id result;
  /// A `task_kind` value.
  uint8_t kind = 0;
  /// Function name, or actor class name.
  std::string name;
  /// Actor instance (actor tasks).
  uint64_t actor = 0;
  /// Method index within the class (actor_call).
  uint32_t method = 0;
  /// type_tag of the expected return type.
  std::string result_type;
  std::vector<task_arg> args;
  /// Name of a durable actor (actor tasks), empty otherwise: the worker
  /// returns the actor's state with each result.
  std::string durable;
  /// Calls on durable actors: who calls, and the call's number among that
  /// caller's calls on this actor (from 1, in the order they run). A call
  /// whose number the actor's sequence table already holds is a retry and
  /// is answered from the table instead of applied again. 0: no number.
  std::string caller;
  uint64_t seq = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_spec& x) {
  return f(caf::meta::type_name("dref.task_spec"), x.result, x.kind, x.name,
           x.actor, x.method, x.result_type, x.args, x.durable, x.caller,
           x.seq);
}

/// How a task ended, sent from a worker back to the owner.
struct task_result {
  enum status_code : uint8_t {
    inline_value = 0, ///< `value` holds the result; the worker keeps a copy
    stored = 1,       ///< the result (of `size` bytes) stays at the worker
    failed = 2,       ///< `error` says why
    /// The result (of `size` bytes) is sealed in the node store under `id`;
    /// the worker keeps an entry without the bytes (holding the refs inside).
    in_node_store = 3,
  };
  object_id id;
  uint8_t status = inline_value;
  blob value;
  uint64_t size = 0;
  caf::error error;
  /// Durable actor calls: the actor's name, its state and its sequence
  /// table after the call, which the owner makes durable (in one record)
  /// before it acknowledges the result.
  std::string durable;
  blob state;
  /// Refs inside the value: the worker's stored copy holds them, and the
  /// owner of the result holds them too while the result lives.
  std::vector<ref_descriptor> contained;
  sequence_table table;
  /// Durable actor calls of a const method: the state did not change, so
  /// `state` and `table` are empty and nothing needs writing.
  bool unchanged = false;
  /// Durable actor calls: the ids of every value the state refers to (the
  /// refs it holds and, transitively, the refs inside their values), and
  /// those of the values the worker did not send with an earlier state of
  /// this instance.
  std::vector<object_id> kept;
  std::vector<kept_ref_value> kept_values;
  /// Durable actor calls whose state could not be saved (`error` says
  /// why, e.g. a value it refers to cannot be read): the call failed and
  /// the owner rolls the actor back to its last checkpoint.
  bool refused = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_result& x) {
  return f(caf::meta::type_name("dref.task_result"), x.id, x.status, x.value,
           x.size, x.error, x.durable, x.state, x.table, x.unchanged,
           x.contained, x.kept, x.kept_values, x.refused);
}

/// A value as it travels to a reader: its bytes plus the refs inside them
/// (which the sender holds while the reader may still need them). With
/// `in_node_store`, `bytes` is empty: the value is sealed in the node store
/// of the reader's node under the requested id, read there without copying.
struct value_msg {
  blob bytes;
  std::vector<ref_descriptor> contained;
  bool in_node_store = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, value_msg& x) {
  return f(caf::meta::type_name("dref.value_msg"), x.bytes, x.contained,
           x.in_node_store);
}

} // namespace dref
