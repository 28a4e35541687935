#pragma once

// Planned partition moves in a cluster (issue 22): the move of issue 21
// (runtime/store/partition_move.hpp) driven through etcd.
//
// Every clustered node runs a move agent (detached: it reads and writes its
// store synchronously), handed out by its front with its other actors:
//   (load_atom, p, partitions, next, max_keys)
//       -> (write_batch records, std::string span_end, bool done)
//     the old side's half of a chunk (store::read_chunk);
//   (commit_atom, p, partitions, next, span_end, write_batch records)
//       -> (uint64_t puts, uint64_t erases)
//     the new side's half (store::plan_apply), written synced;
//   (get_atom) -> uint64_t: the map epoch its node's store writer holds
//       (the keeper's newest map handed to the writer first: answered only
//       after the writer fenced and wrote what it accepted before it);
//   (get_atom, p, partitions) -> uint64_t: the keys in p's range now (one
//       read of the range, asked once before streaming: a move's total).
//
// A move of partition p from its owner A to node B, run on a thread of the
// node that took the admin request:
//   1. stream: a pass over p's range, A's chunks applied on B, while A
//      still serves p (if A is unreachable — dead, frozen, cut off — the
//      move fences first and the tail pass copies everything once A is
//      back and has taken the fence);
//   2. fence: an etcd transaction, compare-and-swap on the map key's
//      mod_revision, writes map_epoch E+1 with p owned by nobody; every
//      node's watch hands it to its keeper: A's writer refuses commits into
//      p from then on, every directory answers p's requests unavailable
//      (retryable). The driver waits until A's keeper holds E+1 (a node
//      frozen or dead meanwhile is waited for: p's data is only there);
//   3. tail: a second pass, now over a range that no longer changes;
//   4. switch: a transaction writes E+2 with p owned by B; the driver waits
//      until B's keeper holds it. The unavailability window is from the
//      fence's transaction to B holding the switch.
// A failure after the fence writes the map back with p on A (E+2). One
// move at a time per node that drives it; a concurrent change of the map
// by anyone fails the transaction, and the move with it.

#include <cstdint>
#include <memory>
#include <string>

#include <caf/fwd.hpp>

#include "runtime/core/placement.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley {

/// Keys per chunk of a move pass.
inline constexpr uint64_t move_chunk_keys = 2000;

/// Spawns a node's move agent (detached) over its store; `keeper` is the
/// node's map keeper, `writer` its store writer, `me` the node's id.
caf::actor spawn_move_agent(caf::actor_system& sys,
                            std::shared_ptr<kv_backend> kv, caf::actor keeper,
                            caf::actor writer, node_id me);

/// Where a move stands (GET /v1/admin/partitions, `moves`).
struct move_status {
  uint32_t partition = 0;
  node_id from = 0, to = 0;
  std::string phase = "starting"; ///< streaming, fencing, tail, switching, done, failed
  uint64_t chunks = 0, keys = 0, puts = 0, erases = 0;
  /// The keys the move expects to read in its passes: twice the keys of
  /// the range counted before streaming (the tail pass reads the whole
  /// range again); 0 if the old owner could not be asked (then streaming
  /// is skipped too). `keys` may pass it when the range grows meanwhile.
  uint64_t keys_total = 0;
  int64_t started_ms = 0, fenced_ms = 0, switched_ms = 0;
  uint64_t map_epoch = 0; ///< the map epoch the move wrote last
  std::string waiting;    ///< what it waits for now, if anything
  std::string error;

  bool finished() const {
    return phase == "done" || phase == "failed";
  }

  /// The unavailability window (switched - fenced), or -1 before the switch.
  int64_t window_ms() const {
    return switched_ms && fenced_ms ? switched_ms - fenced_ms : -1;
  }

  std::string json() const;
};

} // namespace parley
