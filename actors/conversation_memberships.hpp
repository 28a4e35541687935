#pragma once

// The conversation's relay of membership events (issue 21, item 7;
// runtime/core/membership_events.hpp): every member record a change
// writes ('b') comes with an event owed to the member's index ('g'), in
// the same batch, in the conversation's own partition. After the commit
// the events go to the directory (deps.memberships), which routes them by
// user to the owner of the user's partition; each ack erases its event.
// An event whose request fails or times out is re-sent by the next pass
// (every membership_timeouts::retry while anything is owed); an actor that
// ends owes its events on disk and re-sends them when it is activated
// again (at node start the outbox relay activates every conversation that
// owes events). A client's answer to a change waits until the events up to
// it are acked, or answers a retryable error after answer_passes passes.

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include <caf/error.hpp>

#include "actors/conversation_actor.hpp"

namespace parley {

/// The relay's data.
struct conversation_memberships_state {
  struct owed_event {
    membership_event ev;
    bool asking = false; ///< a request for it is under way
  };
  /// Events not acked yet, by (user, version).
  std::map<std::pair<user_id, uint64_t>, owed_event> owed;
  struct waiter {
    uint64_t upto = 0; ///< waits for every event of version <= upto
    int passes_left = 0;
    std::function<void(const caf::error&)> done;
  };
  std::vector<waiter> waiters;
  std::vector<membership_event> acked; ///< to erase from the store
  bool erasing = false;                ///< an erase commit is under way
  uint64_t erase_epoch = 0;            ///< of writer_ids::memberships(conv)
  bool pass_scheduled = false;
  uint64_t sent = 0;  ///< requests made (tests, logs)
  uint64_t acks = 0;  ///< acks received
};

struct conversation_state;

namespace conversation_memberships {

/// Writes member record `m` of a change with sequence `version`: 'b' and
/// the event owed to the member's index ('g'); without a sink
/// (deps.memberships null) 'b' and 'y' directly, as before events.
void write(write_batch& batch, const conversation_state& st, const member& m,
           uint64_t version);

/// After a durable change: relays the events of `changed` (version
/// `version`). Nothing without a sink.
void relay(conversation_self self, const std::vector<member>& changed,
           uint64_t version);

/// After load: re-sends every event the conversation still owes.
void load(conversation_self self, const conversation_snapshot& snap);

/// True if an event of version <= `upto` is not acked yet.
bool owes(const conversation_state& st, uint64_t upto);

/// Runs `done` once no event of version <= `upto` is owed (at once if
/// none is), or with a retryable error (errc::unavailable) after
/// membership_timeouts::answer_passes passes.
void when_acked(conversation_self self, uint64_t upto,
                std::function<void(const caf::error&)> done);

/// One pass (caf::update_atom): re-sends what is owed and not asked,
/// counts waiting answers down.
void pass(conversation_self self);

} // namespace conversation_memberships

} // namespace parley
