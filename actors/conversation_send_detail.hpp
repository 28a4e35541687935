#pragma once

// Internal to the send path (conversation_send.hpp): the helpers its
// sources share: conversation_admit.cpp (checks and idempotency),
// conversation_commit.cpp (sequence, commit, the queue's order) and
// conversation_send.cpp (answers, emission, the part's queries). Not for
// the other parts.

#include <functional>
#include <string>

#include <caf/expected.hpp>

#include "actors/conversation.hpp"
#include "actors/conversation_send.hpp"

namespace parley::conversation_send {

using self_ptr = conversation_self;
using key = conversation_send_state::key;
using pending = conversation_send_state::pending;
using pending_ptr = conversation_send_state::pending_ptr;

/// The key a send is deduplicated under: its author's device and message
/// id. A group change with a request id uses device 0 and this prefix
/// before the id (no send has device 0).
inline key key_of(const send_request& req) {
  return {req.sender_user, req.sender_device, req.client_message_id};
}
inline const std::string change_key_prefix = "change:";

/// The answer for the message at `seq`.
send_result result_of(conversation_id conv, sequence seq, int64_t sent_at,
                      bool dedup);

/// Answers (or fails) every asker of `p` and forgets its key. `digest`:
/// the answered request's (0: any), see send_asker.
void answer(self_ptr self, pending& p, send_result res, uint64_t digest = 0);
void fail(self_ptr self, pending& p, const caf::error& err);

/// Keeps the answer for `k` for repeats (deduplicated from now on), with
/// the digest of the request it answered (0: unknown, matches any).
void remember(self_ptr self, const key& k,
              send_result res, uint64_t digest = 0);

/// Notes a key this incarnation committed at `at_ms`, so that later sends
/// of unknown keys can skip the store lookup.
void note_committed(self_ptr self, const key& k,
                    int64_t at_ms);

/// Moves the head to `seq` if it is further (and the outbox gauge along).
void advance_head(self_ptr self, sequence seq);

/// Moves resolved sends and changes off the front of the queue, in arrival
/// order.
void drain(self_ptr self);

/// A large group's send answered as a retry: gives back the token of the
/// group's bucket that handle_send took for it.
void refund_group_send(self_ptr self);

/// A reply's reference must name a message `sender` may see: at most the
/// head, and not before the sender joined (checked once a send's key
/// proves new: a retry is answered whatever the membership since).
caf::error check_reply_to(const conversation_state& st, user_id sender,
                          sequence reply_to);

/// Two requests of one key are not a send and its retry: both digests
/// known (non-zero) and different.
bool conflicting(uint64_t a, uint64_t b);

/// The CONFLICT answer to a client_message_id reused for other content.
caf::error reused_key();

/// Whether `k` may have been committed (by this incarnation, or by an
/// earlier one inside its window); false for a certainly new key, which
/// has no answer in memory or in the store. `h` is hash_of(k).
bool may_be_known(self_ptr self, uint64_t h);

/// Answers `rp` if its key's answer is in memory (a recent answer, or the
/// same key in flight, which it then shares); true if it did. `h` is
/// hash_of(k), `known` may_be_known(self, h).
bool answer_from_memory(self_ptr self, const key& k,
                        uint64_t h, bool known, send_asker& rp);

/// Queues `p` (a send, or a change with a request id) under the key in
/// `p->req`, unless that key has an answer: one this incarnation remembers,
/// one in flight (shared), or one in the store (looked up first when the
/// key may be there).
void admit(self_ptr self, const pending_ptr& p, send_asker rp);

/// Queues `p` under its key `k` (key_of(p->req); a store lookup first if
/// `known`, see may_be_known): `admit` without the answers in memory.
void enqueue(self_ptr self, const pending_ptr& p, key k,
             bool known, send_asker rp);

/// Commits a membership change alone, as a MEMBERSHIP message with the
/// member records it changes; sends behind it wait.
void commit_change(self_ptr self, const pending_ptr& p);

} // namespace parley::conversation_send
