#pragma once

// Membership events (issue 21, item 7): a conversation owns its member
// records ('b'); each user's index of its conversations ('y', on the
// user's partition) is a projection of them, kept by the owner of the
// user's partition from these events. The conversation writes a pending
// event ('g', its own partition) in the batch that changes the member
// record, relays it after the commit to the user's partition owner
// (routed by the directory), which writes 'y' with a single-partition
// batch and acks; the ack erases the pending event. At least once and
// idempotent: the user side keeps the version it applied ('h') and never
// lets an older or repeated event overwrite a newer one.
//
// Depends on nothing of Parley's but plain ids, so that messages.hpp can
// carry these events in a conversation's snapshot.

#include <chrono>
#include <cstdint>

#include <caf/meta/type_name.hpp>
#include <caf/timespan.hpp>

namespace parley {

/// One member's record of one conversation as of a membership change.
/// `version` orders the changes of one (user, conversation): the sequence
/// of the group's MEMBERSHIP message that made it, or a direct
/// conversation's joined_at_sequence (a direct member joins once). A role
/// change keeps joined/left, so those alone could not order it.
struct membership_event {
  uint64_t conv = 0;    ///< conversation_id
  uint64_t user = 0;    ///< user_id: whose index ('y') the record goes to
  uint64_t version = 0; ///< the change's sequence (see above), > 0
  int32_t role = 0;     ///< parley.store.v1.MemberRecord.Role
  uint64_t joined_at_sequence = 0;
  uint64_t left_at_sequence = 0; ///< 0 = still a member
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, membership_event& x) {
  return f(caf::meta::type_name("membership_event"), x.conv, x.user,
           x.version, x.role, x.joined_at_sequence, x.left_at_sequence);
}

inline bool operator==(const membership_event& a, const membership_event& b) {
  return a.conv == b.conv && a.user == b.user && a.version == b.version
         && a.role == b.role && a.joined_at_sequence == b.joined_at_sequence
         && a.left_at_sequence == b.left_at_sequence;
}

/// How long the relay of membership events waits (see timeouts.hpp for
/// the rules: a timeout is retryable and leaves nothing half-done).
namespace membership_timeouts {

/// One event's request to the user's partition owner (through the
/// directory): a route and one single-partition write. A lost event or
/// ack is re-sent after this.
inline constexpr caf::timespan event = std::chrono::seconds(2);

/// Between two passes of the relay over unacked events (re-sends the ones
/// whose request failed or timed out; counts down waiting answers).
inline constexpr caf::timespan retry = std::chrono::seconds(1);

/// Retry passes a client's answer to a membership change waits for the
/// members' indexes before it answers a retryable error instead (the
/// change stays committed; a retry with the same request id is answered
/// with the same result). 10 passes: ~10 s, below the gateway's
/// timeouts::commit (30 s) for group requests and joins.
inline constexpr int answer_passes = 10;

} // namespace membership_timeouts

} // namespace parley
