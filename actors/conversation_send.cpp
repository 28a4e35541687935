// The conversation's send path: its state's life (init, load, the queries
// the other parts use), answers to every asker, and emission for delivery.
// Admission is in conversation_admit.cpp; sequencing and the commit in
// conversation_commit.cpp.

#include "actors/conversation_send.hpp"

#include <algorithm>

#include <caf/event_based_actor.hpp>

#include "actors/conversation.hpp"
#include "actors/conversation_memberships.hpp"
#include "actors/conversation_send_detail.hpp"
#include "runtime/core/errors.hpp"

namespace parley::conversation_send {

void init(conversation_state& st) {
  auto& s = st.send;
  s.group_jitter.seed(static_cast<std::minstd_rand::result_type>(st.id));
  s.recent.set_capacity(st.deps.limits.idempotency_cache);
  s.committed.set_capacity(st.deps.limits.idempotency_filter);
}

void load(conversation_state& st, const conversation_snapshot& snap) {
  auto& s = st.send;
  s.head = snap.head;
  s.seqs = sequence_allocator{snap.head};
  // An hour of margin for a clock that stepped back between commits.
  if (snap.head > 0)
    s.old_keys_live_until_ms = snap.head_sent_at_ms
                               + st.deps.limits.idempotency_window_ms
                               + 3600 * 1000;
}

sequence head(const conversation_state& st) {
  return st.send.head;
}

sequence next_sequence(const conversation_state& st) {
  return st.send.seqs.next();
}

bool committing(const conversation_state& st) {
  return !st.send.inflight.empty();
}

bool busy(const conversation_state& st) {
  return !st.send.queue.empty() || !st.send.inflight.empty()
         || st.send.changing;
}

size_t in_flight(const conversation_state& st) {
  return st.send.inflight.size();
}

size_t queued(const conversation_state& st) {
  return st.send.queue.size();
}

std::vector<send_key> unanswered_keys(const conversation_state& st) {
  std::vector<send_key> out;
  for (auto& [k, p] : st.send.by_key)
    out.push_back(k);
  return out;
}

void fail_all(conversation_self self, const caf::error& why) {
  auto& st = self->state;
  for (auto& [seq, p] : st.send.inflight)
    fail(self, *p, why);
  st.send.inflight.clear();
  for (auto& p : st.send.queue)
    if (!p->done)
      fail(self, *p, why);
  st.send.queue.clear();
}

send_result result_of(conversation_id conv, sequence seq, int64_t sent_at,
                      bool dedup) {
  return send_result{make_server_message_id(conv, seq), seq, sent_at, dedup};
}

/// Answers every promise of `p`; the first asker gets deduplicated = false
/// unless the key was already committed before this incarnation saw it.
/// An asker whose request differs from the answered one (`digest`) gets
/// CONFLICT; a retry gives back the group token it took.
void answer(self_ptr self, pending& p, send_result res, uint64_t digest) {
  auto deliver = [self, digest](std::vector<send_asker>& promises,
                                send_result res) {
    for (auto& rp : promises) {
      if (conflicting(rp.digest, digest)) {
        rp.deliver(reused_key());
        continue;
      }
      if (res.deduplicated && rp.took_group_token)
        refund_group_send(self);
      rp.deliver(res);
      res.deduplicated = true;
    }
  };
  if (p.change && conversation_memberships::owes(self->state, res.server_sequence)) {
    // A membership change (or its retry) is answered once the members'
    // indexes hold it, so that a sync right after the answer lists the
    // conversation; else with a retryable error (the change stays).
    conversation_memberships::when_acked(
      self, res.server_sequence,
      [deliver, promises = std::move(p.promises),
       res](const caf::error& err) mutable {
        if (!err) {
          deliver(promises, res);
          return;
        }
        for (auto& rp : promises)
          rp.deliver(err);
      });
  } else {
    deliver(p.promises, res);
  }
  p.promises.clear();
  p.done = true;
  self->state.send.by_key.erase(key_of(p.req));
}

void fail(self_ptr self, pending& p, const caf::error& err) {
  for (auto& rp : p.promises)
    rp.deliver(err);
  p.promises.clear();
  p.done = true;
  self->state.send.by_key.erase(key_of(p.req));
}

void remember(self_ptr self, const key& k, send_result res,
              uint64_t digest) {
  res.deduplicated = true; // every later answer for this key is a repeat
  self->state.send.recent.add(k, res, digest);
}

void note_committed(self_ptr self, const key& k, int64_t at_ms) {
  auto& st = self->state;
  auto& s = st.send;
  auto live_until = s.committed.add(hash_of(k), at_ms, st.deps.clock(),
                                    st.deps.limits.idempotency_window_ms);
  // A hash dropped for room while its key is live: until its window ends,
  // unknown keys are looked up in the store again.
  s.old_keys_live_until_ms = std::max(s.old_keys_live_until_ms, live_until);
}

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
  conversation_upkeep::note_emitted(self, msg.seq);
}

void advance_head(self_ptr self, sequence seq) {
  auto& st = self->state;
  if (seq <= st.send.head)
    return;
  if (st.deps.metrics)
    st.deps.metrics->outbox_backlog += int64_t(seq - st.send.head);
  st.send.head = seq;
}

} // namespace parley::conversation_send
