#pragma once

// Internal to the directory: its user side (issue 21, item 4). Routes a
// user's sync to the user's actor (spawned on the user's first request on
// the partition's owner, retired when idle) and reads by partition to the
// partition's store reader, checking that the partition is this node's and
// every id of the request is placed in it.

#include "actors/directory.hpp"

namespace parley::directory_users {

using self_ptr = directory_actor::stateful_pointer<directory_state>;

caf::result<sync_page> sync(self_ptr self, user_id user, sync_request& req);

caf::result<conv_answers> reads(self_ptr self, conv_reads& r);

caf::result<user_answers> reads(self_ptr self, user_reads& r);

/// A device's delivered-cursor limit, read on the conversation's partition.
caf::result<sequence> ack_limit(self_ptr self, user_id user,
                                conversation_id conv);

/// An idle user actor asked to end: it gets nothing more.
void retire(self_ptr self, user_id user);

/// True if `addr` was a user actor's (it ended: forgotten).
bool down(self_ptr self, const caf::actor_addr& addr);

/// Retires the actors of users whose partition left this node.
void release_moved(self_ptr self);

} // namespace parley::directory_users
