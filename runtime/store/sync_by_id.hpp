#pragma once

// A user's sync page on one node: store::user_sync (user_sync.hpp) with
// every request it asks answered by function call through a
// partition_reads (inbox_reads.hpp), as list_inbox_by_id reads the inbox.
// The user actor drives the same user_sync by messages; this is its
// synchronous form, for tests and tools.

#include <cstddef>
#include <functional>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/user_sync.hpp"

namespace parley::store {

/// Reorders one step's answers before they are taken (each element takes
/// one answer); a router's answers come back in any order.
using answer_order = std::function<void(std::vector<std::function<void()>>&)>;

/// One page of `user`'s sync from `req`, the partitions' answers from
/// `reads` (whose `recent` is the count of messages a conversation without
/// a cursor gets), `window` conversations a step: the user's inbox
/// entries, then the receipts of direct conversations, then messages after
/// each cursor (or the recent ones), in conversation then sequence order,
/// never before the user joined or after they left. The page's encoded
/// frame stays within `req.max_frame_bytes` (sync_paging.hpp); its
/// continuation alone resumes the whole request. Errors: forbidden (a
/// cursor for a conversation the user is not in), cursor_ahead,
/// bad_request (a bad continuation), too_large (more cursors than one
/// continuation holds: split them), or a failed read's.
caf::expected<sync_page>
sync_by_id(const partition_reads& reads, user_id user, const sync_request& req,
           size_t window = user_sync::default_window,
           const answer_order& order = {});

} // namespace parley::store
