#pragma once

// The conversation's upkeep, apart from its send path: the outbox (how far
// committed messages were emitted, re-emitting the rest after a restart,
// persisting that watermark), sweeping idempotency records whose window has
// passed, and the actor's end (retiring an actor whose conversation does
// not exist; ending with an error). Owns conversation_upkeep_state.
//
// Calls: the send path (emit, commit, its head and what waits on it:
// fail_all, unanswered keys), groups (a creation under way), receipts
// (hand_over on the way out), the store reader and writer. Called by the
// send path (note_emitted, watermark and sweep hooks) and by the actor's
// behaviour (ticks, load, retire).

#include <cstdint>
#include <functional>
#include <set>

#include <caf/error.hpp>

#include "actors/conversation_actor.hpp"
#include "actors/send_keys.hpp"

namespace parley {

/// Outbox watermark and idempotency sweep (data only).
struct conversation_upkeep_state {
  sequence dispatched = 0;     ///< emitted for delivery up to here
  sequence watermark_sent = 0; ///< last watermark handed to the writer
  bool watermark_dirty = false;
  bool tick_scheduled = false;
  sequence swept = 0;          ///< idempotency records gone up to here
  int64_t last_sweep_ms = 0;
  bool sweeping = false;
  std::set<send_key> sweep_guard; ///< keys written while a sweep is pending
};

namespace conversation_upkeep {

/// Takes the watermark and sweep mark of a loaded conversation (after the
/// send path took its head) and counts its backlog in the metrics.
void load(conversation_state& st, const conversation_snapshot& snap);

/// Emitted up to here.
sequence dispatched(const conversation_state& st);

// -- outbox -------------------------------------------------------------------

/// The send path emitted the message at `seq`: advances the outbox.
void note_emitted(conversation_self self, sequence seq);

/// Adds the watermark to a send's batch if `watermark_every` messages were
/// emitted since the last one rode along.
void add_watermark_if_due(conversation_state& st, write_batch& batch);

/// A commit of the current epoch failed: a watermark that rode with it may
/// be lost, so it is written again.
void watermark_lost(conversation_state& st);

/// Arms the idle timer that persists the outbox watermark.
void schedule_watermark(conversation_self self);

/// Persists the outbox watermark now unless a commit is in flight.
void on_tick(conversation_self self);

/// Persists what the relay re-emitted, if anything (before new sends).
void flush_watermark(conversation_self self);

/// Re-emits the log suffix after the watermark, in order, a page at a time;
/// then runs `done`.
void relay(conversation_self self, std::function<void()> done);

// -- idempotency sweep --------------------------------------------------------

/// Starts an idempotency sweep if one is due: deletes the idempotency
/// records of messages older than the window, in sequence order.
void maybe_sweep(conversation_self self);

/// A send is written under `k`: while a sweep is pending, its record must
/// survive the sweep's deletions.
void guard_key(conversation_state& st, const send_key& k);

// -- the actor's end ----------------------------------------------------------

/// If the conversation does not exist: asks for `on_retire` after the
/// limits' `retire_unused` (never if that is 0).
void schedule_retire(conversation_self self);

/// Ends the actor if its conversation still does not exist and no creation
/// is under way (then it asks again later).
void on_retire(conversation_self self);

/// Ends the actor with `why` (the directory respawns it, and the new
/// incarnation reloads from the store) after refusing with `why`
/// everything that waits on it: sends and changes queued or in flight, and
/// requests stashed before it was ready. Receipt cursors not yet written
/// are handed to the writer first. Used when a load or an outbox read
/// fails and when the outcome of a commit is unknown.
void end_with(conversation_self self, const caf::error& why);

} // namespace conversation_upkeep

} // namespace parley
