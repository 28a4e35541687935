// The conversation actor's upkeep, apart from its send path: re-emitting the
// outbox after a restart, persisting the outbox watermark, sweeping
// idempotency records whose window has passed, and retiring an actor whose
// conversation does not exist.

#include "actors/conversation_detail.hpp"

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/conversation_store.hpp"

namespace parley::conversation_detail {

void emit(self_ptr self, const stored_message& msg) {
  auto& st = self->state;
  auto to = conversation_groups::members_at(st, msg.seq);
  bool large = conversation_groups::is_large(st);
  // A large group's message would touch every member's inbox entry: those
  // entries are brought up to date when their owner lists the inbox (the
  // listing recomputes entries behind the log) instead of on every message.
  if (st.deps.projection && !large)
    self->send(st.deps.projection, deliver_atom::value, msg, to);
  // Large groups go to the fan-out shards, apart from everyone else.
  self->send(large && st.deps.fanout ? st.deps.fanout : st.deps.delivery,
             deliver_atom::value, msg, std::move(to));
  if (msg.seq > st.dispatched) {
    if (st.deps.metrics)
      st.deps.metrics->outbox_backlog -= int64_t(msg.seq - st.dispatched);
    st.dispatched = msg.seq;
  }
  st.watermark_dirty = true;
}

void schedule_watermark(self_ptr self) {
  auto& st = self->state;
  if (!st.watermark_dirty || st.tick_scheduled || !st.inflight.empty())
    return;
  st.tick_scheduled = true;
  self->delayed_send(self, st.deps.limits.watermark_delay,
                  caf::tick_atom::value);
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  st.tick_scheduled = false;
  if (!st.watermark_dirty || !st.inflight.empty())
    return; // after the commits in flight, schedule_watermark runs again
  // Without a sync of its own: it rides with the next group commit (or an
  // unsynced write when there is none). A crash that loses it only makes
  // the restart re-emit from an older watermark; devices skip what they
  // have. Everything up to it is committed (nothing is in flight).
  write_batch batch;
  store::add_watermark(batch, st.id, st.dispatched);
  st.watermark_sent = st.dispatched;
  st.watermark_dirty = false;
  self->send(st.deps.writer, caf::put_atom::value, std::move(batch));
}

void relay(self_ptr self, std::function<void()> done) {
  auto& st = self->state;
  if (st.dispatched >= st.head) {
    done();
    return;
  }
  self
    ->request(st.deps.reader, timeouts::scan, fetch_atom::value, st.id,
              st.dispatched, st.deps.limits.outbox_page)
    .then(
      [self, done](std::vector<stored_message>& msgs) {
        auto& st = self->state;
        for (auto& msg : msgs)
          if (msg.seq <= st.head)
            emit(self, msg);
        if (msgs.empty())
          st.dispatched = st.head; // cannot happen: head came from the log
        relay(self, done);
      },
      [self](caf::error& err) {
        // A timeout too: the next incarnation re-reads from the watermark
        // (nothing of this one's emission is lost; repeats are skipped).
        spdlog::error("outbox read failed conversation={} error=\"{}\"",
                      self->state.id, to_string(err));
        end_with(self, err);
      });
}

void maybe_sweep(self_ptr self) {
  auto& st = self->state;
  auto now = st.deps.clock();
  if (st.sweeping || now - st.last_sweep_ms < st.deps.limits.sweep_interval_ms)
    return;
  st.sweeping = true;
  st.last_sweep_ms = now;
  // A send under way may be re-using an expired key: its new record must
  // survive the deletions, which are committed after it.
  for (auto& [k, p] : st.by_key)
    st.sweep_guard.insert(k);
  auto cutoff = now - st.deps.limits.idempotency_window_ms;
  auto finish = [self] {
    self->state.sweeping = false;
    self->state.sweep_guard.clear();
  };
  self
    ->request(st.deps.reader, timeouts::scan, sweep_atom::value, st.id,
              st.swept, cutoff, st.deps.limits.sweep_page)
    .then(
      [self, finish](idempotency_sweep& found) {
        auto& st = self->state;
        if (found.swept <= st.swept) {
          finish();
          return;
        }
        write_batch batch;
        size_t erased = 0;
        for (auto& k : found.expired) {
          if (st.sweep_guard.count(
                send_key{k.user, k.device, k.client_message_id}))
            continue;
          store::erase_idempotency(batch, st.id, k);
          ++erased;
        }
        store::add_sweep_mark(batch, st.id, found.swept);
        // Commits after this one are ordered after it: no guard needed.
        st.sweep_guard.clear();
        auto swept = found.swept;
        auto more = found.more;
        commit(
          self, std::move(batch),
          [self, swept, more, erased] {
            auto& st = self->state;
            st.swept = std::max(st.swept, swept);
            st.sweeping = false;
            spdlog::debug("idempotency sweep conversation={} erased={} "
                          "swept_seq={}",
                          st.id, erased, swept);
            if (more) {
              st.last_sweep_ms = 0; // continue at once
              maybe_sweep(self);
            }
          },
          [self](const caf::error&) { self->state.sweeping = false; });
      },
      [self, finish](caf::error& err) {
        // A timeout too: nothing was written; the sweep runs again later.
        spdlog::warn("idempotency sweep failed conversation={} error=\"{}\"",
                     self->state.id, to_string(err));
        finish();
      });
}

void schedule_retire(self_ptr self) {
  auto& st = self->state;
  if (st.deps.limits.retire_unused.count() > 0)
    self->delayed_send(self, st.deps.limits.retire_unused,
                       retire_atom::value);
}

void on_retire(self_ptr self) {
  auto& st = self->state;
  if (st.exists)
    return; // created meanwhile
  if (conversation_groups::creating(st) || !st.queue.empty() || !st.inflight.empty()
      || st.changing) {
    schedule_retire(self); // a creation is under way; if it fails, later
    return;
  }
  // A normal exit: the directory forgets the id without a respawn, and the
  // next lookup spawns a fresh actor. Requests already in the mailbox get
  // `request_receiver_down` (UNAVAILABLE, retry).
  self->quit();
}

void end_with(self_ptr self, const caf::error& why) {
  auto& st = self->state;
  spdlog::warn("conversation ending conversation={} in_flight={} queued={} "
               "stashed={} reason=\"{}\"",
               st.id, st.inflight.size(), st.queue.size(), st.stash.size(),
               to_string(why));
  for (auto& [seq, p] : st.inflight)
    fail(self, *p, why);
  st.inflight.clear();
  for (auto& p : st.queue)
    if (!p->done)
      fail(self, *p, why);
  st.queue.clear();
  auto stash = std::move(st.stash);
  st.stash.clear();
  for (auto& s : stash)
    s.refuse(why);
  conversation_receipts::hand_over(self);
  self->quit(why);
}

} // namespace parley::conversation_detail
