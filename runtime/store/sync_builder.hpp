#pragma once

// Internal to runtime/store: one sync page being built (store::sync in
// sync_store.cpp validates the request and runs the phases in order). Not
// an interface for code outside store/.

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/store/kv_backend.hpp"
#include "runtime/store/sync_paging.hpp"

namespace parley::store {

/// A user's conversations with their membership, in id order.
using membership_list = std::vector<std::pair<conversation_id, member>>;

/// The user's conversations (also those they left), in id order.
caf::expected<membership_list> memberships(kv_backend& kv, user_id user);

/// One page being built: where it started, what it holds, how much room
/// (in bounded encoded bytes) is left. The first item always goes in: the
/// frame limit is at least one largest item (min_server_frame_bytes).
struct page_builder {
  kv_backend& kv;
  user_id user;
  const sync_request& req;
  uint64_t recent; ///< messages of a conversation without a cursor
  membership_list convs;
  sync_position pos; ///< where this page starts, and the rest of the request
  size_t room = 0;
  size_t used = 0;
  size_t items = 0;
  size_t largest = 0; ///< the largest bound of a message on this page
  sync_page page;
  bool full = false; ///< the page ended early: page.continuation is set
  std::map<conversation_id, sequence> heads; ///< read on this page

  bool fits(size_t n) const {
    return items == 0 || used + n <= room;
  }

  size_t left() const {
    return room > used ? room - used : 0;
  }

  void take(size_t n) {
    used += n;
    ++items;
  }

  /// `pos` moved to `phase` at (started, conv, after) with `cursors`; the
  /// page size and cursors_only stay.
  sync_position at(sync_phase phase, bool started, conversation_id conv,
                   sequence after,
                   std::vector<std::pair<conversation_id, sequence>> cursors)
    const;

  /// Ends the page: its continuation resumes at `next`.
  void stop(const sync_position& next);

  /// The head of `conv`, read from the store once per page (the first
  /// page's cursor checks and its messages share it).
  caf::expected<sequence> head(conversation_id conv);

  /// The request's cursor of `conv`, if it has one still needed.
  const sequence* cursor_of(conversation_id conv) const;

  /// Lists inbox entries in conversation-id order from `pos` while they
  /// fit; total_unread (of the whole inbox) on the first page. Moves `pos`
  /// to the receipts, or stops the page.
  caf::error inbox();

  /// Lists other members' receipt cursors of direct conversations from
  /// `pos`, a conversation's all together, while they fit. Moves `pos` to
  /// the messages, or stops the page.
  caf::error receipts();

  /// Lists messages conversation by conversation from `pos` (after each
  /// cursor, or the recent ones; with cursors_only only conversations with
  /// a cursor), within the membership window, at most page_size, while
  /// they fit; stops the page at the first that does not.
  caf::error messages();
};

} // namespace parley::store
