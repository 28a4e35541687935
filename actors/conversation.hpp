#pragma once

// conversation: one actor per conversation. Owns membership, sequence
// allocation and idempotency; persists each message (with its idempotency
// record and the outbox watermark) through the store writer before it
// answers `accepted` and emits the message for delivery.
//
// Invariants: committed sequences are gapless from 1; a send key
// (user, device, client_message_id) maps to at most one sequence within the
// idempotency window; answers leave in sequence order; every committed
// message is emitted at least once (re-emitted after a restart from the
// outbox watermark) and at most once per incarnation.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/delivery.hpp"
#include "actors/node_metrics.hpp"
#include "actors/send_keys.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "actors/token_bucket.hpp"

namespace parley {

/// Who waits for a send's answer: the asker's response promise.
struct send_asker {
  caf::typed_response_promise<send_result> rp;
  /// store::send_digest of this asker's request (0 for membership changes:
  /// it matches any). Askers of one key that differ from the answered
  /// request get CONFLICT instead of its answer.
  uint64_t digest = 0;
  /// It took a token of the large group's bucket: given back if it is
  /// answered as a retry.
  bool took_group_token = false;

  void deliver(const send_result& res) {
    rp.deliver(res);
  }

  void deliver(const caf::error& err) {
    rp.deliver(err);
  }
};

using conversation_actor = caf::typed_actor<
  /// Accepts a message. Replies once it is durable, with the same answer for
  /// every repeat of its key inside the idempotency window. Errors:
  /// not_found, not_member, bad_request, too_large, storage_failed
  /// (retryable: nothing was kept).
  caf::replies_to<send_atom, send_request>::with<send_result>,
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
  /// Members' receipt cursors (sync, tests).
  caf::replies_to<receipt_atom>::with<std::vector<receipt_cursor>>,
  /// Reports head, dispatched watermark and in-flight count.
  caf::replies_to<caf::get_atom>::with<conversation_status>,
  /// Internal: write and push the receipt cursors that moved.
  caf::reacts_to<caf::flush_atom>,
  /// Internal: persist the outbox watermark if it moved.
  caf::reacts_to<caf::tick_atom>,
  /// Internal: end this actor if its conversation still does not exist.
  caf::reacts_to<retire_atom>>;

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
};

struct conversation_state {
  using key = send_key;

  /// A send between arrival and its answer.
  struct pending {
    enum class phase { lookup, duplicate, fresh, failed } ph = phase::lookup;
    send_request req;
    std::vector<send_asker> promises;
    idempotency_hit hit;
    caf::error err;
    stored_message msg; ///< once a sequence is assigned
    /// store::send_digest of the request (0 for membership changes: a
    /// repeat of their key is always a retry).
    uint64_t digest = 0;
    bool done = false;
    /// A membership change instead of a send (then `req` is unused).
    std::optional<group_change> change;
  };
  using pending_ptr = std::shared_ptr<pending>;

  conversation_id id = 0;
  conversation_deps deps;
  bool ready = false;
  bool exists = false;
  int32_t kind = 0;     ///< conversation_direct or conversation_group
  std::string group_name; ///< groups
  std::string group_description;
  int64_t created_at_ms = 0;
  user_id creator = 0;           ///< groups
  std::string create_request_id; ///< groups: the creator's request id
  size_t current_members = 0; ///< joined and not left
  spreading_bucket group_sends; ///< large groups only
  /// Jitter of the group bucket's retry hints (seeded by the id: the
  /// simulations replay).
  std::minstd_rand group_jitter;
  /// A membership change is being committed: sends wait behind it.
  bool changing = false;
  /// Joins under way that create the (direct) conversation.
  int creating = 0;
  /// A request that came before the conversation was ready: run once it
  /// is, or refused with the error the actor ends with (end_with).
  struct stashed {
    std::function<void()> run;
    std::function<void(const caf::error&)> refuse;
  };
  std::vector<stashed> stash; ///< requests before ready
  std::map<user_id, member> members;
  sequence_allocator seqs;
  sequence head = 0;
  sequence dispatched = 0;
  sequence watermark_sent = 0; ///< last watermark handed to the writer
  bool watermark_dirty = false;
  bool tick_scheduled = false;
  std::deque<pending_ptr> queue;           ///< arrival order, not yet assigned
  std::map<sequence, pending_ptr> inflight; ///< assigned, commit under way
  std::unordered_map<key, pending_ptr, send_key_hash> by_key; ///< unanswered
  recent_sends recent;                      ///< committed keys (bounded)
  committed_keys committed; ///< hashes of this incarnation's keys
  /// Until then, a key committed by an earlier incarnation may still be
  /// inside its window, so unknown keys must be looked up in the store.
  int64_t old_keys_live_until_ms = 0;
  sequence swept = 0;          ///< idempotency records gone up to here
  int64_t last_sweep_ms = 0;
  bool sweeping = false;
  std::set<key> sweep_guard;   ///< keys written while a sweep is pending
  /// Members' receipt cursors by (user, kind), those that moved since the
  /// last flush, and the flush's state (one write at a time).
  std::map<std::pair<user_id, int32_t>, sequence> receipts;
  std::map<std::pair<user_id, int32_t>, receipt_event> receipts_moved;
  /// Groups: how many members' cursors stand at each sequence, per kind
  /// (1 delivered, 2 read): the aggregates count from these.
  std::map<sequence, uint32_t> cursor_counts[3];
  /// Groups: each recent sender's latest message, and the aggregate last
  /// pushed to them for it (delivered, read).
  std::map<user_id, sequence> latest_by_sender;
  std::map<user_id, std::pair<uint32_t, uint32_t>> aggregate_sent;
  bool receipts_flush_queued = false;
  bool receipts_writing = false;
  uint64_t receipts_epoch = 1;

  /// Returns this incarnation's share of the outbox backlog gauge (the
  /// next incarnation counts what is left again).
  ~conversation_state() {
    if (deps.metrics)
      deps.metrics->outbox_backlog -= int64_t(head - dispatched);
  }

  static inline const char* name = "conversation";
};

conversation_actor::behavior_type conversation_impl(
  conversation_actor::stateful_pointer<conversation_state> self,
  conversation_id id, conversation_deps deps);

} // namespace parley
