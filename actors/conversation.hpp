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

#include "actors/conversation_actor.hpp"
#include "actors/conversation_groups.hpp"
#include "actors/conversation_receipts.hpp"
#include "actors/conversation_upkeep.hpp"
#include "actors/send_keys.hpp"

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
  conversation_groups_state groups; ///< membership (conversation_groups.hpp)
  spreading_bucket group_sends; ///< large groups only
  /// Jitter of the group bucket's retry hints (seeded by the id: the
  /// simulations replay).
  std::minstd_rand group_jitter;
  /// A membership change is being committed: sends wait behind it.
  bool changing = false;
  /// A request that came before the conversation was ready: run once it
  /// is, or refused with the error the actor ends with (end_with).
  struct stashed {
    std::function<void()> run;
    std::function<void(const caf::error&)> refuse;
  };
  std::vector<stashed> stash; ///< requests before ready
  sequence_allocator seqs;
  sequence head = 0;
  std::deque<pending_ptr> queue;           ///< arrival order, not yet assigned
  std::map<sequence, pending_ptr> inflight; ///< assigned, commit under way
  std::unordered_map<key, pending_ptr, send_key_hash> by_key; ///< unanswered
  recent_sends recent;                      ///< committed keys (bounded)
  committed_keys committed; ///< hashes of this incarnation's keys
  /// Until then, a key committed by an earlier incarnation may still be
  /// inside its window, so unknown keys must be looked up in the store.
  int64_t old_keys_live_until_ms = 0;
  conversation_upkeep_state upkeep; ///< conversation_upkeep.hpp
  conversation_receipts_state receipts; ///< conversation_receipts.hpp

  /// Returns this incarnation's share of the outbox backlog gauge (the
  /// next incarnation counts what is left again).
  ~conversation_state() {
    if (deps.metrics)
      deps.metrics->outbox_backlog -= int64_t(head - upkeep.dispatched);
  }

  static inline const char* name = "conversation";
};

conversation_actor::behavior_type conversation_impl(
  conversation_actor::stateful_pointer<conversation_state> self,
  conversation_id id, conversation_deps deps);

} // namespace parley
