// The inbox's stable handle (inbox.hpp): gathers events for the worker,
// hands requests to it, restarts it (reconciling) when it fails.

#include "actors/inbox.hpp"

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

namespace parley {

namespace {

void start_worker(
  inbox_supervisor_actor::stateful_pointer<inbox_supervisor_state> self,
  bool reconcile) {
  auto& st = self->state;
  st.worker = st.detached
                ? self->spawn<caf::detached>(inbox_impl, st.kv, st.writer,
                                             st.router, st.partitions,
                                             reconcile,
                                             st.flush_delay, st.metrics)
                : self->spawn(inbox_impl, st.kv, st.writer, st.router,
                              st.partitions, reconcile, st.flush_delay,
                              st.metrics);
  self->monitor(st.worker);
}

using supervisor_ptr =
  inbox_supervisor_actor::stateful_pointer<inbox_supervisor_state>;

/// Hands what was gathered to the worker in one message.
void forward(supervisor_ptr self) {
  auto& st = self->state;
  st.forward_scheduled = false;
  if (st.pending.events.empty())
    return;
  if (st.metrics)
    st.metrics->projection_backlog += int64_t(st.pending.events.size());
  self->send(st.worker, deliver_atom::value, std::move(st.pending));
  st.pending = projection_batch{};
}

void gather(supervisor_ptr self, projection_event ev) {
  auto& st = self->state;
  st.pending.events.push_back(std::move(ev));
  if (st.forward_scheduled)
    return;
  st.forward_scheduled = true;
  if (st.batch_delay.count() == 0)
    self->send(self, caf::flush_atom::value); // behind what is queued now
  else
    self->delayed_send(self, st.batch_delay, caf::flush_atom::value);
}

} // namespace

inbox_supervisor_actor::behavior_type inbox_supervisor_impl(
  inbox_supervisor_actor::stateful_pointer<inbox_supervisor_state> self,
  std::shared_ptr<kv_backend> kv, store_writer_actor writer, bool detached,
  bool reconcile_first, caf::timespan flush_delay, caf::timespan batch_delay,
  std::shared_ptr<node_metrics> metrics) {
  auto& st = self->state;
  st.metrics = std::move(metrics);
  st.flush_delay = flush_delay;
  st.batch_delay = batch_delay;
  st.kv = std::move(kv);
  st.writer = std::move(writer);
  st.detached = detached;
  start_worker(self, reconcile_first);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (dm.source != st.worker.address())
      return;
    ++st.restarts;
    if (st.metrics) // the failed worker's mailbox is gone
      st.metrics->projection_backlog = 0;
    spdlog::error("inbox actor failed, restarting reason=\"{}\" restarts={}",
                  to_string(dm.reason), st.restarts);
    start_worker(self, true);
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    self->send_exit(self->state.worker, em.reason);
    self->quit(em.reason);
  });
  return {
    [self](deliver_atom, stored_message& msg, std::vector<user_id>& to) {
      projection_event ev;
      ev.msg = std::move(msg);
      ev.to = std::move(to);
      gather(self, std::move(ev));
    },
    [self](receipt_atom, receipt_event& r, std::vector<user_id>& to) {
      projection_event ev;
      ev.is_message = false;
      ev.receipt = std::move(r);
      ev.to = std::move(to);
      gather(self, std::move(ev));
    },
    [self](deliver_atom a, projection_batch& batch) {
      if (self->state.metrics)
        self->state.metrics->projection_backlog
          += int64_t(batch.events.size());
      self->send(self->state.worker, a, std::move(batch));
    },
    [self](caf::get_atom a, user_id user) {
      return self->delegate(self->state.worker, a, user);
    },
    [self](caf::put_atom a, user_id user, conversation_id conv, bool archived,
           bool pinned, bool muted) {
      return self->delegate(self->state.worker, a, user, conv, archived,
                            pinned, muted);
    },
    [self](rebuild_atom a, user_id user, bool all) {
      return self->delegate(self->state.worker, a, user, all);
    },
    [self](caf::put_atom a, inbox_rows& r) {
      return self->delegate(self->state.worker, a, std::move(r));
    },
    [self](fetch_atom a, inbox_query& q) {
      return self->delegate(self->state.worker, a, std::move(q));
    },
    [self](caf::put_atom a, directory_actor& router, uint32_t partitions) {
      self->state.router = router; // for the workers to come
      self->state.partitions = partitions;
      self->send(self->state.worker, a, std::move(router), partitions);
    },
    [self](caf::put_atom a, partition_map& m) {
      // A restarted worker starts with empty caches: nothing to forget.
      return self->delegate(self->state.worker, a, std::move(m));
    },
    [self](caf::flush_atom) { forward(self); },
    [self](caf::timeout_atom) {}, // the workers' own
    [self](caf::get_atom) { return self->state.worker; },
  };
}

} // namespace parley
