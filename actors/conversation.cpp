#include "actors/conversation.hpp"
#include "actors/conversation_detail.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/conversation_store.hpp"

namespace parley {

namespace {

using conversation_detail::self_ptr;
using pending = conversation_state::pending;
using pending_ptr = conversation_state::pending_ptr;
using key = conversation_state::key;

} // namespace

namespace conversation_detail {

send_result result_of(conversation_id conv, sequence seq, int64_t sent_at,
                      bool dedup) {
  return send_result{make_server_message_id(conv, seq), seq, sent_at, dedup};
}

/// Answers every promise of `p`; the first asker gets deduplicated = false
/// unless the key was already committed before this incarnation saw it.
/// An asker whose request differs from the answered one (`digest`) gets
/// CONFLICT; a retry gives back the group token it took.
void answer(self_ptr self, pending& p, send_result res, uint64_t digest) {
  for (auto& rp : p.promises) {
    if (conflicting(rp.digest, digest)) {
      rp.deliver(reused_key());
      continue;
    }
    if (res.deduplicated && rp.took_group_token)
      refund_group_send(self);
    rp.deliver(res);
    res.deduplicated = true;
  }
  p.promises.clear();
  p.done = true;
  self->state.by_key.erase(key_of(p.req));
}

void fail(self_ptr self, pending& p, const caf::error& err) {
  for (auto& rp : p.promises)
    rp.deliver(err);
  p.promises.clear();
  p.done = true;
  self->state.by_key.erase(key_of(p.req));
}

void remember(self_ptr self, const key& k, send_result res,
              uint64_t digest) {
  res.deduplicated = true; // every later answer for this key is a repeat
  self->state.recent.add(k, res, digest);
}

void note_committed(self_ptr self, const key& k, int64_t at_ms) {
  auto& st = self->state;
  auto live_until = st.committed.add(hash_of(k), at_ms, st.deps.clock(),
                                     st.deps.limits.idempotency_window_ms);
  // A hash dropped for room while its key is live: until its window ends,
  // unknown keys are looked up in the store again.
  st.old_keys_live_until_ms = std::max(st.old_keys_live_until_ms, live_until);
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
  if (seq <= st.head)
    return;
  if (st.deps.metrics)
    st.deps.metrics->outbox_backlog += int64_t(seq - st.head);
  st.head = seq;
}

} // namespace conversation_detail

namespace {

using namespace conversation_detail;


/// A commit of the current epoch failed: every commit of this epoch still in
/// flight is doomed too (the writer fences them), so fail them all now and
/// reuse their sequences in a new epoch.
void roll_back(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  std::optional<sequence> first_doomed;
  if (!st.inflight.empty())
    first_doomed = st.inflight.begin()->first;
  for (auto& [seq, p] : st.inflight)
    fail(self, *p, err);
  st.inflight.clear();
  st.seqs.roll_back(first_doomed);
  conversation_upkeep::watermark_lost(st);
  spdlog::warn("commit failed conversation={} error=\"{}\" epoch={} next_seq={}",
               st.id, to_string(err), st.seqs.epoch(), st.seqs.next());
}

} // namespace

namespace conversation_detail {

void commit(self_ptr self, write_batch batch,
            std::function<void()> on_ok,
            std::function<void(const caf::error&)> on_fail) {
  auto& st = self->state;
  auto epoch = st.seqs.epoch();
  self->request(st.deps.writer, timeouts::commit, commit_atom::value,
                writer_ids::conversation(st.id), epoch, std::move(batch))
    .then([on_ok](uint64_t) { on_ok(); },
          [=](caf::error& err) {
            if (err == caf::sec::request_timeout) {
              // The writer did not answer in time: the batch may still be
              // written, so its sequences are not free for reuse (a
              // roll_back would give them to other messages). Refuse
              // everything that waits (retryable) and end; the directory
              // respawns the conversation, whose load_atom the writer
              // serves only after every commit sent before it (its mailbox
              // is FIFO and this actor's commits were all sent before it
              // ended). The new incarnation resumes after whatever landed,
              // so a retry of the same key gets the original answer if
              // the batch landed and one fresh commit if it did not.
              auto why = caf::make_error(
                errc::unavailable,
                "the store did not confirm the write in time; retry");
              conversation_upkeep::end_with(self, why);
              on_fail(why);
              return;
            }
            if (epoch == self->state.seqs.epoch())
              roll_back(self, err);
            on_fail(err);
          });
}

} // namespace conversation_detail

namespace {

using namespace conversation_detail;

void commit_new(self_ptr self, const pending_ptr& p) {
  auto& st = self->state;
  auto& m = p->msg;
  m.conversation = st.id;
  m.seq = st.seqs.assign();
  m.sender_user = p->req.sender_user;
  m.sender_device = p->req.sender_device;
  m.client_message_id = p->req.client_message_id;
  m.sent_at_ms = st.deps.clock();
  m.kind = p->req.kind;
  m.payload = std::move(p->req.payload);
  m.reply_to = p->req.reply_to;
  conversation_upkeep::guard_key(st, key_of(p->req));
  st.inflight.emplace(m.seq, p);
  write_batch batch;
  store::add_message(batch, m, p->digest);
  conversation_upkeep::add_watermark_if_due(st, batch);
  commit(
    self, std::move(batch),
    [self, p] {
      auto& st = self->state;
      if (p->done) {
        // Cannot happen while the writer fences failed epochs.
        spdlog::critical("invariant broken: committed after roll-back conversation={} seq={}",
                         st.id, p->msg.seq);
        std::abort();
      }
      st.inflight.erase(p->msg.seq);
      advance_head(self, p->msg.seq);
      emit(self, p->msg);
      if (st.kind == conversation_group)
        conversation_receipts::note_sender(st, p->msg.sender_user,
                                           p->msg.seq);
      auto res = result_of(st.id, p->msg.seq, p->msg.sent_at_ms, false);
      remember(self, key_of(p->req), res, p->digest);
      note_committed(self, key_of(p->req), p->msg.sent_at_ms);
      answer(self, *p, res, p->digest);
      if (st.deps.metrics && p->req.received_at_ns != 0)
        st.deps.metrics->send_latency.observe_since(p->req.received_at_ns);
      conversation_upkeep::schedule_watermark(self);
      conversation_upkeep::maybe_sweep(self);
      if (st.inflight.empty())
        drain(self); // a membership change may wait for this
    },
    [self](const caf::error&) {
      // roll_back failed `p` together with the rest of its epoch.
      drain(self);
    });
}

} // namespace

namespace conversation_detail {

/// Commits a membership change as a MEMBERSHIP message (sender device 0:
/// no client send key can collide with it) with the member records it
/// changes, in one batch. Sends behind it wait until it is applied.
void commit_change(self_ptr self, const pending_ptr& p) {
  auto& st = self->state;
  auto& c = *p->change;
  // A retried create: its creator with its request id gets the first
  // answer (the group's first event), and nothing is written.
  if (auto at = conversation_groups::retried_create(st, c)) {
    answer(self, *p, result_of(st.id, 1, *at, true));
    return;
  }
  std::vector<member> changed;
  if (auto err = conversation_groups::plan_change(st, c, st.seqs.next(),
                                                  changed)) {
    fail(self, *p, err);
    return;
  }
  auto& m = p->msg;
  m.conversation = st.id;
  m.seq = st.seqs.assign();
  m.sender_user = c.actor;
  m.sender_device = 0;
  // Keyed by the client's request id, if it gave one (its idempotency
  // record answers a retry); else by the sequence.
  bool keyed = !p->req.client_message_id.empty();
  m.client_message_id = keyed ? p->req.client_message_id
                              : "membership:" + std::to_string(m.seq);
  m.sent_at_ms = st.deps.clock();
  m.kind = message_kind_membership;
  m.payload = store::membership_payload(c);
  st.inflight.emplace(m.seq, p);
  st.changing = true;
  write_batch batch;
  conversation_groups::write_create(batch, st, c, m.sent_at_ms);
  store::add_message(batch, m);
  conversation_groups::write_members(batch, st, changed);
  commit(
    self, std::move(batch),
    [self, p, changed, keyed] {
      auto& st = self->state;
      auto& c = *p->change;
      st.inflight.erase(p->msg.seq);
      advance_head(self, p->msg.seq);
      conversation_groups::apply_change(st, c, changed, p->msg.sent_at_ms);
      spdlog::info("group changed conversation={} change={} actor={} "
                   "members_changed={} seq={}",
                   st.id, c.change, c.actor, changed.size(), p->msg.seq);
      emit(self, p->msg);
      auto res = result_of(st.id, p->msg.seq, p->msg.sent_at_ms, false);
      if (keyed) {
        remember(self, key_of(p->req), res);
        note_committed(self, key_of(p->req), p->msg.sent_at_ms);
      }
      answer(self, *p, res);
      st.changing = false;
      conversation_upkeep::schedule_watermark(self);
      drain(self);
    },
    [self](const caf::error&) {
      self->state.changing = false; // roll_back failed `p`
      drain(self);
    });
}

/// Moves resolved sends off the front of the queue, in arrival order.
void drain(self_ptr self) {
  auto& st = self->state;
  while (!st.changing && !st.queue.empty()
         && st.queue.front()->ph != pending::phase::lookup) {
    auto p = st.queue.front();
    if (p->change && p->ph == pending::phase::fresh) {
      // A membership change commits alone, after every send before it:
      // those were accepted under the old membership.
      if (!st.inflight.empty())
        return;
      st.queue.pop_front();
      commit_change(self, p);
      continue;
    }
    st.queue.pop_front();
    switch (p->ph) {
      case pending::phase::failed:
        fail(self, *p, p->err);
        break;
      case pending::phase::duplicate: {
        auto res = result_of(st.id, p->hit.seq, p->hit.accepted_at_ms, true);
        remember(self, key_of(p->req), res, p->hit.digest);
        answer(self, *p, res, p->hit.digest);
        break;
      }
      default: {
        // Removed by a change queued ahead of this send?
        caf::error refused;
        if (!conversation_groups::is_current_member(st, p->req.sender_user))
          refused = caf::make_error(errc::not_member,
                                    "sender is not a member");
        else
          refused = check_reply_to(st, p->req.sender_user, p->req.reply_to);
        if (!refused) {
          commit_new(self, p);
          break;
        }
        // Refused: it costs the large group no token.
        if (!p->promises.empty() && p->promises.front().took_group_token)
          refund_group_send(self);
        fail(self, *p, refused);
      }
    }
  }
}

} // namespace conversation_detail

namespace {

/// Runs `f` now, or once the conversation has loaded; `rp` (a promise or
/// send_asker) gets the error if the actor ends before that.
template <class F, class Promise>
void when_ready(self_ptr self, F f, Promise rp) {
  if (self->state.ready)
    f();
  else
    self->state.stash.push_back(
      {std::move(f),
       [rp](const caf::error& err) mutable { rp.deliver(err); }});
}

void become_ready(self_ptr self) {
  auto& st = self->state;
  st.ready = true;
  if (!st.exists)
    conversation_upkeep::schedule_retire(self);
  // Persist what the relay re-emitted before new sends.
  conversation_upkeep::flush_watermark(self);
  auto stash = std::move(st.stash);
  for (auto& s : stash)
    s.run();
  conversation_upkeep::maybe_sweep(self);
}

} // namespace

conversation_actor::behavior_type
conversation_impl(self_ptr self, conversation_id id, conversation_deps deps) {
  auto& st = self->state;
  st.id = id;
  st.group_jitter.seed(static_cast<std::minstd_rand::result_type>(id));
  st.deps = std::move(deps);
  st.recent.set_capacity(st.deps.limits.idempotency_cache);
  st.committed.set_capacity(st.deps.limits.idempotency_filter);
  // Ordered after every commit of an earlier incarnation (see commit).
  self->request(st.deps.writer, timeouts::commit, load_atom::value, id)
    .then(
      [self](conversation_snapshot& snap) {
        auto& st = self->state;
        st.exists = snap.exists;
        st.kind = snap.kind;
        st.head = snap.head;
        st.seqs = sequence_allocator{snap.head};
        conversation_upkeep::load(st, snap);
        // An hour of margin for a clock that stepped back between commits.
        if (snap.head > 0)
          st.old_keys_live_until_ms = snap.head_sent_at_ms
                                      + st.deps.limits.idempotency_window_ms
                                      + 3600 * 1000;
        conversation_groups::load(st, snap);
        conversation_receipts::load(st, snap.receipts);
        conversation_upkeep::relay(self, [self] { become_ready(self); });
      },
      [self](caf::error& err) {
        spdlog::error("conversation load failed conversation={} error=\"{}\"", self->state.id,
                      to_string(err));
        conversation_upkeep::end_with(self, err); // the directory respawns it
      });
  return {
    [self](retire_atom) { conversation_upkeep::on_retire(self); },
    [self](send_atom, send_request& req) -> caf::result<send_result> {
      send_asker to{self->make_response_promise<send_result>()};
      auto rp = to.rp;
      when_ready(
        self, [self, req = std::move(req), to]() mutable {
          handle_send(self, req, to);
        },
        to);
      return rp;
    },
    [self](caf::join_atom, user_id user) -> caf::result<sequence> {
      auto rp = self->make_response_promise<sequence>();
      when_ready(
        self,
        [self, user, rp] { conversation_groups::handle_join(self, user, rp); },
        rp);
      return rp;
    },
    [self](group_atom, group_change& c) -> caf::result<send_result> {
      auto rp = self->make_response_promise<send_result>();
      when_ready(
        self, [self, c = std::move(c), rp]() mutable {
          handle_change(self, c, rp);
        },
        rp);
      return rp;
    },
    [self](group_atom, user_id requester, user_id after,
           uint32_t limit) -> caf::result<group_info> {
      auto rp = self->make_response_promise<group_info>();
      auto report = [self, requester, after, limit, rp]() mutable {
        auto g = conversation_groups::group_page(self->state, requester, after,
                                                 limit);
        if (g)
          rp.deliver(std::move(*g));
        else
          rp.deliver(std::move(g.error()));
      };
      when_ready(self, report, rp);
      return rp;
    },
    [self](caf::get_atom) -> caf::result<conversation_status> {
      auto rp = self->make_response_promise<conversation_status>();
      auto report = [self, rp]() mutable {
        auto& st = self->state;
        rp.deliver(conversation_status{st.head,
                                       conversation_upkeep::dispatched(st),
                                       st.inflight.size() + st.queue.size(),
                                       conversation_groups::member_count(st)});
      };
      when_ready(self, report, rp);
      return rp;
    },
    [self](receipt_atom, user_id user, device_id dev, int32_t kind,
           sequence seq, bool shared) -> caf::result<sequence> {
      if (!self->state.ready) {
        auto rp = self->make_response_promise<sequence>();
        when_ready(
          self, [self, user, dev, kind, seq, shared, rp]() mutable {
            auto r = conversation_receipts::handle_receipt(self, user, dev,
                                                           kind, seq, shared);
            if (r)
              rp.deliver(*r);
            else
              rp.deliver(r.error());
          },
          rp);
        return rp;
      }
      auto r = conversation_receipts::handle_receipt(self, user, dev, kind,
                                                     seq, shared);
      if (!r)
        return std::move(r.error());
      return *r;
    },
    [self](receipt_atom) -> std::vector<receipt_cursor> {
      return conversation_receipts::cursors(self->state);
    },
    [self](caf::flush_atom) { conversation_receipts::flush(self); },
    [self](caf::tick_atom) { conversation_upkeep::on_tick(self); },
  };
}

} // namespace parley
