#include "worker/executor.hpp"

#include "caf/all.hpp"

#include "worker/worker_calls.hpp"
#include "worker/worker_context.hpp"

namespace dref::internal {

namespace {

// The report of task `t` whose run gave `res`; keeps the result as this
// worker's copy (its bytes here or in the node store), or its error.
task_result report(worker_context& ctx, const task_spec& t,
                   caf::expected<blob>& res, durable_state& saved,
                   node_result_sink& sink, std::vector<ref_base>& out_refs) {
  task_result r;
  r.id = t.result;
  if (saved.set) {
    r.durable = std::move(saved.name);
    r.state = std::move(saved.state);
    r.table = std::move(saved.table);
    r.unchanged = saved.unchanged;
    r.refused = saved.refused;
    r.kept = std::move(saved.kept);
    r.kept_values = std::move(saved.kept_values);
  }
  if (!res) {
    r.status = task_result::failed;
    r.error = res.error();
    ctx.refs().copies().put(t.result,
                            stored_object{nullptr, std::move(res.error())});
    return r;
  }
  r.size = res->size();
  stored_object obj;
  if (sink.written()) {
    // Serialized straight into the node store (no heap copy).
    r.size = sink.size();
    r.status = task_result::in_node_store;
    obj.in_node_store = true;
    obj.node_size = r.size;
  } else if (r.size <= ctx.inline_limit()) {
    r.status = task_result::inline_value;
    r.value = *res;
  } else if (ctx.has_node() && !ctx.put_in_node(t.result, *res)) {
    // Large: sealed once in the node store; the copy here keeps no bytes,
    // only the refs inside (`contained`).
    r.status = task_result::in_node_store;
    obj.in_node_store = true;
    obj.node_size = r.size;
  } else {
    // Large, and the node store refused it (full): it stays here.
    r.status = task_result::stored;
  }
  if (!obj.in_node_store)
    obj.value = std::make_shared<const blob>(std::move(*res));
  r.contained = ctx.refs().keep_copy(t.result, std::move(obj),
                                     std::move(out_refs));
  return r;
}

// Runs task `t` on a pool thread and reports it.
void run_one(worker_context& ctx, actor_table& actors, result_outbox& outbox,
             task_spec& t, bool more_follow) {
  durable_state saved;
  std::vector<object_id> held;
  std::vector<ref_base> out_refs;
  node_result_sink sink{ctx, t.result, ctx.inline_limit()};
  auto res = run_task(ctx, actors, t, saved, held, out_refs,
                      ctx.has_node() && t.result.valid() ? &sink : nullptr);
  if (auto calls = ctx.calls())
    calls->flush(); // the calls the task made leave with it at the latest
  if (!res && sink.written())
    ctx.free_in_node(t.result); // written, then the task failed
  if (!t.result.valid()) {
    out_refs.clear();
    ctx.refs().unhold(held);
    return; // destroy, restore: nothing to report
  }
  auto r = report(ctx, t, res, saved, sink, out_refs);
  // The kept copy holds the result's refs now; the arguments' refs are no
  // longer needed.
  out_refs.clear();
  ctx.refs().unhold(held);
  outbox.push(std::move(r), more_follow);
}

} // namespace

executor_state::~executor_state() {
  if (pool)
    pool->stop();
  if (ctx)
    ctx->set_pool(nullptr);
  if (outbox)
    outbox->stop();
}

executor_actor::behavior_type executor_fn(executor_pointer self,
                                          std::shared_ptr<worker_context> ctx,
                                          driver_actor driver,
                                          actor_table actors) {
  auto& st = self->state;
  st.ctx = std::move(ctx);
  // Results leave when the pool runs dry, or within max_delay while it is
  // still busy (result_outbox): coalesced, never withheld.
  constexpr auto max_delay = std::chrono::milliseconds{2};
  st.outbox = std::make_shared<result_outbox>(
    [driver, id = st.ctx->id()](std::vector<task_result>&& rs) {
      caf::anon_send(driver, done_atom::value, id, std::move(rs));
    },
    max_delay);
  auto table = std::make_shared<actor_table>(std::move(actors));
  st.pool = std::make_unique<task_pool>(
    [ctx = st.ctx, table, outbox = st.outbox](task_spec& t, bool more) {
      run_one(*ctx, *table, *outbox, t, more);
    },
    [outbox = st.outbox] { outbox->flush(); }, max_task_threads);
  st.ctx->set_pool(st.pool.get());
  // The driver is gone: nobody will free or read our objects. End.
  self->monitor(driver);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  return {
    [self](submit_atom, std::vector<task_spec>& batch,
           const std::vector<object_id>& frees) {
      auto& st = self->state;
      // Frees name copies of results reported already: none is in the
      // pool any more.
      st.ctx->refs().drop_copies(frees);
      if (!batch.empty())
        st.pool->push(std::move(batch));
    },
  };
}

} // namespace dref::internal
