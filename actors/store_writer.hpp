#pragma once

// store_writer: the only writer of the node's database. Group commit: it
// merges every commit request pending in its mailbox into one batch, makes
// one synced write, then answers each requester. Nothing is acknowledged
// before it is on disk; a failed write fails every request in that batch.
//
// Fencing: when a batch fails, each writer (conversation) in it is fenced at
// its epoch; later commits of that writer with an epoch <= the fenced one
// fail with `errc::storage_fenced` without being written. A writer that saw
// a failure bumps its epoch, so its later sequences never land after a hole.
// Writer ids are stable (runtime/core/writer_ids.hpp), so a new incarnation
// of a writer may meet its predecessor's fence: a conversation's load
// clears it; other writers move past it with next_epoch.
//
// Partition fence: a node that gives a partition up (a map epoch in which
// it no longer owns it, handed over with put_atom, node_id, partition_map)
// refuses every commit that touches a key of that partition's range
// (errc::unavailable, retryable; the writer is fenced at that epoch as for
// a failed write) and drops unsynced puts into it, so nothing lands on the
// old owner after a move's final copy (runtime/store/partition_move.hpp).
// Until the first map the writer fences nothing; the first map fences
// nothing either (only a change from owned to not owned does), so records
// a node writes for partitions it never owned (today's cross-partition
// writes) are left alone. A later map that gives the partition back lifts
// its fence. The answer to the map comes after everything accepted before
// it is written.
//
// Lease fence (issue 22): while the node's lease is not live (put_atom,
// lease_state with live false), every commit that touches a key of a
// partition this node owns at the current map (every partitioned key
// before the first map) is refused with errc::unavailable ("the node's
// lease lapsed; retry") without being written, and the writer is fenced
// at that epoch as for a failed write; unsynced puts into those
// partitions are held, not written, until the lease is live again (then
// written; dropped if the map takes the partition away meanwhile). Meta keys and partitions owned by other nodes
// are not affected, and neither the map nor the partition fence changes.
// The answer comes after everything accepted before it is written, so
// once it is answered nothing more lands there until a live report.
// Three epochs, kept apart: the map's map_epoch (cluster-wide, orders
// ownership), a writer's fence epoch (per writer id, orders its commits
// around a hole), and the lease generation (orders this node's lease
// reports to its writer only; an older one is ignored). The writer starts
// live at generation 0: a node without a cluster never sends the message.
// A clustered node also gives it the lease thread's deadline
// (store_writer_limits::lease_deadline): at or past it the fence holds
// without waiting for the report, so a process resumed after SIGSTOP
// refuses the work it had queued before its lease thread runs. The
// deadline is checked when a commit arrives and again when the batch is
// written: a commit accepted before it but not written by then is refused
// with its whole batch (as a failed write; its writer fenced), also when
// a later commit refused for the lease reaches the writer first. A batch
// whose sync starts before the deadline may end shortly after it; the
// margin (1.5 s by default) covers that sync.
//
// Blocks on disk: node.cpp spawns it detached (its own thread).

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <caf/error.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>
#include <caf/replies_to.hpp>

#include "actors/node_metrics.hpp"
#include "runtime/core/lease_state.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/core/type_ids.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley {

using store_writer_actor = caf::typed_actor<
  /// Commits `batch` for `writer` in `epoch`. Replies the number of the
  /// synced write that made it durable, or an error; then nothing of it
  /// was written.
  caf::replies_to<commit_atom, uint64_t, uint64_t, write_batch>::with<uint64_t>,
  /// The same as an ordinary message (no CAF request, no clock entry; the
  /// hot paths): answered to its sender, which must handle
  /// (commit_atom, commit_answer) (commit_answer_actor), with the tag and
  /// the synced write's number or the error. The sender keeps the deadline
  /// (runtime/core/reply_deadlines.hpp).
  caf::reacts_to<commit_atom, tagged_commit>,
  /// Writes everything pending, clears the fence of conversation `conv` and
  /// reads its snapshot. Everything committed before this request is in it.
  caf::replies_to<load_atom, conversation_id>::with<conversation_snapshot>,
  /// Adds `batch` (plain puts only) to the next write, without a sync or
  /// an answer of its own: for records a crash may lose. (The idle outbox watermark: after a
  /// crash the conversation re-emits from an older one, and devices skip
  /// what they have.) Written with the next group commit, or on its own
  /// after the mailbox is drained, unsynced if no commit waits.
  caf::reacts_to<caf::put_atom, write_batch>,
  /// This node is `self` and `map` the newest partition map: fences the
  /// partitions `self` gave up since the previous map (see above), after
  /// writing everything pending. Replies the map's epoch. Errors:
  /// bad_request (invalid map, another partition count), conflict (an
  /// epoch below the current one; the same epoch is answered as is).
  caf::replies_to<caf::put_atom, node_id, partition_map>::with<uint64_t>,
  /// The node's lease is `lease.live` (see above), reported with a
  /// generation that only grows (the first is 1); one not above the
  /// generation in force is ignored. After writing everything pending,
  /// replies the generation in force.
  caf::replies_to<caf::put_atom, lease_state>::with<uint64_t>,
  /// Writes everything pending now; replies the number of synced writes.
  caf::replies_to<caf::flush_atom>::with<uint64_t>,
  /// Group commit counters.
  caf::replies_to<stats_atom>::with<writer_stats>,
  /// Internal: a batch is pending; write it.
  caf::reacts_to<caf::tick_atom>>;

/// Who asks with a tagged_commit: gets the answer as an ordinary message.
using commit_answer_actor
  = caf::typed_actor<caf::reacts_to<commit_atom, commit_answer>>;

/// Tunables of the store writer.
struct store_writer_limits {
  /// Write early once a batch holds this many operations.
  size_t max_batch_ops = 20000;
  /// Where to record each synced write's duration (may be null).
  std::shared_ptr<node_metrics> metrics;
  /// A clustered node's lease deadline (lease_runner::deadline(): steady
  /// clock nanoseconds, 0 while fenced): at or past it the lease fence
  /// holds as if a report had said so. Null: reports only.
  std::shared_ptr<const std::atomic<int64_t>> lease_deadline;
  /// The clock lease_deadline is compared with (nanoseconds); empty: the
  /// steady clock. Simulations give the virtual clock their keepers use.
  std::function<int64_t()> lease_clock;
};

struct store_writer_state {
  struct waiter {
    uint64_t writer;
    uint64_t epoch;
    caf::typed_response_promise<uint64_t> promise; ///< a request's
    commit_answer_actor to; ///< or a tagged commit's sender
    uint64_t tag = 0;
  };

  std::shared_ptr<kv_backend> kv;
  store_writer_limits limits;
  write_batch pending;
  std::map<std::string, uint64_t> pending_max; ///< max_u64 ops, merged
  std::vector<kv_op> pending_versioned; ///< versioned puts, in order
  /// Puts that need no sync (put_atom), latest value per key; written
  /// before `pending` (a commit's newer value of a key wins) and kept
  /// across a failed write until one succeeds.
  std::map<std::string, std::string> lazy;
  /// Such puts into this node's partitions that came while its lease was
  /// not live: kept (its partitions are still its own) and written once
  /// the lease is live again; dropped if the map takes the partition away.
  std::map<std::string, std::string> held;
  bool retry_scheduled = false; ///< a retry of `lazy` after a failure
  std::vector<waiter> waiting;
  bool tick_scheduled = false;
  std::map<uint64_t, uint64_t> fenced; ///< writer -> highest failed epoch
  writer_stats stats;
  /// The newest map this writer was given (map_epoch 0: none) and, per
  /// partition, whether this node gave it up (the partition fence).
  partition_map map;
  std::vector<bool> given_up;
  bool any_given_up = false;
  node_id me = no_node; ///< this node, as the newest map named it
  lease_state lease; ///< the lease fence: refuses while !lease.live

  static inline const char* name = "store_writer";
};

/// The epoch a writer uses after `err` failed its commit of `epoch`: the
/// next one, or one past the fenced epoch that refused it (storage_fenced
/// carries it), so a writer that inherits a stable id's fence from an
/// earlier incarnation gets past it on its next try.
uint64_t next_epoch(const caf::error& err, uint64_t epoch);

store_writer_actor::behavior_type
store_writer_impl(store_writer_actor::stateful_pointer<store_writer_state> self,
                  std::shared_ptr<kv_backend> kv, store_writer_limits limits);

} // namespace parley
