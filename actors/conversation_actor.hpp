#pragma once

// The conversation actor's interface: what other actors may ask of it, and
// what it is spawned with. Its state and behaviour are in
// actors/conversation.hpp; the parts of that behaviour (send path, groups,
// receipts, upkeep) declare their functions on `conversation_self`.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/delivery.hpp"
#include "actors/membership_sink.hpp"
#include "actors/node_metrics.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "actors/token_bucket.hpp"

namespace parley {

using conversation_actor = caf::typed_actor<
  /// Accepts a message. Replies once it is durable, with the same answer for
  /// every repeat of its key inside the idempotency window. Errors:
  /// not_found, not_member, bad_request, too_large, storage_failed
  /// (retryable: nothing was kept).
  caf::replies_to<send_atom, send_request>::with<send_result>,
  /// The same as an ordinary message (no CAF request; the client's hot
  /// path): answered to its sender, a send_answer_actor, with the tag and
  /// the result or the error. The sender keeps the deadline
  /// (runtime/core/reply_deadlines.hpp).
  caf::reacts_to<send_atom, tagged_send>,
  /// Adds `user` as a member (creating the conversation if needed); replies
  /// the member's joined_at_sequence once durable. Idempotent.
  caf::replies_to<caf::join_atom, user_id>::with<sequence>,
  /// A group membership change (create, add, remove, leave, promote,
  /// demote, rename), written to the log as a MEMBERSHIP message with its
  /// own sequence, in order with the sends around it: sends accepted
  /// before it keep the old membership, sends after it see the new one.
  /// Replies the event's sequence once durable. Errors: not_found (no such
  /// group), conflict (create of an existing id), forbidden (not an admin,
  /// a direct conversation, the last admin leaving others behind),
  /// not_member, bad_request (no targets, a name too long), too_large (past
  /// the group size limit).
  caf::replies_to<group_atom, group_change>::with<send_result>,
  /// The group's name and a page of its current members (user ids after
  /// `after`, at most `limit`), for `requester` (a current member).
  /// Errors: not_found, not_member.
  caf::replies_to<group_atom, user_id, user_id, uint32_t>::with<group_info>,
  /// Moves `user`'s receipt cursor of `kind` (sent from device `dev`, which
  /// is not pushed its own receipt back; 1 delivered: some device of
  /// the user has everything up to `seq`; 2 read) forward; `shared` false:
  /// a read the user's read-receipt setting keeps from others. Replies the
  /// cursor (never lower than before); it becomes durable and is pushed to
  /// the members' devices shortly after, a burst coalesced into one write
  /// and one event per cursor. Errors: not_member, cursor_ahead,
  /// bad_request.
  caf::replies_to<receipt_atom, user_id, device_id, int32_t, sequence,
                  bool>::with<sequence>,
  /// The same as an ordinary message, answered to its sender (a
  /// receipt_answer_actor) with the tag and the cursor or the error.
  caf::reacts_to<receipt_atom, tagged_receipt>,
  /// Members' receipt cursors (sync, tests).
  caf::replies_to<receipt_atom>::with<std::vector<receipt_cursor>>,
  /// Reports head, dispatched watermark and in-flight count.
  caf::replies_to<caf::get_atom>::with<conversation_status>,
  /// The conversation as it stands, for operators (conv show): kind, name,
  /// head (committed), dispatched watermark (emitted), every member who
  /// ever joined with role and window, and the members' receipt cursors as
  /// this actor holds them (the store's, plus any moved within the last
  /// receipt delay and not yet written). Error: not_found if the
  /// conversation does not exist.
  caf::replies_to<load_atom>::with<conversation_snapshot>,
  /// Internal: write and push the receipt cursors that moved.
  caf::reacts_to<caf::flush_atom>,
  /// Internal: persist the outbox watermark if it moved.
  caf::reacts_to<caf::tick_atom>,
  /// Internal: end this actor if its conversation still does not exist.
  caf::reacts_to<retire_atom>,
  /// Internal: the store writer's answer to a tagged commit.
  caf::reacts_to<commit_atom, commit_answer>,
  /// Internal: the commits' deadline tick (reply_deadlines).
  caf::reacts_to<expire_atom>,
  /// Internal: re-send unacked membership events, count down answers
  /// waiting for them (actors/conversation_memberships.hpp).
  caf::reacts_to<caf::update_atom>>;

/// Who sends a tagged_send: gets the answer as an ordinary message.
using send_answer_actor
  = caf::typed_actor<caf::reacts_to<send_atom, send_answer>>;

/// Who sends a tagged_receipt: gets the answer as an ordinary message.
using receipt_answer_actor
  = caf::typed_actor<caf::reacts_to<receipt_atom, receipt_answer>>;

/// The most members one group create or change may name: its MEMBERSHIP
/// event (at most ~23 bytes a member in JSON) must fit the smallest frame
/// limit a server may announce (max-server-frame-bytes).
inline constexpr size_t max_change_targets = 5000;

/// Milliseconds since the Unix epoch (injected: simulated in tests).
using clock_fn = std::function<int64_t()>;

/// Tunables of conversation actors (config: parley.conversation.*).
struct conversation_limits {
  int64_t idempotency_window_ms = 24 * 3600 * 1000;
  size_t idempotency_cache = 1024; ///< recent answers kept in memory
  /// Hashes of committed keys kept (24-32 bytes each) to skip store
  /// lookups.
  size_t idempotency_filter = 65536;
  size_t max_payload_bytes = 64 * 1024;
  uint64_t outbox_page = 256;      ///< messages per re-emission read
  uint64_t watermark_every = 64;   ///< messages between watermark writes
  int64_t sweep_interval_ms = 10 * 60 * 1000; ///< between idempotency sweeps
  uint64_t sweep_page = 1024;      ///< messages examined per sweep step
  caf::timespan watermark_delay = std::chrono::milliseconds(100);
  /// Receipts gather this long before their write and push (0: at once,
  /// behind what is already in the mailbox).
  caf::timespan receipt_delay{0};
  size_t max_group_size = 100'000; ///< members, admins included
  /// Groups with more members than this are large: their sends take a
  /// token from the group's own bucket (RATE_LIMITED when empty).
  size_t large_group_members = 256;
  bucket_spec large_group_send{}; ///< default: unlimited
  /// An actor spawned for an id that names no conversation (a lookup of an
  /// unknown id, or a creation that never came) ends after this long, so
  /// that ids made up by clients do not pile up actors. 0: never.
  caf::timespan retire_unused = std::chrono::seconds(30);
};

/// What every conversation actor is spawned with.
struct conversation_deps {
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  clock_fn clock;
  conversation_limits limits;
  std::shared_ptr<node_metrics> metrics{}; ///< may be null
  /// Gets the same message and receipt events as `delivery` (the inbox
  /// projection); may be null.
  delivery_actor projection{};
  /// Delivers the messages of large groups instead of `delivery`; null:
  /// `delivery` does.
  delivery_actor fanout{};
  /// Where membership events go (the directory sets itself); null: the
  /// member's index row is written in the conversation's own batch, a
  /// cross-partition batch (tests that spawn a conversation alone).
  membership_sink_actor memberships{};
};

struct conversation_state;

/// The actor as its parts see it (conversation_state is composed in
/// actors/conversation.hpp).
using conversation_self
  = conversation_actor::stateful_pointer<conversation_state>;

} // namespace parley
