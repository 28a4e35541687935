#pragma once

// Inbox tables ('x' entries, 'f' flags): the per-user projection of the
// message log and read cursors. The projection is derived state: every
// entry can be computed from the log, the membership and the receipt
// cursors (compute_entry), which is what the rebuild and the reconciler
// use; the inbox actor keeps the stored entries up to date incrementally.

#include <cstdint>
#include <optional>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// The stored entry of (user, conv) with its flags; nullopt if none.
caf::expected<std::optional<inbox_entry>>
load_inbox_entry(kv_backend& kv, user_id user, conversation_id conv);

/// Computes (user, conv)'s entry from the log: the latest message the user
/// may see, the read cursor, and the messages from others after it within
/// the user's membership. Flags come from the 'f' table.
caf::expected<inbox_entry> compute_inbox_entry(kv_backend& kv, user_id user,
                                               conversation_id conv);

/// Messages of `conv` in (after, upto] not sent by `user`.
caf::expected<uint64_t> count_from_others(kv_backend& kv, conversation_id conv,
                                          user_id user, sequence after,
                                          sequence upto);

/// Adds the entry record (not the flags).
void add_inbox_entry(write_batch& batch, user_id user, const inbox_entry& e);

/// Adds the flags record.
void add_inbox_flags(write_batch& batch, user_id user, conversation_id conv,
                     bool archived, bool pinned, bool muted);

/// The conversations `user` is or was a member of, in id order.
caf::expected<std::vector<conversation_id>>
user_conversations(kv_backend& kv, user_id user);

/// Every user with a membership, in id order (for --rebuild-inbox all).
caf::expected<std::vector<user_id>> users_with_conversations(kv_backend& kv);

/// The user's inbox, most recent activity first (pinned before the rest).
/// Entries whose stored projection disagrees with the log (behind after a
/// crash, or missing) are computed from the log for the answer; `stale`
/// (if given) receives them so that the caller can repair the store.
caf::expected<std::vector<inbox_entry>>
list_inbox(kv_backend& kv, user_id user,
           std::vector<inbox_entry>* stale = nullptr);

/// The same for the given conversations of the user (a caller that has
/// listed them already).
caf::expected<std::vector<inbox_entry>>
list_inbox(kv_backend& kv, user_id user,
           const std::vector<conversation_id>& convs,
           std::vector<inbox_entry>* stale = nullptr);

/// Orders entries as list_inbox does.
void sort_inbox(std::vector<inbox_entry>& entries);

} // namespace parley::store
