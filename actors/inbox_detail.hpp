#pragma once

// Internal to the inbox actor (actors/inbox.hpp): its parts, one concern
// per file. inbox.cpp: the conversation's side, events into rows;
// inbox_rows.cpp: rows sent to their partition's owner and written there
// in order; inbox_user.cpp: the user's side's list, flags and
// reconciliation; inbox_supervisor.cpp: the stable handle.

#include <cstdint>
#include <functional>
#include <vector>

#include <caf/expected.hpp>

#include "actors/inbox.hpp"
#include "runtime/store/inbox_reads.hpp"

namespace parley::inbox_detail {

using self_ptr = inbox_actor::stateful_pointer<inbox_state>;
using entry_key = inbox_state::key;
using done_fn = std::function<void(caf::expected<uint64_t>)>;

/// Reads by id: through the directory (requests with timeouts::ask) if
/// the inbox has one, else answered from the local store.
store::async_reads reads(self_ptr self);

/// A failure that may pass (a timeout, a partition moving, a write
/// refused for now): retried; others are logged and dropped.
bool worth_retrying(const caf::error& err);

// -- the conversation's side (inbox_rows.cpp) --------------------------------

/// Sets the row of `k` and queues its sending.
void mark(self_ptr self, const entry_key& k, const inbox_entry& e);

/// Queues a flush (behind what is queued now, or after the flush delay).
void queue_flush(self_ptr self);

/// Queues a retry (flush and stalled recomputations) after
/// timeouts::retry, once.
void queue_retry(self_ptr self);

/// Recomputes the rows whose recomputation failed (at a retry).
void retry_stalled(self_ptr self);

/// Sends the dirty rows: one inbox_rows per partition that has none in
/// flight; unacked rows become dirty again and go after timeouts::retry.
void flush(self_ptr self);

// -- the user's side (inbox_rows.cpp) ----------------------------------------

/// Writes the rows of `rows` newer than the stored ones (`repair`: also
/// equal ones, recounted from the log) in one batch; `done` gets how many
/// were written, or the writer's error.
void accept(self_ptr self, std::vector<inbox_row> rows, bool repair,
            done_fn done);

// -- the user's side (inbox_user.cpp) -----------------------------------------

/// Answers `q` for a user of this node's partition.
caf::result<std::vector<inbox_entry>> answer(self_ptr self,
                                             const inbox_query& q);

/// rebuild_atom: `user` (0: every user of this node's partitions, and the
/// members of its conversations) recomputed; `done` gets the count.
void rebuild(self_ptr self, user_id user, bool all, done_fn done);

// -- events (inbox.cpp) --------------------------------------------------------

/// Recomputes the row of `k` from the log (by message); the events that
/// arrive meanwhile are applied to the result. `after` runs once the row
/// is known (or failed).
void recompute(self_ptr self, const entry_key& k,
               std::function<void()> after = {});

} // namespace parley::inbox_detail
