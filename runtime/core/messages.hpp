#pragma once

// Inspectable structs exchanged between Parley actors. Client-facing data is
// protobuf at the edges (gateway, store); inside, these plain structs travel.
// The order of fields in each `inspect` is the BASP wire format between
// nodes: append only.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "runtime/core/membership_events.hpp"
#include "runtime/core/write_batch.hpp"

namespace parley {

using conversation_id = uint64_t;
using user_id = uint64_t;
using device_id = uint64_t;
using sequence = uint64_t;

/// Opaque server message id, derived from (conversation, sequence) so it
/// needs no storage: 32 lowercase hex digits.
std::string make_server_message_id(conversation_id conv, sequence seq);

// -- conversations ------------------------------------------------------------

/// Roles of members (parley.store.v1.MemberRecord.Role).
inline constexpr int32_t role_member = 1;
inline constexpr int32_t role_admin = 2;

/// Kinds of conversations (parley.store.v1.ConversationRecord.Kind).
inline constexpr int32_t conversation_direct = 1;
inline constexpr int32_t conversation_group = 2;

/// Message kinds (parley.v1.MessageKind): media (refused until media are
/// built: its reference would be lost), and those the server writes
/// itself; clients send only text.
inline constexpr int32_t message_kind_media = 2;
inline constexpr int32_t message_kind_system = 3;
inline constexpr int32_t message_kind_membership = 4;

/// A change of a group's membership, made by `actor` (an authenticated
/// member) from `device`; `change` is parley.v1.Membership.Change.
struct group_change {
  int32_t change = 0;
  user_id actor = 0;
  device_id device = 0;
  std::vector<user_id> targets;
  std::string name;        ///< CREATED, RENAMED
  std::string description; ///< CREATED
  /// The client's id for this create or change (may be empty): a repeat
  /// by the same user gets the first answer, deduplicated (a change's
  /// inside the idempotency window).
  std::string request_id{};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, group_change& x) {
  return f(caf::meta::type_name("group_change"), x.change, x.actor, x.device,
           x.targets, x.name, x.description, x.request_id);
}

/// parley.v1.Membership.Change values.
namespace membership_change {
inline constexpr int32_t created = 1, added = 2, removed = 3, left = 4,
                         promoted = 5, demoted = 6, renamed = 7;
} // namespace membership_change

/// A member of a conversation with its membership history.
struct member {
  user_id user = 0;
  int32_t role = 0;                ///< parley.store.v1.MemberRecord.Role
  sequence joined_at_sequence = 1; ///< first sequence the member may see
  sequence left_at_sequence = 0;   ///< 0 = still a member
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member& x) {
  return f(caf::meta::type_name("member"), x.user, x.role,
           x.joined_at_sequence, x.left_at_sequence);
}

/// A group as its members see it: name and current members.
struct group_info {
  conversation_id conversation = 0;
  std::string name;
  std::string description;
  sequence head = 0;
  std::vector<member> members; ///< current members only, one page
  user_id next_after = 0;      ///< 0: the last page
  uint32_t member_count = 0;   ///< current members in all
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, group_info& x) {
  return f(caf::meta::type_name("group_info"), x.conversation, x.name,
           x.description, x.head, x.members, x.next_after, x.member_count);
}

/// A member's receipt cursor: `user` has every message of the conversation
/// up to `seq` delivered to some device (kind 1) or read (kind 2).
struct receipt_cursor {
  user_id user = 0;
  int32_t kind = 0;
  sequence seq = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, receipt_cursor& x) {
  return f(caf::meta::type_name("receipt_cursor"), x.user, x.kind, x.seq);
}

/// A receipt cursor that moved, as pushed to members' devices.
struct receipt_event {
  conversation_id conversation = 0;
  user_id user = 0;
  int32_t kind = 0; ///< 1 delivered, 2 read
  sequence seq = 0;
  int64_t at_ms = 0;
  /// False: a read cursor the user does not share (read receipts off);
  /// only the user's own devices see it.
  bool shared = true;
  /// The device that moved the cursor (it is not told again); 0: unknown.
  device_id origin = 0;
  /// Groups: an aggregate for the sender of message `seq` (user 0): how
  /// many of the other `member_count` members have it delivered and read.
  uint32_t delivered_count = 0;
  uint32_t read_count = 0;
  uint32_t member_count = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, receipt_event& x) {
  return f(caf::meta::type_name("receipt_event"), x.conversation, x.user,
           x.kind, x.seq, x.at_ms, x.shared, x.origin, x.delivered_count,
           x.read_count, x.member_count);
}

/// What a conversation actor needs from disk when it activates.
struct conversation_snapshot {
  bool exists = false;
  sequence head = 0;       ///< highest stored sequence, 0 = empty
  sequence dispatched = 0; ///< outbox watermark
  std::vector<member> members;
  sequence swept = 0;      ///< idempotency records deleted up to here
  int64_t head_sent_at_ms = 0; ///< acceptance time of the head message
  std::vector<receipt_cursor> receipts; ///< members' receipt cursors
  int32_t kind = 0;        ///< conversation_direct or conversation_group
  std::string name;        ///< groups
  std::string description; ///< groups
  int64_t created_at_ms = 0;
  user_id creator = 0;           ///< groups
  std::string create_request_id; ///< groups: the creator's request id
  /// Membership events not yet acked by the users' side ('g'):
  /// re-sent on activation (runtime/core/membership_events.hpp).
  std::vector<membership_event> pending_memberships;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        conversation_snapshot& x) {
  return f(caf::meta::type_name("conversation_snapshot"), x.exists, x.head,
           x.dispatched, x.members, x.swept, x.head_sent_at_ms, x.receipts,
           x.kind, x.name, x.description, x.created_at_ms, x.creator,
           x.create_request_id, x.pending_memberships);
}

/// A message as stored and as emitted for delivery.
struct stored_message {
  conversation_id conversation = 0;
  sequence seq = 0;
  user_id sender_user = 0;
  device_id sender_device = 0;
  std::string client_message_id;
  int64_t sent_at_ms = 0;
  int32_t kind = 0; ///< parley.v1.MessageKind
  std::string payload;
  sequence reply_to = 0; ///< the message this one answers (0: none)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stored_message& x) {
  return f(caf::meta::type_name("stored_message"), x.conversation, x.seq,
           x.sender_user, x.sender_device, x.client_message_id, x.sent_at_ms,
           x.kind, x.payload, x.reply_to);
}

/// A send, as the gateway hands it to a conversation. `sender_user` and
/// `sender_device` are the authenticated ones, never client claims.
struct send_request {
  conversation_id conversation = 0;
  user_id sender_user = 0;
  device_id sender_device = 0;
  std::string client_message_id;
  int32_t kind = 0;
  std::string payload;
  /// When the gateway took the Send frame (steady_ns() in
  /// node_metrics.hpp); 0: not from a socket, not measured.
  int64_t received_at_ns = 0;
  /// The message this one answers: a sequence of the same conversation
  /// inside the sender's membership window, at most the head (0: none).
  sequence reply_to = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_request& x) {
  return f(caf::meta::type_name("send_request"), x.conversation,
           x.sender_user, x.sender_device, x.client_message_id, x.kind,
           x.payload, x.received_at_ns, x.reply_to);
}

/// The answer to a send: identical for every repeat of the same key.
struct send_result {
  std::string server_message_id;
  sequence server_sequence = 0;
  int64_t sent_at_ms = 0;
  bool deduplicated = false; ///< true: answers an earlier identical send
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_result& x) {
  return f(caf::meta::type_name("send_result"), x.server_message_id,
           x.server_sequence, x.sent_at_ms, x.deduplicated);
}

/// Result of an idempotency index lookup.
struct idempotency_hit {
  bool found = false;
  sequence seq = 0;
  int64_t accepted_at_ms = 0; ///< also the message's sent_at_ms
  /// What the first send asked (store::send_digest); 0 in records older
  /// than the digest: then any repeat is taken as a retry.
  uint64_t digest = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, idempotency_hit& x) {
  return f(caf::meta::type_name("idempotency_hit"), x.found, x.seq,
           x.accepted_at_ms, x.digest);
}

/// The key of an idempotency record, within its conversation.
struct idempotency_key {
  user_id user = 0;
  device_id device = 0;
  std::string client_message_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, idempotency_key& x) {
  return f(caf::meta::type_name("idempotency_key"), x.user, x.device,
           x.client_message_id);
}

/// What an idempotency sweep found: records to delete, and how far the
/// sweep got (every message up to `swept` is past the window).
struct idempotency_sweep {
  sequence swept = 0;
  bool more = false; ///< stopped at the page limit, not at a live message
  std::vector<idempotency_key> expired;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, idempotency_sweep& x) {
  return f(caf::meta::type_name("idempotency_sweep"), x.swept, x.more,
           x.expired);
}

// -- accounts -------------------------------------------------------------------

/// A user's own cap on the messages they send, set by an operator and
/// stored with the account (runtime/store/account_store.hpp): `count`
/// messages per `period_ms`, a burst of `count`. count 0: the node's
/// default (parley.limit-send-user).
struct send_limit {
  uint64_t count = 0;
  uint64_t period_ms = 0;

  bool is_default() const {
    return count == 0 || period_ms == 0;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, send_limit& x) {
  return f(caf::meta::type_name("send_limit"), x.count, x.period_ms);
}

/// The authenticated identity of a connection: the only ids the server
/// trusts, never ones a client claims.
struct principal {
  user_id user = 0;
  device_id device = 0;
  bool read_receipts = true; ///< the user's setting: share and see reads
  send_limit send;           ///< the user's own send limit, if any
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, principal& x) {
  return f(caf::meta::type_name("principal"), x.user, x.device,
           x.read_receipts, x.send);
}

/// Direct (1:1) conversations have the top bit set.
inline bool is_direct(conversation_id conv) {
  return (conv >> 63) != 0;
}

/// A device login: its ids and the bearer token (shown once, stored hashed).
struct login_result {
  user_id user = 0;
  device_id device = 0;
  std::string token;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, login_result& x) {
  return f(caf::meta::type_name("login_result"), x.user, x.device, x.token);
}

struct device_info {
  device_id device = 0;
  std::string name;
  int64_t created_at_ms = 0;
  bool revoked = false;
  /// When a connection of the device last attached or closed (epoch ms;
  /// 0: never since last-seen was recorded).
  int64_t last_seen_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, device_info& x) {
  return f(caf::meta::type_name("device_info"), x.device, x.name,
           x.created_at_ms, x.revoked, x.last_seen_ms);
}

// -- sync ---------------------------------------------------------------------------

/// The largest frame the server sends unless configured otherwise
/// (max-server-frame-bytes, announced in Welcome; sync pages stay within it).
inline constexpr uint32_t default_max_server_frame_bytes = 512 * 1024;

/// A device's sync request: its cursors (conversation -> last sequence it
/// holds; absent: it holds nothing) and where the previous page ended.
struct sync_request {
  std::vector<conversation_id> cursor_conversations;
  std::vector<sequence> cursor_sequences; ///< parallel to the above
  uint32_t page_size = 100;
  /// Empty: first page. Otherwise the whole rest of the request (it wins
  /// over the cursors above; see store/sync_paging.hpp).
  std::string continuation;
  bool read_receipts = true; ///< the user's setting (see principal)
  /// The largest frame the page may become once encoded (the gateway's
  /// max-server-frame-bytes).
  uint32_t max_frame_bytes = default_max_server_frame_bytes;
  /// Only the conversations with a cursor: no inbox, no receipts (a request
  /// split over several Syncs; ignored with a continuation, which has it).
  bool cursors_only = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_request& x) {
  return f(caf::meta::type_name("sync_request"), x.cursor_conversations,
           x.cursor_sequences, x.page_size, x.continuation, x.read_receipts,
           x.max_frame_bytes, x.cursors_only);
}

/// A user's inbox entry of one conversation: the projection of the log
/// and the user's read cursor, plus the flags the user set.
struct inbox_entry {
  conversation_id conversation = 0;
  sequence head = 0;        ///< latest sequence counted
  sequence read = 0;        ///< the user's read cursor
  uint64_t unread = 0;      ///< messages from others after `read`
  user_id latest_sender = 0;
  int64_t latest_at_ms = 0;
  bool archived = false;
  bool pinned = false;
  bool muted = false;

  friend bool operator==(const inbox_entry& a, const inbox_entry& b) {
    return a.conversation == b.conversation && a.head == b.head
           && a.read == b.read && a.unread == b.unread
           && a.latest_sender == b.latest_sender
           && a.latest_at_ms == b.latest_at_ms && a.archived == b.archived
           && a.pinned == b.pinned && a.muted == b.muted;
  }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inbox_entry& x) {
  return f(caf::meta::type_name("inbox_entry"), x.conversation, x.head,
           x.read, x.unread, x.latest_sender, x.latest_at_ms, x.archived,
           x.pinned, x.muted);
}

/// One event of the inbox projection: a message (with the users it
/// reached) or a receipt, in the order they were emitted.
struct projection_event {
  bool is_message = true;
  stored_message msg;
  receipt_event receipt;
  std::vector<user_id> to;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, projection_event& x) {
  return f(caf::meta::type_name("projection_event"), x.is_message, x.msg,
           x.receipt, x.to);
}

/// Projection events the inbox supervisor gathers and hands to its worker
/// in one message.
struct projection_batch {
  std::vector<projection_event> events;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, projection_batch& x) {
  return f(caf::meta::type_name("projection_batch"), x.events);
}

/// One page of a sync answer.
struct sync_page {
  /// The inbox comes first, a page's worth at a time in conversation-id
  /// order; each page's entries most recent first.
  std::vector<inbox_entry> inbox;
  std::vector<stored_message> messages;
  std::string continuation; ///< empty: complete
  /// After the inbox: the other members' receipt cursors of each direct
  /// conversation (what the user's own messages reached).
  std::vector<receipt_event> receipts;
  /// First page only: the unread count of the whole inbox.
  uint64_t total_unread = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_page& x) {
  return f(caf::meta::type_name("sync_page"), x.inbox, x.messages,
           x.continuation, x.receipts, x.total_unread);
}

/// A conversation actor's view of itself (tests, admin, bench).
struct conversation_status {
  sequence head = 0;       ///< highest committed sequence
  sequence dispatched = 0; ///< highest sequence emitted for delivery
  uint64_t in_flight = 0;  ///< sends waiting for their commit
  uint64_t members = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conversation_status& x) {
  return f(caf::meta::type_name("conversation_status"), x.head, x.dispatched,
           x.in_flight, x.members);
}

/// Counters of the store writer (group commit effectiveness).
struct writer_stats {
  uint64_t commits = 0;   ///< commit requests answered ok
  uint64_t syncs = 0;     ///< synced writes made
  uint64_t failures = 0;  ///< failed synced writes
  uint64_t ops = 0;       ///< key/value operations written
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, writer_stats& x) {
  return f(caf::meta::type_name("writer_stats"), x.commits, x.syncs,
           x.failures, x.ops);
}

/// A device actor's view of itself (tests, metrics).
struct device_status {
  bool connected = false;
  uint64_t pushed = 0;   ///< messages pushed since the actor started
  uint64_t unacked = 0;  ///< pushed on this connection, not yet acknowledged
  uint64_t cursor_writes = 0; ///< delivered-cursor writes made
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, device_status& x) {
  return f(caf::meta::type_name("device_status"), x.connected, x.pushed,
           x.unacked, x.cursor_writes);
}

} // namespace parley
