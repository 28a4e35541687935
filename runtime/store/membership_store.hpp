#pragma once

// Membership records on both sides of the placement boundary (issue 21,
// item 7; runtime/core/membership_events.hpp): the conversation's member
// record ('b') with the events still owed to its members' indexes ('g'),
// both in the conversation's partition, and the user's index row ('y')
// with its version ('h'), both in the user's partition. No function here
// builds a batch that spans two partitions.

#include <vector>

#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// The event that carries `m` (member of `conv`) to the user's index, as
/// of the change with sequence `version`.
membership_event member_event_of(conversation_id conv, const member& m,
                                 uint64_t version);

/// The member record `m` of `conv` ('b' only: conversation side).
void add_member_record(write_batch& batch, conversation_id conv,
                       const member& m);

/// The event `ev` as owed to its user's index ('g': conversation side).
void add_member_event(write_batch& batch, const membership_event& ev);

/// Erases an owed event once the user's side acked it (conversation side).
void erase_member_event(write_batch& batch, const membership_event& ev);

/// The user's index row of `ev` ('y') and its version ('h'), as one
/// versioned put (write_batch::put_if_newer): written only if no newer or
/// equal version is there (user side).
void add_member_projection(write_batch& batch, const membership_event& ev);

/// The events `conv` still owes, in (user, version) order.
caf::expected<std::vector<membership_event>>
member_events(kv_backend& kv, conversation_id conv);

/// Conversations that owe events (to activate at start), in id order.
caf::expected<std::vector<conversation_id>>
conversations_owing_member_events(kv_backend& kv);

/// The version of `user`'s index row of `conv` (0: none, or written before
/// versions existed).
caf::expected<uint64_t> member_version(kv_backend& kv, user_id user,
                                       conversation_id conv);

} // namespace parley::store
