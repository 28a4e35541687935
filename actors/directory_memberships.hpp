#pragma once

// Internal to the directory: the user side of membership events (issue
// 21, item 7; runtime/core/membership_events.hpp). An event is routed by
// its user's partition: on the owner's node it is written to the user's
// index ('y', with its version 'h') by one single-partition versioned put
// through this node's store writer, and acked with its version once
// durable; for another node's partition it goes to that node's directory
// (or unavailable, retryable, if none is known).
//
// Why here and not in the user actor: an event needs no state of the
// user's (the versioned put orders events in the writer), and a group
// create of 1,000 members would spawn 1,000 user actors only to write one
// row each. The directory hands the write to the store writer and keeps
// nothing but an epoch.

#include "actors/directory.hpp"

namespace parley::directory_memberships {

using self_ptr = directory_actor::stateful_pointer<directory_state>;

/// Applies or forwards `ev`; replies ev.version once durable.
caf::result<uint64_t> apply(self_ptr self, membership_event& ev);

/// After a map change from `before`: for each partition this node took
/// (and each taken earlier whose scan failed, still owned here), asks the
/// store reader once (timeouts::scan) for its conversations that owe
/// membership or delivery events ('g' rows, an outbox suffix) and
/// activates them, as the outbox relay does at start: the moved events
/// reach their users' indexes without waiting for traffic. A failed scan
/// is logged and repeated with the next map.
void activate_taken(self_ptr self, const partition_map& before);

} // namespace parley::directory_memberships
