#pragma once

// The conversation's receipt aggregation: per member, "some device has
// everything up to N" (delivered, kind 1) and "read up to N" (kind 2).
// Owns conversation_receipts_state. Cursors only move forward; a burst of
// receipts becomes one write and one event per cursor that moved (a flush
// queued behind what is already in the mailbox, one write at a time, under
// a fence id of its own: cursors are max-merged, so these writes need no
// ordering with the send path's).
//
// Calls: groups' membership queries, the send path's head, the store
// writer, and delivery/projection (pushes). Called by the send path
// (note_sender, for groups' aggregates) and upkeep (hand_over, when the
// actor ends).

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include <caf/expected.hpp>

#include "actors/conversation_actor.hpp"

namespace parley {

/// Receipt cursors and their aggregates (data only).
struct conversation_receipts_state {
  using cursor_key = std::pair<user_id, int32_t>; ///< (user, kind)
  /// Members' cursors, and those that moved since the last flush.
  std::map<cursor_key, sequence> cursors;
  std::map<cursor_key, receipt_event> moved;
  /// Groups: how many members' cursors stand at each sequence, per kind
  /// (1 delivered, 2 read): the aggregates count from these.
  std::map<sequence, uint32_t> counts[3];
  /// Groups: each recent sender's latest message, and the aggregate last
  /// pushed to them for it (delivered, read).
  std::map<user_id, sequence> latest_by_sender;
  std::map<user_id, std::pair<uint32_t, uint32_t>> aggregate_sent;
  bool flush_queued = false;
  bool writing = false; ///< a flush's write is under way
  uint64_t epoch = 1;   ///< fence epoch of the receipts' writer id
};

namespace conversation_receipts {

/// Takes the cursors of a loaded conversation.
void load(conversation_state& st, const std::vector<receipt_cursor>& cursors);

/// Moves a member's receipt cursor forward (see conversation_actor) and
/// queues a flush if it moved.
caf::expected<sequence> handle_receipt(conversation_self self, user_id user,
                                       device_id dev, int32_t kind,
                                       sequence seq, bool shared);

/// The conversation (re)activated: tells the inbox projection every
/// member's committed read cursor. An earlier incarnation may have ended
/// between committing a cursor and emitting it (receipts are not in the
/// outbox the relay re-emits), which would leave the member's inbox row
/// behind for good. Idempotent at the row (a cursor at or behind the row's
/// read cursor changes nothing); once per load, not per receipt.
void emit_loaded(conversation_self self);

/// Members' cursors, in (user, kind) order.
std::vector<receipt_cursor> cursors(const conversation_state& st);

/// Writes the cursors that moved, then pushes them to the members (groups:
/// to the member's own devices, and aggregates to recent senders).
void flush(conversation_self self);

/// Groups: remembers a sender's latest message for the aggregates (the 64
/// most recent senders).
void note_sender(conversation_state& st, user_id sender, sequence seq);

/// The actor ends: hands the cursors not yet written to the writer (its
/// answer never comes back; max-merged, harmless if a write of them is
/// under way).
void hand_over(conversation_self self);

} // namespace conversation_receipts

} // namespace parley
