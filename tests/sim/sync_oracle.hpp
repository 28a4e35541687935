#pragma once

// A model of what a complete sync returns (README, "Sync"), computed
// plainly from what a seed wrote (sync_world.hpp), not by building pages:
// the sims check the pages of the one page builder (store::user_sync,
// through the user actor or by function call) against it. Page boundaries
// are the builder's to choose; what every sync must give is checked:
//
// - a bad first request fails on its first page, with no page before: a
//   cursor of a conversation the user is not in (FORBIDDEN) or past its
//   head (CURSOR_AHEAD);
// - otherwise pages only, the last without a continuation, every other
//   one with at least one item (a client always gets further);
// - the inbox (not with cursorsOnly): every conversation of the user, also
//   those left, exactly once, in conversation-id order from page to page,
//   each page pinned first and then most recent first; each entry's head,
//   latest message, read cursor and flags as written, its unread count the
//   messages from others after the read cursor within the user's window
//   (or the count of a stored row that agrees with the log on head, read
//   cursor and latest message: the projection may be trusted when
//   current, inbox_store.hpp); totalUnread the sum of the listed counts on
//   the first page, 0 on the others;
// - the receipts (not with cursorsOnly): of each direct conversation of
//   the user, in id order, all on one page, the other members' delivered
//   cursors, and their read cursors if the request shares reads and the
//   reader's account does;
// - then the messages: for each conversation of the user in id order
//   (cursorsOnly: those with a cursor), those after the cursor, or the
//   last `recent` without one, within the user's window [joined, left),
//   each exactly once, in order, as written; at most the page size on a
//   page;
// - the order inbox, receipts, messages holds across pages, and each page
//   fits the frame limit by the items' bounds (sync_paging.hpp; the bounds
//   are checked against the real encoder by the unit tests), unless it
//   holds a single item.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/core/messages.hpp"
#include "sync_world.hpp"

namespace parley::sim {

/// One page's outcome: the page, or the error's code.
struct sync_outcome {
  std::optional<sync_page> page;
  uint8_t code = 0;
  std::string error;
};

/// Checks `got`, the outcomes of `user`'s sync from `first` (each later
/// page asked with the previous continuation alone), against the model of
/// `data`; conversations without a cursor get their last `recent`.
/// Returns the first difference, or an empty string.
std::string check_sync(const sync_data& data, user_id user,
                       const sync_request& first,
                       const std::vector<sync_outcome>& got,
                       uint64_t recent);

} // namespace parley::sim
