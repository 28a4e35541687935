// The conversation actor's upkeep, apart from its send path: re-emitting the
// outbox after a restart, persisting the outbox watermark, sweeping
// idempotency records whose window has passed, and retiring an actor whose
// conversation does not exist.

#include "actors/conversation_upkeep.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "actors/conversation.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/conversation_store.hpp"

namespace parley::conversation_upkeep {

using conversation_send::commit;
using conversation_send::emit;

void load(conversation_state& st, const conversation_snapshot& snap) {
  auto& u = st.upkeep;
  if (st.deps.metrics)
    st.deps.metrics->outbox_backlog
      += int64_t(snap.head - std::min(snap.dispatched, snap.head));
  u.dispatched = std::min(snap.dispatched, snap.head);
  u.watermark_sent = u.dispatched;
  u.swept = snap.swept;
}

sequence dispatched(const conversation_state& st) {
  return st.upkeep.dispatched;
}

void note_emitted(conversation_self self, sequence seq) {
  auto& st = self->state;
  auto& u = st.upkeep;
  if (seq > u.dispatched) {
    if (st.deps.metrics)
      st.deps.metrics->outbox_backlog -= int64_t(seq - u.dispatched);
    u.dispatched = seq;
  }
  u.watermark_dirty = true;
}

void add_watermark_if_due(conversation_state& st, write_batch& batch) {
  // The watermark rides along only every `watermark_every` messages: a
  // crash then re-emits at most that many (plus the idle delay's worth),
  // and most batches carry two records per message instead of three.
  auto& u = st.upkeep;
  if (u.watermark_dirty
      && u.dispatched >= u.watermark_sent + st.deps.limits.watermark_every) {
    store::add_watermark(batch, st.id, u.dispatched);
    u.watermark_sent = u.dispatched;
    u.watermark_dirty = false;
  }
}

void watermark_lost(conversation_state& st) {
  if (st.upkeep.dispatched > 0)
    st.upkeep.watermark_dirty = true;
}

void flush_watermark(conversation_self self) {
  if (self->state.upkeep.watermark_dirty)
    on_tick(self);
}

void guard_key(conversation_state& st, const send_key& k) {
  if (st.upkeep.sweeping)
    st.upkeep.sweep_guard.insert(k);
}

void schedule_watermark(conversation_self self) {
  auto& st = self->state;
  auto& u = st.upkeep;
  if (!u.watermark_dirty || u.tick_scheduled
      || conversation_send::committing(st))
    return;
  st.upkeep.tick_scheduled = true;
  self->delayed_send(self, st.deps.limits.watermark_delay,
                     caf::tick_atom::value);
}

void on_tick(conversation_self self) {
  auto& st = self->state;
  st.upkeep.tick_scheduled = false;
  if (!st.upkeep.watermark_dirty || conversation_send::committing(st))
    return; // after the commits in flight, schedule_watermark runs again
  // Without a sync of its own: it rides with the next group commit (or an
  // unsynced write when there is none). A crash that loses it only makes
  // the restart re-emit from an older watermark; devices skip what they
  // have. Everything up to it is committed (nothing is in flight).
  write_batch batch;
  store::add_watermark(batch, st.id, st.upkeep.dispatched);
  st.upkeep.watermark_sent = st.upkeep.dispatched;
  st.upkeep.watermark_dirty = false;
  self->send(st.deps.writer, caf::put_atom::value, std::move(batch));
}

void relay(conversation_self self, std::function<void()> done) {
  auto& st = self->state;
  if (st.upkeep.dispatched >= conversation_send::head(st)) {
    done();
    return;
  }
  self
    ->request(st.deps.reader, timeouts::scan, fetch_atom::value, st.id,
              st.upkeep.dispatched, st.deps.limits.outbox_page)
    .then(
      [self, done](std::vector<stored_message>& msgs) {
        auto& st = self->state;
        for (auto& msg : msgs)
          if (msg.seq <= conversation_send::head(st))
            emit(self, msg);
        if (msgs.empty())
          // Cannot happen: head came from the log.
          st.upkeep.dispatched = conversation_send::head(st);
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

void maybe_sweep(conversation_self self) {
  auto& st = self->state;
  auto now = st.deps.clock();
  auto& u = st.upkeep;
  if (u.sweeping || now - u.last_sweep_ms < st.deps.limits.sweep_interval_ms)
    return;
  st.upkeep.sweeping = true;
  st.upkeep.last_sweep_ms = now;
  // A send under way may be re-using an expired key: its new record must
  // survive the deletions, which are committed after it.
  for (auto& k : conversation_send::unanswered_keys(st))
    st.upkeep.sweep_guard.insert(k);
  auto cutoff = now - st.deps.limits.idempotency_window_ms;
  auto finish = [self] {
    self->state.upkeep.sweeping = false;
    self->state.upkeep.sweep_guard.clear();
  };
  self
    ->request(st.deps.reader, timeouts::scan, sweep_atom::value, st.id,
              st.upkeep.swept, cutoff, st.deps.limits.sweep_page)
    .then(
      [self, finish](idempotency_sweep& found) {
        auto& st = self->state;
        if (found.swept <= st.upkeep.swept) {
          finish();
          return;
        }
        write_batch batch;
        size_t erased = 0;
        for (auto& k : found.expired) {
          if (st.upkeep.sweep_guard.count(
                send_key{k.user, k.device, k.client_message_id}))
            continue;
          store::erase_idempotency(batch, st.id, k);
          ++erased;
        }
        store::add_sweep_mark(batch, st.id, found.swept);
        // Commits after this one are ordered after it: no guard needed.
        st.upkeep.sweep_guard.clear();
        auto swept = found.swept;
        auto more = found.more;
        commit(
          self, std::move(batch),
          [self, swept, more, erased] {
            auto& st = self->state;
            st.upkeep.swept = std::max(st.upkeep.swept, swept);
            st.upkeep.sweeping = false;
            spdlog::debug("idempotency sweep conversation={} erased={} "
                          "swept_seq={}",
                          st.id, erased, swept);
            if (more) {
              st.upkeep.last_sweep_ms = 0; // continue at once
              maybe_sweep(self);
            }
          },
          [self](const caf::error&) { self->state.upkeep.sweeping = false; });
      },
      [self, finish](caf::error& err) {
        // A timeout too: nothing was written; the sweep runs again later.
        spdlog::warn("idempotency sweep failed conversation={} error=\"{}\"",
                     self->state.id, to_string(err));
        finish();
      });
}

void schedule_retire(conversation_self self) {
  auto& st = self->state;
  if (st.deps.limits.retire_unused.count() > 0)
    self->delayed_send(self, st.deps.limits.retire_unused,
                       retire_atom::value);
}

void on_retire(conversation_self self) {
  auto& st = self->state;
  if (st.exists)
    return; // created meanwhile
  if (conversation_groups::creating(st) || conversation_send::busy(st)) {
    schedule_retire(self); // a creation is under way; if it fails, later
    return;
  }
  // Not while messages wait in the mailbox: a tagged send or receipt (the
  // client's hot path) is an ordinary message, which an ended actor drops
  // silently (a request would bounce at once), so they are answered first
  // (not_found) rather than left to their asker's deadline; then ask again.
  if (!self->mailbox().empty()) {
    self->send(self, retire_atom::value);
    return;
  }
  // A normal exit: the directory forgets the id without a respawn, and the
  // next lookup spawns a fresh actor. Requests that still reach the mailbox
  // get `request_receiver_down` (UNAVAILABLE, retry); tagged messages are
  // dropped and time out at their asker (UNAVAILABLE, retry).
  self->quit();
}

void end_with(conversation_self self, const caf::error& why) {
  auto& st = self->state;
  spdlog::warn("conversation ending conversation={} in_flight={} queued={} "
               "stashed={} reason=\"{}\"",
               st.id, conversation_send::in_flight(st),
               conversation_send::queued(st), st.stash.size(), to_string(why));
  conversation_send::fail_all(self, why);
  auto stash = std::move(st.stash);
  st.stash.clear();
  for (auto& s : stash)
    s.refuse(why);
  conversation_receipts::hand_over(self);
  self->quit(why);
}

} // namespace parley::conversation_upkeep
