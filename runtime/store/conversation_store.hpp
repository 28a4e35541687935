#pragma once

// Conversation tables: turns Parley structs into storage records (protobuf,
// schema/parley/v1/store.proto) and back. The only code that knows both the
// key layouts (keys.hpp) and the record formats of these tables.

#include <cstdint>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

// -- writes: append to a batch ---------------------------------------------------

/// Adds the message record and its idempotency record, which keeps
/// `request_digest` (send_digest of the request; 0: none) so that a repeat
/// of the key with other content is told apart from a retry.
void add_message(write_batch& batch, const stored_message& msg,
                 uint64_t request_digest = 0);

/// A digest of what a send asks for (kind, payload, reply reference): two
/// sends with one idempotency key are the same request if their digests
/// are equal. 64 bits of BLAKE2b, never 0. DO NOT CHANGE: kept on disk.
uint64_t send_digest(int32_t kind, std::string_view payload,
                     sequence reply_to);

/// Adds the outbox watermark: every seq <= `dispatched` was emitted.
void add_watermark(write_batch& batch, conversation_id conv,
                   sequence dispatched);

/// Adds the conversation record (kind: store.v1 ConversationRecord.Kind).
/// Groups also keep their creator and the creator's request id, so that a
/// retried create is recognised.
void add_conversation(write_batch& batch, conversation_id conv, int32_t kind,
                      int64_t created_at_ms, const std::string& name = {},
                      const std::string& description = {},
                      user_id creator = 0,
                      const std::string& create_request_id = {});

/// The stored payload of a MEMBERSHIP message recording change `c`: a
/// parley.v1.Membership (the wire's own form, sent to clients as is).
std::string membership_payload(const group_change& c);

/// Adds or replaces a member record and the member's index row ('y') in
/// one batch, which spans two partitions: for tests and tools that build
/// a store directly. The server writes the conversation's side only, with
/// a membership event for the user's side (membership_store.hpp).
void add_member(write_batch& batch, conversation_id conv, const member& m);

/// Deletes an idempotency record.
void erase_idempotency(write_batch& batch, conversation_id conv,
                       const idempotency_key& key);

/// Adds a member's receipt cursor (max-merged: never moves backwards).
void add_receipt(write_batch& batch, conversation_id conv,
                 const receipt_cursor& c);

/// Records that idempotency records up to `swept` are gone.
void add_sweep_mark(write_batch& batch, conversation_id conv, sequence swept);

// -- reads -------------------------------------------------------------------------

/// Reads what a conversation actor needs to activate.
caf::expected<conversation_snapshot> load_conversation(kv_backend& kv,
                                                       conversation_id conv);

/// Looks up an idempotency record.
caf::expected<idempotency_hit>
lookup_idempotency(kv_backend& kv, conversation_id conv, user_id user,
                   device_id device, std::string_view client_message_id);

/// Reads up to `limit` messages with sequence > `after`, in order.
caf::expected<std::vector<stored_message>>
fetch_messages(kv_backend& kv, conversation_id conv, sequence after,
               size_t limit);

/// Walks messages after `after` in order while they were sent before
/// `cutoff_ms` (at most `limit`) and returns the idempotency records that
/// still point at them. A record re-used by a later message is kept.
caf::expected<idempotency_sweep>
find_expired_idempotency(kv_backend& kv, conversation_id conv, sequence after,
                         int64_t cutoff_ms, size_t limit);

/// The highest sequence of `conv` that `user` may acknowledge: the head, or
/// the last message before they left. Reads only the conversation's
/// records (its member record of `user` and its head). Error: forbidden if
/// the user was never a member.
caf::expected<sequence> ack_limit(kv_backend& kv, user_id user,
                                  conversation_id conv);

/// Lists conversations whose outbox watermark is behind their head (their
/// delivery events must be re-emitted) or that owe membership events to
/// their members' indexes ('g'): the outbox relay activates them.
caf::expected<std::vector<conversation_id>>
undispatched_conversations(kv_backend& kv);

/// The same for partition `p` of `partitions` only (its slots' 'c' keys:
/// for a node that takes the partition over). Errors: bad_request (no
/// such partition), the backend's.
caf::expected<std::vector<conversation_id>>
undispatched_conversations(kv_backend& kv, uint32_t p, uint32_t partitions);

} // namespace parley::store
