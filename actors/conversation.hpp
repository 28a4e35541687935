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
//
// The interface (conversation_actor, conversation_deps, the limits) is in
// actors/conversation_actor.hpp. The behaviour is split by concern, each
// part with its state and a header as its contract:
//   conversation_send.hpp      admit, sequence, commit, answer, emit
//   conversation_groups.hpp    members, roles, changes, pages
//   conversation_receipts.hpp  cursors, coalesced flushes, aggregates
//   conversation_upkeep.hpp    outbox watermark, idempotency sweep, the end
// conversation.cpp holds the message dispatch and the load.

#include <cstdint>
#include <functional>
#include <vector>

#include <caf/error.hpp>

#include "actors/conversation_actor.hpp"
#include "actors/conversation_groups.hpp"
#include "actors/conversation_memberships.hpp"
#include "actors/conversation_receipts.hpp"
#include "actors/conversation_send.hpp"
#include "actors/conversation_upkeep.hpp"

namespace parley {

/// The actor's state: the four parts, and what they share.
struct conversation_state {
  conversation_id id = 0;
  conversation_deps deps;
  bool ready = false;  ///< loaded (and the outbox re-emitted)
  bool exists = false; ///< created (a direct join or a group create)
  int32_t kind = 0;    ///< conversation_direct or conversation_group
  conversation_groups_state groups; ///< conversation_groups.hpp
  /// A request that came before the conversation was ready: run once it
  /// is, or refused with the error the actor ends with
  /// (conversation_upkeep::end_with).
  struct stashed {
    std::function<void()> run;
    std::function<void(const caf::error&)> refuse;
  };
  std::vector<stashed> stash;           ///< requests before ready
  conversation_send_state send;         ///< conversation_send.hpp
  conversation_upkeep_state upkeep;     ///< conversation_upkeep.hpp
  conversation_receipts_state receipts; ///< conversation_receipts.hpp
  /// conversation_memberships.hpp
  conversation_memberships_state memberships;

  /// Returns this incarnation's share of the outbox backlog gauge (the
  /// next incarnation counts what is left again).
  ~conversation_state() {
    if (deps.metrics)
      deps.metrics->outbox_backlog -= int64_t(send.head - upkeep.dispatched);
  }

  static inline const char* name = "conversation";
};

conversation_actor::behavior_type conversation_impl(
  conversation_actor::stateful_pointer<conversation_state> self,
  conversation_id id, conversation_deps deps);

} // namespace parley
