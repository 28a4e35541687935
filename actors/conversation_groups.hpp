#pragma once

// The conversation's membership: who is a member over which sequences, with
// which role, and a group's name and description. Owns
// conversation_groups_state; the rest of the actor reads membership only
// through the queries below.
//
// Calls: the send path's commit (a direct conversation's join) and its head
// (a group page). A group change is sequenced and committed by the send
// path (conversation_send::handle_change) as a MEMBERSHIP message, in order
// with the sends around it; this part plans it (plan_change), writes its
// records (write_change) and applies it once durable (apply_change).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/conversation_actor.hpp"

namespace parley {

/// Membership of one conversation (data only).
struct conversation_groups_state {
  std::map<user_id, member> members; ///< everyone who ever joined
  size_t current_members = 0;        ///< joined and not left
  std::string name;                  ///< groups
  std::string description;           ///< groups
  int64_t created_at_ms = 0;
  user_id creator = 0;           ///< groups
  std::string create_request_id; ///< groups: the creator's request id
  /// Joins under way that create the (direct) conversation.
  int creating = 0;
};

namespace conversation_groups {

/// Takes the membership of a loaded conversation.
void load(conversation_state& st, const conversation_snapshot& snap);

/// Makes `user` a member of this direct conversation (creating it on the
/// first join); replies the sequence the member joined at. Groups are
/// joined by an admin's add instead (forbidden).
void handle_join(conversation_self self, user_id user,
                 caf::typed_response_promise<sequence> rp);

/// The group's name and up to `limit` current members after user `after`
/// (see conversation_actor). Errors: not_found, not_member.
caf::expected<group_info> group_page(const conversation_state& st,
                                     user_id requester, user_id after,
                                     uint32_t limit);

// -- queries ------------------------------------------------------------------

/// The member record of `user` (current or former), or null.
const member* find_member(const conversation_state& st, user_id user);

/// True if `user` is a member now (joined, not left).
bool is_current_member(const conversation_state& st, user_id user);

/// Members now (joined, not left).
size_t current_count(const conversation_state& st);

/// Everyone who ever joined (conversation_status).
size_t member_count(const conversation_state& st);

/// A group with more members than the limits' large_group_members: its
/// sends take a token of the group's bucket and go to the fan-out shards.
bool is_large(const conversation_state& st);

/// The members that see the message at `seq` (joined at or before it, not
/// left before it), in user order.
std::vector<user_id> members_at(const conversation_state& st, sequence seq);

/// The current members, in user order.
std::vector<user_id> current_members(const conversation_state& st);

/// True while a join that may create the conversation is under way.
bool creating(const conversation_state& st);

// -- changes (driven by the send path) ----------------------------------------

/// If `c` repeats the create that made this group (same creator and request
/// id), the group's creation time: its answer is the group's first event.
std::optional<int64_t> retried_create(const conversation_state& st,
                                      const group_change& c);

/// Checks a membership change against the group as it is now and lists
/// the member records it writes, for an event at sequence `seq`.
caf::error plan_change(const conversation_state& st, const group_change& c,
                       sequence seq, std::vector<member>& changed);

/// The records of a planned change before its MEMBERSHIP message: the
/// conversation record of a create (at `at_ms`).
void write_create(write_batch& batch, const conversation_state& st,
                  const group_change& c, int64_t at_ms);

/// The member records of a planned change (after its MEMBERSHIP message,
/// sequence `seq`), each with the event owed to the member's index
/// (conversation_memberships::write).
void write_members(write_batch& batch, const conversation_state& st,
                   const std::vector<member>& changed, sequence seq);

/// Applies a durable change (its event accepted at `at_ms`).
void apply_change(conversation_state& st, const group_change& c,
                  const std::vector<member>& changed, int64_t at_ms);

} // namespace conversation_groups

} // namespace parley
