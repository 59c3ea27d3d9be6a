#include "wire/interfaces.hpp"

#include "dref/actors/registry.hpp"

#include "caf/actor_system_config.hpp"
#include "caf/atom.hpp"
#include "caf/io/middleman.hpp"

#include "dref/actors/error.hpp"
#include "dref/refs/error.hpp"
#include "dref/store/error.hpp"
#include "caf/sec.hpp"

namespace dref::internal {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<object_id>("dref.object_id");
  cfg.add_message_type<std::vector<object_id>>("dref.object_ids");
  cfg.add_message_type<blob>("dref.blob");
  cfg.add_message_type<process_address>("dref.process_address");
  cfg.add_message_type<ref_descriptor>("dref.ref_descriptor");
  cfg.add_message_type<std::vector<ref_descriptor>>("dref.ref_descriptors");
  cfg.add_message_type<value_msg>("dref.value_msg");
  cfg.add_message_type<task_arg>("dref.task_arg");
  cfg.add_message_type<task_spec>("dref.task_spec");
  cfg.add_message_type<std::vector<task_spec>>("dref.task_specs");
  cfg.add_message_type<task_result>("dref.task_result");
  cfg.add_message_type<std::vector<task_result>>("dref.task_results");
  cfg.add_message_type<worker_registration>("dref.worker_registration");
  cfg.add_message_type<ref_server_actor>("dref.ref_server_actor");
  cfg.add_message_type<worker_stats>("dref.worker_stats");
  cfg.add_message_type<memory_entry>("dref.memory_entry");
  cfg.add_message_type<std::vector<memory_entry>>("dref.memory_entries");
  cfg.add_message_type<process_memory>("dref.process_memory");
  cfg.add_message_type<std::vector<uint16_t>>("dref.ports");
  cfg.add_message_type<std::vector<worker_id>>("dref.worker_ids");
  cfg.add_message_type<std::vector<uint64_t>>("dref.u64s");
  registry::instance().add_user_message_types(cfg);
  add_dref_error_categories(cfg);
}

void configure_system(caf::actor_system_config& cfg, const config& rc) {
  add_message_types(cfg);
  cfg.load<caf::io::middleman>();
  if (rc.scheduler_threads > 0)
    cfg.set("scheduler.max-threads", rc.scheduler_threads);
  cfg.set("middleman.heartbeat-interval", rc.heartbeat_interval);
  cfg.set("middleman.connection-timeout", rc.connection_timeout);
  // Measured in `dref bench` (docs/performance.md): the sharing scheduler
  // wakes a sleeping thread through a condition variable instead of
  // 50 us naps, and with no middleman workers the multiplexer thread
  // deserializes and delivers messages itself, one thread hop less.
  cfg.set("scheduler.policy", caf::atom_from_string(rc.scheduler_policy));
  cfg.set("middleman.workers", rc.middleman_workers);
}

} // namespace dref::internal
