// A send's admission: the checks that refuse it before it takes a key
// (membership, size, kind, reply reference, a large group's budget), and
// the idempotency key's three places of answers (recent answers in memory,
// a send of the same key in flight, the store's records), each of which
// tells a retry from a reused key by the request's digest.

#include "actors/conversation.hpp"
#include "actors/conversation_memberships.hpp"
#include "actors/conversation_send_detail.hpp"

#include <algorithm>
#include <random>

#include <caf/event_based_actor.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/conversation_store.hpp"

namespace parley::conversation_send {

void refund_group_send(self_ptr self) {
  auto& st = self->state;
  st.send.group_sends.refund(st.deps.limits.large_group_send, st.deps.clock());
}

bool conflicting(uint64_t a, uint64_t b) {
  return a != 0 && b != 0 && a != b;
}

caf::error reused_key() {
  return caf::make_error(errc::conflict,
                         std::string{"client_message_id was already used for "
                                     "a different message"});
}

caf::error check_reply_to(const conversation_state& st, user_id sender,
                          sequence reply_to) {
  if (reply_to == 0)
    return {};
  auto m = conversation_groups::find_member(st, sender);
  if (!m)
    return caf::make_error(errc::not_member, "sender is not a member");
  if (reply_to > st.send.head)
    return caf::make_error(errc::bad_request,
                           "reply_to_sequence " + std::to_string(reply_to)
                             + " is past the conversation's head "
                             + std::to_string(st.send.head));
  if (reply_to < std::max<sequence>(m->joined_at_sequence, 1))
    return caf::make_error(errc::forbidden,
                           "reply_to_sequence " + std::to_string(reply_to)
                             + " is before the sender joined");
  return {};
}

namespace {

bool within_window(self_ptr self, int64_t accepted_at_ms) {
  auto& st = self->state;
  return idempotency_live(st.deps.clock(), accepted_at_ms,
                          st.deps.limits.idempotency_window_ms);
}

} // namespace

void handle_send(self_ptr self, send_request& req, send_asker rp) {
  auto& st = self->state;
  if (!st.exists) {
    rp.deliver(caf::make_error(errc::not_found, "no such conversation"));
    return;
  }
  if (!conversation_groups::is_current_member(st, req.sender_user)) {
    rp.deliver(caf::make_error(errc::not_member, "sender is not a member"));
    return;
  }
  if (req.kind == message_kind_system || req.kind == message_kind_membership) {
    rp.deliver(caf::make_error(errc::bad_request,
                               "system and membership messages are the "
                               "server's"));
    return;
  }
  if (req.client_message_id.empty() || req.client_message_id.size() > 128) {
    rp.deliver(caf::make_error(errc::bad_request,
                               "client_message_id must have 1-128 bytes"));
    return;
  }
  if (req.payload.size() > st.deps.limits.max_payload_bytes) {
    rp.deliver(caf::make_error(errc::too_large, "payload too large"));
    return;
  }
  if (req.kind == message_kind_media) {
    // Its reference would be thrown away: media come with a later release.
    rp.deliver(caf::make_error(errc::bad_request,
                               "media messages are not supported yet"));
    return;
  }
  // A retry needs no token of the group, and its reference is checked
  // only once the key proves new (drain): the sender may have left and
  // rejoined since the first send was accepted.
  rp.digest = store::send_digest(req.kind, req.payload, req.reply_to);
  auto k = key_of(req);
  auto h = hash_of(k);
  bool known = may_be_known(self, h);
  if (answer_from_memory(self, k, h, known, rp))
    return;
  if (!known) {
    // Certainly new (the common case): refuse a bad reference before it
    // takes a token.
    if (auto e = check_reply_to(st, req.sender_user, req.reply_to)) {
      rp.deliver(std::move(e));
      return;
    }
  }
  if (conversation_groups::is_large(st)) {
    std::uniform_real_distribution<double> unit{0.0, 1.0};
    auto& s = st.send;
    auto wait = s.group_sends.take(st.deps.limits.large_group_send,
                                   st.deps.clock(), unit(s.group_jitter));
    if (wait > 0) {
      rp.deliver(caf::make_error(errc::rate_limited,
                                 std::string{"this large group takes fewer "
                                             "messages; retry later"},
                                 uint64_t{wait}));
      return;
    }
    rp.took_group_token = true;
  }
  auto p = std::make_shared<pending>();
  p->digest = rp.digest;
  p->req = std::move(req);
  enqueue(self, p, std::move(k), known, std::move(rp));
}

bool may_be_known(self_ptr self, uint64_t h) {
  auto& st = self->state;
  return st.send.committed.may_contain(h)
         || st.deps.clock() < st.send.old_keys_live_until_ms;
}

bool answer_from_memory(self_ptr self, const key& k, uint64_t h, bool known,
                        send_asker& rp) {
  auto& st = self->state;
  if (auto hit = known ? st.send.recent.find_with_digest(k, h)
                       : recent_sends::hit{};
      hit.res && within_window(self, hit.res->sent_at_ms)) {
    if (conflicting(hit.digest, rp.digest))
      rp.deliver(reused_key());
    else
      rp.deliver(*hit.res);
    return true;
  }
  if (auto i = st.send.by_key.find(k); i != st.send.by_key.end()) {
    // In flight: this asker shares its answer, or gets CONFLICT if it asks
    // something else (decided by answer(), once the store has said what
    // the key was first used for).
    i->second->promises.push_back(rp);
    return true;
  }
  return false;
}

void admit(self_ptr self, const pending_ptr& p, send_asker rp) {
  if (p->change && conversation_memberships::owes(self->state, UINT64_MAX)) {
    // A keyed change (maybe the retry of one whose answer timed out
    // waiting for its members' index rows): looked at once nothing is
    // owed, so that its answer, even from memory, comes after its rows.
    conversation_memberships::when_acked(
      self, UINT64_MAX, [self, p, rp](const caf::error& err) mutable {
        if (err)
          rp.deliver(err);
        else
          admit(self, p, std::move(rp));
      });
    return;
  }
  rp.digest = p->digest;
  auto k = key_of(p->req);
  auto h = hash_of(k);
  bool known = may_be_known(self, h);
  if (!answer_from_memory(self, k, h, known, rp))
    enqueue(self, p, std::move(k), known, std::move(rp));
}

void enqueue(self_ptr self, const pending_ptr& p, key k, bool known,
             send_asker rp) {
  auto& st = self->state;
  p->promises.push_back(std::move(rp));
  st.send.by_key.emplace(k, p);
  st.send.queue.push_back(p);
  if (!known) {
    // This incarnation never committed the key, and no earlier
    // incarnation's key can be live: the store has nothing to say.
    p->ph = pending::phase::fresh;
    drain(self);
    return;
  }
  self
    ->request(st.deps.reader, timeouts::ask, lookup_atom::value, st.id,
              k.user, k.device, k.cmid)
    .then(
      [self, p](idempotency_hit& hit) {
        // A repeat: answer() tells each asker's retry from a reused key.
        if (hit.found && within_window(self, hit.accepted_at_ms)) {
          p->hit = hit;
          p->ph = pending::phase::duplicate;
        } else {
          p->ph = pending::phase::fresh;
        }
        drain(self);
      },
      [self, p](caf::error& err) {
        // A timeout too: nothing was assigned or written for `p`; its
        // askers get a retryable error (request_timeout is UNAVAILABLE on
        // the wire) and a retry looks the key up again.
        p->ph = pending::phase::failed;
        p->err = err;
        drain(self);
      });
}

void handle_change(self_ptr self, group_change& c,
                   caf::typed_response_promise<send_result> rp) {
  auto p = std::make_shared<pending>();
  // A change with the client's request id is deduplicated as a send is,
  // under the author's key (device 0: the user's, as for a create).
  bool keyed = c.change != membership_change::created && !c.request_id.empty();
  if (keyed) {
    p->req.sender_user = c.actor;
    p->req.client_message_id = change_key_prefix + c.request_id;
  }
  p->change = std::move(c);
  if (keyed) {
    admit(self, p, send_asker{rp});
    return;
  }
  p->ph = pending::phase::fresh;
  p->promises.push_back(send_asker{rp});
  self->state.send.queue.push_back(p);
  drain(self);
}

} // namespace parley::conversation_send
