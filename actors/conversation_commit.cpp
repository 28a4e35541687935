// The conversation's send path from a resolved send to its commit:
// sequencing in epochs, the commit through the store writer (and its
// roll-back), the queue that keeps answers in arrival order, and the
// ordering of a membership change among the sends around it.

#include "actors/conversation_send.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "actors/conversation.hpp"
#include "actors/conversation_send_detail.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/conversation_store.hpp"

namespace parley::conversation_send {

namespace {

/// A commit of the current epoch failed: every commit of this epoch still in
/// flight is doomed too (the writer fences them), so fail them all now and
/// reuse their sequences in a new epoch.
void roll_back(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  std::optional<sequence> first_doomed;
  if (!st.send.inflight.empty())
    first_doomed = st.send.inflight.begin()->first;
  for (auto& [seq, p] : st.send.inflight)
    fail(self, *p, err);
  st.send.inflight.clear();
  st.send.seqs.roll_back(first_doomed);
  conversation_upkeep::watermark_lost(st);
  spdlog::warn("commit failed conversation={} error=\"{}\" epoch={} "
               "next_seq={}",
               st.id, to_string(err), st.send.seqs.epoch(),
               st.send.seqs.next());
}

} // namespace

namespace {

/// Schedules the commits' deadline tick if one is due (reply_deadlines).
void arm_commits(self_ptr self) {
  auto& t = self->state.send.commits;
  if (t.arm())
    self->delayed_send(self, t.period(), expire_atom::value);
}

} // namespace

void commit_as(self_ptr self, uint64_t writer, uint64_t epoch,
               write_batch batch, commit_done done) {
  auto& st = self->state;
  auto tag = st.send.commits.add(self->clock().now(), std::move(done));
  self->send(st.deps.writer, commit_atom::value,
             tagged_commit{tag, writer, epoch, std::move(batch)});
  arm_commits(self);
}

void on_commit_answer(self_ptr self, commit_answer& a) {
  auto done = self->state.send.commits.take(a.tag);
  if (!done) {
    // Timed out already (its outcome was taken as unknown), as CAF drops
    // a response that comes after its request's timeout.
    spdlog::debug("late commit answer dropped conversation={} tag={}",
                  self->state.id, a.tag);
    return;
  }
  (*done)(a.err);
}

void on_expire(self_ptr self) {
  auto& t = self->state.send.commits;
  t.tick();
  t.expire(self->clock().now(), [self](uint64_t, commit_done& done) {
    // An earlier timeout may have ended the actor: like CAF after quit(),
    // run no more handlers.
    if (self->getf(caf::abstract_actor::is_shutting_down_flag))
      return;
    done(caf::make_error(caf::sec::request_timeout));
  });
  if (!self->getf(caf::abstract_actor::is_shutting_down_flag))
    arm_commits(self);
}

void commit(self_ptr self, write_batch batch,
            std::function<void()> on_ok,
            std::function<void(const caf::error&)> on_fail) {
  auto& st = self->state;
  auto epoch = st.send.seqs.epoch();
  commit_as(self, writer_ids::conversation(st.id), epoch, std::move(batch),
        [=](const caf::error& err) {
          if (!err) {
            on_ok();
            return;
          }
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
          if (epoch == self->state.send.seqs.epoch())
            roll_back(self, err);
          on_fail(err);
        });
}

namespace {


void commit_new(self_ptr self, const pending_ptr& p) {
  auto& st = self->state;
  auto& m = p->msg;
  m.conversation = st.id;
  m.seq = st.send.seqs.assign();
  m.sender_user = p->req.sender_user;
  m.sender_device = p->req.sender_device;
  m.client_message_id = p->req.client_message_id;
  m.sent_at_ms = st.deps.clock();
  m.kind = p->req.kind;
  m.payload = std::move(p->req.payload);
  m.reply_to = p->req.reply_to;
  conversation_upkeep::guard_key(st, key_of(p->req));
  st.send.inflight.emplace(m.seq, p);
  write_batch batch;
  store::add_message(batch, m, p->digest);
  conversation_upkeep::add_watermark_if_due(st, batch);
  commit(
    self, std::move(batch),
    [self, p] {
      auto& st = self->state;
      if (p->done) {
        // Cannot happen while the writer fences failed epochs.
        spdlog::critical("invariant broken: committed after roll-back "
                         "conversation={} seq={}",
                         st.id, p->msg.seq);
        std::abort();
      }
      st.send.inflight.erase(p->msg.seq);
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
      if (st.send.inflight.empty())
        drain(self); // a membership change may wait for this
    },
    [self](const caf::error&) {
      // roll_back failed `p` together with the rest of its epoch.
      drain(self);
    });
}

} // namespace

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
  if (auto err = conversation_groups::plan_change(st, c, st.send.seqs.next(),
                                                  changed)) {
    fail(self, *p, err);
    return;
  }
  auto& m = p->msg;
  m.conversation = st.id;
  m.seq = st.send.seqs.assign();
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
  st.send.inflight.emplace(m.seq, p);
  st.send.changing = true;
  write_batch batch;
  conversation_groups::write_create(batch, st, c, m.sent_at_ms);
  store::add_message(batch, m);
  conversation_groups::write_members(batch, st, changed, m.seq);
  commit(
    self, std::move(batch),
    [self, p, changed, keyed] {
      auto& st = self->state;
      auto& c = *p->change;
      st.send.inflight.erase(p->msg.seq);
      advance_head(self, p->msg.seq);
      conversation_groups::apply_change(st, c, changed, p->msg.sent_at_ms);
      spdlog::info("group changed conversation={} change={} actor={} "
                   "members_changed={} seq={}",
                   st.id, c.change, c.actor, changed.size(), p->msg.seq);
      emit(self, p->msg);
      conversation_memberships::relay(self, changed, p->msg.seq);
      auto res = result_of(st.id, p->msg.seq, p->msg.sent_at_ms, false);
      if (keyed) {
        remember(self, key_of(p->req), res);
        note_committed(self, key_of(p->req), p->msg.sent_at_ms);
      }
      answer(self, *p, res);
      st.send.changing = false;
      conversation_upkeep::schedule_watermark(self);
      drain(self);
    },
    [self](const caf::error&) {
      self->state.send.changing = false; // roll_back failed `p`
      drain(self);
    });
}

/// Moves resolved sends off the front of the queue, in arrival order.
void drain(self_ptr self) {
  auto& st = self->state;
  while (!st.send.changing && !st.send.queue.empty()
         && st.send.queue.front()->ph != pending::phase::lookup) {
    auto p = st.send.queue.front();
    if (p->change && p->ph == pending::phase::fresh) {
      // A membership change commits alone, after every send before it:
      // those were accepted under the old membership.
      if (!st.send.inflight.empty())
        return;
      st.send.queue.pop_front();
      commit_change(self, p);
      continue;
    }
    st.send.queue.pop_front();
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

} // namespace parley::conversation_send
