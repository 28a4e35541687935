#pragma once

// Inbox rows between the conversation's side and the user's side (issue 21,
// item 7). The conversation's node computes each member's row ('x':
// latest message, read cursor, unread count) from its conversation's
// events; the rows belong to the user's partition, whose owner alone
// writes them. So the conversation side sends them as `inbox_rows`, one
// event per destination partition, through the directory (routed by the
// partition) to that node's inbox actor, which writes them in one
// single-partition batch and acks. The event is idempotent and sent at
// least once: unacked rows are sent again, with their current value.
//
// Order (row_newer): a row is a view of its conversation's log at some
// moment: the latest visible sequence (`head`) and the user's read cursor
// (`read`), both of which only grow in the log; `unread` and the latest
// message follow from them. A row replaces the stored one only if its
// (head, read) is greater, compared head first, then read. A later view of
// the log is never smaller, so a late duplicate, a retry of an older value
// or a row from the old owner of a conversation that moved (its log stopped
// at the move; the new owner's starts from all of it) never overwrites a
// newer row; an equal one is the same view and changes nothing. The
// receiving side enforces it (actors/inbox_rows.cpp). Plain values: they
// cross nodes.

#include <cstdint>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "runtime/core/messages.hpp"

namespace parley {

/// One (user, conversation) row; `entry`'s flags are not part of it (the
/// user's side owns them, in their own records).
struct inbox_row {
  user_id user = 0;
  inbox_entry entry;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inbox_row& x) {
  return f(caf::meta::type_name("inbox_row"), x.user, x.entry);
}

/// Rows of users of one partition (every `user` placed in `partition`).
struct inbox_rows {
  uint32_t partition = 0;
  std::vector<inbox_row> rows;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inbox_rows& x) {
  return f(caf::meta::type_name("inbox_rows"), x.partition, x.rows);
}

/// What an inbox_query asks of the user's side.
inline constexpr uint8_t inbox_query_list = 1;  ///< the user's inbox
inline constexpr uint8_t inbox_query_flags = 2; ///< set flags on `conv`

/// A request about one user's inbox, answered by the owner of the user's
/// partition (wherever it arrived): the list, or the flags of `conv`
/// (answered with that one entry).
struct inbox_query {
  uint8_t kind = inbox_query_list;
  user_id user = 0;
  conversation_id conv = 0;
  bool archived = false;
  bool pinned = false;
  bool muted = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inbox_query& x) {
  return f(caf::meta::type_name("inbox_query"), x.kind, x.user, x.conv,
           x.archived, x.pinned, x.muted);
}

/// True if row `a` is a newer view than `b` (see the order above).
inline bool row_newer(const inbox_entry& a, const inbox_entry& b) {
  return a.head != b.head ? a.head > b.head : a.read > b.read;
}

} // namespace parley
