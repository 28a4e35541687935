#pragma once

// inbox: the inbox projection of this node's users. It receives the same
// message and receipt events as device delivery and keeps, per (user,
// conversation), the latest activity, the user's read cursor and the count
// of messages from others after it, written to the 'x' table in coalesced
// batches. It is derived state: events it never saw (it crashed, the node
// crashed) are made up for by gap detection (a message that does not follow
// the last one counted recomputes the entry from the log), by the
// reconciler that runs at start (every entry that disagrees with the log is
// recomputed), and by `rebuild` (recompute everything). One actor per node
// for now; it can be sharded by user without changing its interface.
// Blocks on disk reads: spawned detached.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/delivery.hpp"
#include "actors/node_metrics.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley {

using inbox_actor = delivery_actor::extend<
  /// `user`'s inbox, most recent activity first, pinned first; entries
  /// found stale are recomputed from the log (and repaired).
  caf::replies_to<caf::get_atom, user_id>::with<std::vector<inbox_entry>>,
  /// Sets `user`'s flags (archived, pinned, muted) on `conv`; replies the
  /// entry. Error: forbidden (not a member).
  caf::replies_to<caf::put_atom, user_id, conversation_id, bool, bool,
                  bool>::with<inbox_entry>,
  /// Recomputes `user`'s entries (0: every user's) from the log: `all`
  /// rewrites each entry, otherwise only those that disagree with the log
  /// (reconcile). Replies how many entries were written.
  caf::replies_to<rebuild_atom, user_id, bool>::with<uint64_t>,
  /// Message and receipt events gathered by the supervisor, in order.
  caf::reacts_to<deliver_atom, projection_batch>,
  /// Internal: write the entries that changed.
  caf::reacts_to<caf::flush_atom>>;

struct inbox_state {
  std::shared_ptr<kv_backend> kv;
  store_writer_actor writer;
  std::map<std::pair<user_id, conversation_id>, inbox_entry> cache;
  std::set<std::pair<user_id, conversation_id>> dirty;
  bool flush_queued = false;
  bool writing = false;
  caf::timespan flush_delay{0}; ///< changes gather this long before a write
  uint64_t epoch = 1;
  /// The deployment's partitions (from the store): reads are grouped by
  /// partition (runtime/store/inbox_reads.hpp).
  uint32_t partitions = default_partitions;

  static inline const char* name = "inbox";
};

/// Spawn detached. `reconcile_at_start`: run the reconciler over every
/// user first (parleyd does; tests may not).
inbox_actor::behavior_type
inbox_impl(inbox_actor::stateful_pointer<inbox_state> self,
           std::shared_ptr<kv_backend> kv, store_writer_actor writer,
           bool reconcile_at_start, caf::timespan flush_delay,
           std::shared_ptr<node_metrics> metrics);

/// The stable handle of the node's inbox: forwards to an inbox actor it
/// runs and restarts it (reconciling at start, which makes up for the
/// events the failed one lost) when it fails. It also answers
/// (caf::get_atom) with the current inbox actor (tests crash it).
using inbox_supervisor_actor = inbox_actor::extend<
  caf::replies_to<caf::get_atom>::with<inbox_actor>>;

struct inbox_supervisor_state {
  std::shared_ptr<kv_backend> kv;
  store_writer_actor writer;
  bool detached = true;
  caf::timespan flush_delay{0};
  /// Events gather this long before one message takes them to the worker
  /// (each message to a detached actor wakes its thread).
  caf::timespan batch_delay{0};
  projection_batch pending;
  bool forward_scheduled = false;
  inbox_actor worker;
  uint64_t restarts = 0;
  /// projection_backlog: events forwarded to the worker, not yet handled.
  std::shared_ptr<node_metrics> metrics;

  static inline const char* name = "inbox_supervisor";
};

/// `detached`: run the inbox actor on its own thread (false only under the
/// test coordinator). `reconcile_first`: reconcile when it first starts
/// (restarts always reconcile).
inbox_supervisor_actor::behavior_type inbox_supervisor_impl(
  inbox_supervisor_actor::stateful_pointer<inbox_supervisor_state> self,
  std::shared_ptr<kv_backend> kv, store_writer_actor writer, bool detached,
  bool reconcile_first, caf::timespan flush_delay, caf::timespan batch_delay,
  std::shared_ptr<node_metrics> metrics);

} // namespace parley
