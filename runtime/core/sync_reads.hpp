#pragma once

// The reads a user's sync asks of partitions (issue 21, item 4). The user
// actor (actors/user.hpp) owns the user's side and reads nothing itself:
// it asks its own partition's store reader for the user's rows (user_reads)
// and each conversation partition's store reader, through the directory,
// for what belongs to conversations (conv_reads), one request per
// partition and step. Each request names its partition and reads only keys
// of ids placed there (runtime/store/sync_reads.hpp answers them). Plain
// values: they may cross a node.

#include <cstdint>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "runtime/core/messages.hpp"

namespace parley {

/// What a conv_query asks of one conversation.
inline constexpr uint8_t conv_read_head = 1;     ///< its head
inline constexpr uint8_t conv_read_probe = 2;    ///< the member's inbox entry
inline constexpr uint8_t conv_read_receipts = 3; ///< members' receipt cursors
inline constexpr uint8_t conv_read_messages = 4; ///< messages of the window
/// The probe with the member's window from the conversation's own member
/// record (the conversation side's view, actors/inbox.hpp; the whole
/// request fails forbidden if `user` never was a member).
inline constexpr uint8_t conv_read_member_probe = 5;

/// Where a conv_read_messages query starts.
inline constexpr uint8_t conv_start_resume = 0; ///< after `after`
inline constexpr uint8_t conv_start_cursor = 1; ///< after a client cursor
inline constexpr uint8_t conv_start_recent = 2; ///< the reader's recent ones

/// One conversation's part of a conv_reads.
struct conv_query {
  conversation_id conv = 0;
  uint8_t kind = conv_read_head;
  user_id user = 0;
  /// The user's membership window (from the user's side): the first
  /// sequence they may see and where they left (0: still a member).
  sequence joined_at = 1;
  sequence left_at = 0;
  /// probe: the user's stored entry (`stored` false: none; its flags are
  /// the user's either way).
  bool stored = false;
  inbox_entry entry;
  /// messages: where to start (conv_start_*) and the sequence for
  /// resume/cursor.
  uint8_t start = conv_start_resume;
  sequence after = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conv_query& x) {
  return f(caf::meta::type_name("conv_query"), x.conv, x.kind, x.user,
           x.joined_at, x.left_at, x.stored, x.entry, x.start, x.after);
}

/// Queries for conversations of one partition, in conversation-id order.
/// Message queries share the page's limits left when the batch was made:
/// `budget` messages, `room` bounded bytes, `items` already on the page
/// (the first item always fits); the reader stops reading messages where
/// the page would have to stop anyway (it cannot use less than this
/// partition's share).
struct conv_reads {
  uint32_t partition = 0;
  std::vector<conv_query> queries;
  uint64_t budget = 0;
  uint64_t room = 0;
  uint64_t items = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conv_reads& x) {
  return f(caf::meta::type_name("conv_reads"), x.partition, x.queries,
           x.budget, x.room, x.items);
}

/// One conversation's answer, in its query's order.
struct conv_answer {
  conversation_id conv = 0;
  sequence head = 0;
  /// messages with conv_start_cursor: the cursor is past the head.
  bool ahead = false;
  /// probe: the entry from the log (flags as asked); `stale` if the stored
  /// one disagreed (its unread count was recounted).
  inbox_entry entry;
  bool stale = false;
  std::vector<receipt_cursor> receipts;
  /// messages: those in (after, last] read, in order; `complete` if the
  /// read reached `last` (or the end of the log) rather than a limit.
  std::vector<stored_message> messages;
  sequence after = 0;
  sequence last = 0;
  bool complete = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conv_answer& x) {
  return f(caf::meta::type_name("conv_answer"), x.conv, x.head, x.ahead,
           x.entry, x.stale, x.receipts, x.messages, x.after, x.last,
           x.complete);
}

struct conv_answers {
  uint32_t partition = 0;
  std::vector<conv_answer> answers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conv_answers& x) {
  return f(caf::meta::type_name("conv_answers"), x.partition, x.answers);
}

/// What a user_reads asks of users of one partition.
inline constexpr uint8_t user_read_memberships = 1; ///< `user`'s conversations
inline constexpr uint8_t user_read_inbox = 2; ///< `user`'s rows of `convs`
inline constexpr uint8_t user_read_sharing = 3; ///< who of `users` shares reads

struct user_reads {
  uint32_t partition = 0;
  uint8_t kind = user_read_memberships;
  user_id user = 0;
  std::vector<conversation_id> convs;
  std::vector<user_id> users;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_reads& x) {
  return f(caf::meta::type_name("user_reads"), x.partition, x.kind, x.user,
           x.convs, x.users);
}

struct user_answers {
  uint32_t partition = 0;
  /// memberships: the user's conversations (also those left), in id order.
  std::vector<member> members;
  std::vector<conversation_id> convs; ///< parallel to `members`
  /// inbox: one entry per asked conversation (flags always set; the rest
  /// only if `stored` lists it).
  std::vector<inbox_entry> entries;
  std::vector<conversation_id> stored;
  /// sharing: those of the asked users who share read receipts.
  std::vector<user_id> sharing;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_answers& x) {
  return f(caf::meta::type_name("user_answers"), x.partition, x.members,
           x.convs, x.entries, x.stored, x.sharing);
}

} // namespace parley
