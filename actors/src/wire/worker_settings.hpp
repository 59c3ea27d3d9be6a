#pragma once

#include <cstdint>
#include <string>

#include "caf/expected.hpp"
#include "caf/meta/type_name.hpp"

#include "dref/actors/config.hpp"
#include "dref/refs/fwd.hpp"

namespace dref::internal {

/// What a driver tells a worker process it starts (through the environment
/// variable `DREF_WORKER`): where to register, which id to take, and the
/// runtime settings a worker uses. Plain value type, versioned: a worker
/// refuses settings of another version with a clear error instead of
/// misreading them (docs/formats.md, "Worker settings").
struct worker_settings {
  /// Version 1: the fields below, in this order.
  static constexpr uint32_t current_version = 1;

  uint32_t version = current_version;
  /// Host the driver, the node store and this worker listen on.
  std::string host;
  /// Port of the driver actor (registration, results).
  uint16_t driver_port = 0;
  /// Port of the node store's transfer server (0: no node store).
  uint16_t store_port = 0;
  worker_id id = 0;
  uint64_t inline_limit = 0;
  uint32_t scheduler_threads = 0;
  std::string scheduler_policy;
  uint32_t middleman_workers = 0;
  int64_t fetch_timeout_ms = 0;
  int64_t heartbeat_interval_ms = 0;
  int64_t connection_timeout_ms = 0;
  int64_t transit_timeout_ms = 0;
  int64_t death_grace_ms = 0;

  /// The settings of a worker of a runtime with `cfg`.
  static worker_settings of(const config& cfg);

  /// The runtime settings a worker uses.
  config to_config() const;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, worker_settings& x) {
  return f(caf::meta::type_name("dref.worker_settings"), x.version, x.host,
           x.driver_port, x.store_port, x.id, x.inline_limit,
           x.scheduler_threads, x.scheduler_policy, x.middleman_workers,
           x.fetch_timeout_ms, x.heartbeat_interval_ms,
           x.connection_timeout_ms, x.transit_timeout_ms, x.death_grace_ms);
}

/// The descriptor on which a worker inherits the read end of its lifeline
/// pipe: when the process that started it dies, however it dies, the pipe
/// reports end-of-file and the worker exits (see `worker_pool`).
constexpr int lifeline_fd = 3;

/// `x` as text for the environment (hex of its binary form).
std::string encode(const worker_settings& x);

/// Reads what `encode` wrote. Errors: `invalid_argument` naming what is
/// wrong (not hex, truncated, another version).
caf::expected<worker_settings> decode_worker_settings(const std::string& text);

} // namespace dref::internal
