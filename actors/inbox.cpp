#include "actors/inbox.hpp"

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/meta_store.hpp"

namespace parley {

namespace {

using self_ptr = inbox_actor::stateful_pointer<inbox_state>;
using entry_key = std::pair<user_id, conversation_id>;

constexpr size_t max_cache = 50000;

/// Reads by id (runtime/store/inbox_reads.hpp): the user's rows from the
/// user's partition, each conversation's part from the conversation's;
/// answered from this node's store.
store::partition_reads reads(self_ptr self) {
  auto& st = self->state;
  return store::partition_reads::local(*st.kv, st.partitions);
}

/// Whose inbox rows this actor writes, for its fence id
/// (writer_ids::inbox): one inbox per node today, shard 0.
constexpr uint64_t inbox_shard = 0;

void queue_flush(self_ptr self) {
  auto& st = self->state;
  if (!st.flush_queued && !st.writing) {
    st.flush_queued = true;
    if (st.flush_delay.count() == 0)
      self->send(self, caf::flush_atom::value); // after what is queued now
    else
      self->delayed_send(self, st.flush_delay, caf::flush_atom::value);
  }
}

void mark(self_ptr self, const entry_key& k, const inbox_entry& e) {
  auto& st = self->state;
  st.cache[k] = e;
  st.dirty.insert(k);
  queue_flush(self);
}

/// The entry from the log (after a gap, or when none is known).
inbox_entry* recompute(self_ptr self, const entry_key& k) {
  auto& st = self->state;
  auto e = store::compute_inbox_entry_by_id(reads(self), k.first, k.second);
  if (!e) {
    if (!is(e.error(), errc::forbidden))
      spdlog::warn("inbox entry not computed user={} conversation={} "
                   "error=\"{}\"",
                   k.first, k.second, to_string(e.error()));
    return nullptr;
  }
  mark(self, k, *e);
  return &st.cache[k];
}

/// The current entry: cached, stored, or computed from the log.
inbox_entry* entry(self_ptr self, const entry_key& k) {
  auto& st = self->state;
  if (auto i = st.cache.find(k); i != st.cache.end())
    return &i->second;
  if (st.cache.size() >= max_cache) {
    // Drop what is written; keep what still has to be.
    for (auto i = st.cache.begin(); i != st.cache.end();)
      i = st.dirty.count(i->first) ? std::next(i) : st.cache.erase(i);
  }
  auto stored = store::load_inbox_entry(*st.kv, k.first, k.second);
  if (stored && *stored) {
    st.cache[k] = **stored;
    return &st.cache[k];
  }
  return recompute(self, k);
}

void on_message(self_ptr self, const stored_message& msg, user_id user) {
  entry_key k{user, msg.conversation};
  auto* e = entry(self, k);
  if (!e || msg.seq <= e->head)
    return; // re-emitted, or already counted by a recomputation
  if (msg.seq != e->head + 1) {
    recompute(self, k); // events were lost: count from the log
    return;
  }
  auto next = *e;
  next.head = msg.seq;
  next.latest_sender = msg.sender_user;
  next.latest_at_ms = msg.sent_at_ms;
  if (msg.sender_user != user && msg.seq > next.read)
    ++next.unread;
  mark(self, k, next);
}

void on_read(self_ptr self, const receipt_event& ev) {
  entry_key k{ev.user, ev.conversation};
  auto* e = entry(self, k);
  if (!e || ev.seq <= e->read)
    return;
  if (ev.seq >= e->head) {
    auto next = *e;
    next.read = ev.seq;
    next.unread = 0;
    mark(self, k, next);
    return;
  }
  // Read part-way: count what is left (receipts never point before the
  // member's first visible message, see handle_receipt).
  auto n = store::count_from_others(*self->state.kv, ev.conversation, ev.user,
                                    ev.seq, e->head);
  if (!n) {
    recompute(self, k);
    return;
  }
  auto next = *e;
  next.read = ev.seq;
  next.unread = *n;
  mark(self, k, next);
}

void on_messages(self_ptr self, const stored_message& msg,
                 const std::vector<user_id>& to) {
  for (auto user : to)
    on_message(self, msg, user);
}

/// Only reads change an inbox entry (delivered cursors do not).
void on_receipt(self_ptr self, const receipt_event& ev) {
  if (ev.kind == 2)
    on_read(self, ev);
}

void flush(self_ptr self) {
  auto& st = self->state;
  st.flush_queued = false;
  if (st.writing || st.dirty.empty())
    return;
  write_batch batch;
  std::vector<entry_key> keys(st.dirty.begin(), st.dirty.end());
  for (auto& k : keys)
    store::add_inbox_entry(batch, k.first, st.cache[k]);
  st.dirty.clear();
  st.writing = true;
  auto writer_id = writer_ids::inbox(inbox_shard);
  auto epoch = st.epoch;
  self
    ->request(st.writer, timeouts::commit, commit_atom::value, writer_id, epoch,
              std::move(batch))
    .then(
      [self](uint64_t) {
        self->state.writing = false;
        flush(self);
      },
      [self, keys, epoch](caf::error& err) {
        auto& st = self->state;
        // A timeout is handled as a failure although the batch may still
        // land: inbox rows are whole values from the cache, and the writer
        // orders this batch before any later one of this actor, which
        // writes the same keys' newer values over it.
        spdlog::warn("inbox write failed entries={} error=\"{}\"", keys.size(),
                     to_string(err));
        st.writing = false;
        st.epoch = std::max(st.epoch, next_epoch(err, epoch));
        // Written again with the next change (the cache holds them).
        st.dirty.insert(keys.begin(), keys.end());
      });
}

/// Recomputes the entries of `user` (all of them, or the stale ones).
caf::expected<uint64_t> rebuild_user(self_ptr self, user_id user, bool all) {
  std::vector<inbox_entry> fix;
  // all: every entry counted from the log; else those that disagree.
  auto listed = store::list_inbox_by_id(reads(self), user, &fix, all);
  if (!listed)
    return listed.error();
  for (auto& e : fix)
    mark(self, {user, e.conversation}, e);
  return uint64_t{fix.size()};
}

caf::expected<uint64_t> rebuild(self_ptr self, user_id user, bool all) {
  if (user != 0)
    return rebuild_user(self, user, all);
  auto users = store::users_with_conversations(*self->state.kv);
  if (!users)
    return users.error();
  uint64_t n = 0;
  for (auto u : *users) {
    auto r = rebuild_user(self, u, all);
    if (!r)
      return r;
    n += *r;
  }
  return n;
}

} // namespace

inbox_actor::behavior_type inbox_impl(self_ptr self,
                                      std::shared_ptr<kv_backend> kv,
                                      store_writer_actor writer,
                                      bool reconcile_at_start,
                                      caf::timespan flush_delay,
                                      std::shared_ptr<node_metrics> metrics) {
  auto& st = self->state;
  st.kv = std::move(kv);
  st.writer = std::move(writer);
  st.flush_delay = flush_delay;
  if (auto p = store::stored_partitions(*st.kv); p && *p > 0)
    st.partitions = *p;
  if (reconcile_at_start) {
    auto n = rebuild(self, 0, false);
    if (!n)
      spdlog::error("inbox reconciliation failed error=\"{}\"",
                    to_string(n.error()));
    else
      spdlog::info("inbox reconciled repaired_entries={}", *n);
  }
  return {
    [self, metrics](deliver_atom, const projection_batch& batch) {
      if (metrics)
        metrics->projection_backlog -= int64_t(batch.events.size());
      for (auto& ev : batch.events) {
        if (ev.is_message)
          on_messages(self, ev.msg, ev.to);
        else
          on_receipt(self, ev.receipt);
      }
    },
    [self, metrics](deliver_atom, const stored_message& msg,
                    const std::vector<user_id>& to) {
      if (metrics)
        --metrics->projection_backlog;
      on_messages(self, msg, to);
    },
    [self, metrics](receipt_atom, const receipt_event& ev,
                    const std::vector<user_id>&) {
      if (metrics)
        --metrics->projection_backlog;
      on_receipt(self, ev);
    },
    [self](caf::get_atom,
           user_id user) -> caf::result<std::vector<inbox_entry>> {
      std::vector<inbox_entry> stale;
      auto listed = store::list_inbox_by_id(reads(self), user, &stale);
      if (!listed)
        return std::move(listed.error());
      // Entries changed but not yet written: the cache is ahead.
      for (auto& e : *listed)
        if (self->state.dirty.count({user, e.conversation}))
          e = self->state.cache[{user, e.conversation}];
      for (auto& e : stale)
        if (!self->state.dirty.count({user, e.conversation}))
          mark(self, {user, e.conversation}, e);
      store::sort_inbox(*listed);
      return std::move(*listed);
    },
    [self](caf::put_atom, user_id user, conversation_id conv, bool archived,
           bool pinned, bool muted) -> caf::result<inbox_entry> {
      auto* e = entry(self, {user, conv});
      if (!e)
        return caf::make_error(errc::forbidden, "not a member");
      auto next = *e;
      next.archived = archived;
      next.pinned = pinned;
      next.muted = muted;
      self->state.cache[{user, conv}] = next;
      write_batch batch;
      store::add_inbox_flags(batch, user, conv, archived, pinned, muted);
      auto rp = self->make_response_promise<inbox_entry>();
      auto epoch = self->state.epoch;
      self
        ->request(self->state.writer, timeouts::commit, commit_atom::value,
                  writer_ids::inbox(inbox_shard), epoch, std::move(batch))
        .then([rp, next](uint64_t) mutable { rp.deliver(next); },
              // A timeout too (retryable): the flags are a whole value, so
              // a late landing and the client's retry write the same.
              [self, rp, epoch](caf::error& err) mutable {
                auto& cur = self->state.epoch;
                cur = std::max(cur, next_epoch(err, epoch));
                rp.deliver(std::move(err));
              });
      return rp;
    },
    [self](rebuild_atom, user_id user, bool all) -> caf::result<uint64_t> {
      auto n = rebuild(self, user, all);
      if (!n)
        return std::move(n.error());
      spdlog::info("inbox rebuilt user={} all={} entries={}", user, all, *n);
      return *n;
    },
    [self](caf::flush_atom) { flush(self); },
  };
}

namespace {

void start_worker(
  inbox_supervisor_actor::stateful_pointer<inbox_supervisor_state> self,
  bool reconcile) {
  auto& st = self->state;
  st.worker = st.detached
                ? self->spawn<caf::detached>(inbox_impl, st.kv, st.writer,
                                             reconcile, st.flush_delay,
                                             st.metrics)
                : self->spawn(inbox_impl, st.kv, st.writer, reconcile,
                              st.flush_delay, st.metrics);
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
    [self](caf::flush_atom) { forward(self); },
    [self](caf::get_atom) { return self->state.worker; },
  };
}

} // namespace parley
