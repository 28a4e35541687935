#pragma once

// inbox: the inbox projection, in two halves (issue 21, item 7).
//
// The conversation's side (one actor per node): it receives the message
// and receipt events of the conversations this node runs (the same events
// as device delivery) and keeps, per (user, conversation), the latest
// activity, the user's read cursor and the count of messages from others
// after it. It writes nothing itself: the rows belong to the user's
// partition, so each flush sends the changed rows as `inbox_rows`
// (runtime/core/inbox_rows.hpp), one event per destination partition and
// at most one in flight per partition, through the directory to the
// partition owner's inbox; unacked rows stay dirty and go again, with
// their current value, after timeouts::retry. Events it never saw (it
// crashed, the node crashed) are made up for by gap detection (a message
// that does not follow the last one counted recomputes the row from the
// log), and by the reconciler at start (below).
//
// The user's side (the same actor, on the owner of the user's partition):
// it writes the rows it is sent, each only if newer than the stored one
// (row_newer: head, then read cursor), in one single-partition batch, and
// acks; it owns the flags ('f'), answers the inbox list and the flags
// request (routed here by the directory from wherever they arrived), and
// reconciles at start the users of the partitions this node owns.
//
// Reads go by message through the directory (fetch conv_reads /
// user_reads, runtime/store/inbox_reads.hpp's async reads) with timeouts;
// without a directory (`router` null: this node owns every partition) the
// same reads are answered from the local store and rows go to itself.
// The acceptance check reads the user's own stored rows locally. Spawned
// detached (local store reads).

#include <cstdint>
#include <functional>
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
#include "actors/directory.hpp"
#include "actors/node_metrics.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/inbox_rows.hpp"
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
  /// Recomputes `user`'s entries (0: those of every user of a partition
  /// this node owns, and the rows of every member of a conversation of
  /// one, sent to their owners) from the log: `all` rewrites each entry,
  /// otherwise only those that disagree with the log (reconcile). Replies
  /// how many entries were written or sent.
  caf::replies_to<rebuild_atom, user_id, bool>::with<uint64_t>,
  /// Message and receipt events gathered by the supervisor, in order.
  caf::reacts_to<deliver_atom, projection_batch>,
  /// The user's side: writes each row newer than the stored one (all of
  /// one partition, this node's) in one batch; replies how many it wrote.
  /// Idempotent. Errors: the writer's (the sender sends them again).
  caf::replies_to<caf::put_atom, inbox_rows>::with<uint64_t>,
  /// The user's side: the list, or the flags of one conversation
  /// (inbox_query), answered here for a user of this node's partition.
  caf::replies_to<fetch_atom, inbox_query>::with<std::vector<inbox_entry>>,
  /// The node's directory and the deployment's partition count: from now
  /// on reads and rows go through it.
  caf::reacts_to<caf::put_atom, directory_actor, uint32_t>,
  /// A new partition map (from the node's map keeper, before the
  /// directory): cached rows of partitions whose owner changed are
  /// forgotten (the store's copy may have been replaced by a move), except
  /// those still being sent or written. Replies the epoch it holds.
  caf::replies_to<caf::put_atom, partition_map>::with<uint64_t>,
  /// Internal: send the rows that changed.
  caf::reacts_to<caf::flush_atom>,
  /// Internal: send unacked rows again, recompute stalled rows.
  caf::reacts_to<caf::timeout_atom>>;

struct inbox_state {
  using key = std::pair<user_id, conversation_id>;
  std::shared_ptr<kv_backend> kv;
  store_writer_actor writer;
  directory_actor router; ///< null: this node owns every partition
  // -- the conversation's side --
  std::map<key, inbox_entry> cache;
  std::set<key> dirty;
  /// Rows sent to a partition and not acked yet, by partition.
  std::map<uint32_t, std::vector<key>> sending;
  /// Events for rows being recomputed, applied to the recomputed row.
  std::map<key, std::vector<projection_event>> waiting;
  /// Rows whose recomputation failed (retryably), with their events:
  /// recomputed again at the next retry.
  std::map<key, std::vector<projection_event>> stalled;
  bool flush_queued = false;
  bool retry_queued = false;
  /// Steps to take again at the next retry (a reconciliation's).
  std::vector<std::function<void()>> deferred;
  // -- the user's side --
  /// Rows accepted (written, or being written), for the order check.
  std::map<key, inbox_entry> rows;
  size_t writes = 0; ///< row batches being written
  /// Rows in batches being written, by key (how many batches): a row
  /// accepted again meanwhile is written again, not acked on the strength
  /// of a write that may still fail.
  std::map<key, unsigned> row_writes;
  caf::timespan flush_delay{0}; ///< changes gather this long before a write
  uint64_t epoch = 1;
  /// The newest partition map handed to this inbox (empty: none yet).
  partition_map map;
  /// The deployment's partitions (from the store): reads are grouped by
  /// partition (runtime/store/inbox_reads.hpp).
  uint32_t partitions = default_partitions;

  static inline const char* name = "inbox";
};

/// Spawn detached. `router`: the node's directory (null: none yet, or
/// none at all), routing by `partitions` (0: the store's count).
/// `reconcile_at_start`: run the reconciler first (a
/// restarted worker does; parleyd asks for it once the directory is set).
inbox_actor::behavior_type
inbox_impl(inbox_actor::stateful_pointer<inbox_state> self,
           std::shared_ptr<kv_backend> kv, store_writer_actor writer,
           directory_actor router, uint32_t partitions,
           bool reconcile_at_start,
           caf::timespan flush_delay, std::shared_ptr<node_metrics> metrics);

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
  directory_actor router; ///< handed to every worker
  uint32_t partitions = 0; ///< the router's
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
