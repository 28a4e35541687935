#pragma once

// cluster_member: what makes a parleyd one node of a cluster (issue 22).
// Without --cluster.etcd nothing of it exists. With it, in this order:
//
//   1. join(): publishes the node's front actor on --cluster.listen over
//      CAF's middleman (loopback or private addresses only), starts the
//      lease thread (runtime/cluster/lease_runner.hpp), which registers
//      nodes/<id> = {host, port, incarnation} under the node's lease, waits
//      (bounded) for the first registration, and reads the partition map
//      (key `map`), creating it by a transaction if no node has yet.
//   2. The node starts with that map (node_options::map).
//   3. attach(): the front hands out the node's actors; each lease
//      transition goes to the store writer as lease_state (runtime/core/
//      lease_state.hpp, a generation that only grows; fenced = the writer
//      refuses writes for the node's partitions, retryably); a watch of the
//      map hands each newer map to the map keeper; a watch of nodes/
//      connects to every other registered node (the middleman's connect,
//      bounded), fetches its actors from its front, and gives them to the
//      directory, device registry, accounts and fan-out as peers
//      (put_atom, node_id, caf::actor). A peer whose connection drops or
//      whose registration goes is forgotten at once (a null actor): its
//      partitions answer unavailable (retryable) here until it is back.
//   4. leave(): stops the watches and the peer thread, revokes the lease
//      (the registration goes at once).
//
// Three epochs, kept apart: the partition map's `map_epoch` (ordered by
// etcd's transactions across nodes), the lease_state generation (one
// node's lease reports to its own writer), and the epoch clients see in
// Welcome and Sync (the store's, unrelated to both).

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/fwd.hpp>

#include "runtime/cluster/cluster_options.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/partition_move_driver.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley {

class node;

class cluster_member {
public:
  cluster_member(caf::actor_system& sys, cluster::cluster_options opts);
  ~cluster_member(); ///< leave()

  cluster_member(const cluster_member&) = delete;
  cluster_member& operator=(const cluster_member&) = delete;

  /// Step 1 above. `partitions`: the count for a map this node creates (0:
  /// default_partitions); an existing map keeps its own. Returns an error
  /// message, or empty.
  std::string join(uint32_t partitions);

  /// The map read or created by join().
  partition_map map() const;

  /// The lease deadline for the store writer (store_writer_limits::
  /// lease_deadline), once join() started the lease.
  std::shared_ptr<const std::atomic<int64_t>> lease_deadline() const;

  /// Step 3 above, once `n` has started on `kv` (its move agent reads and
  /// writes that store).
  void attach(const node& n, std::shared_ptr<kv_backend> kv);

  /// Starts moving partition `p` to node `to` (runtime/partition_move_
  /// driver.hpp) on a thread of its own: (202, the move's JSON), or an
  /// HTTP status and a message: 400 no such partition, 404 node not
  /// connected, 409 a move under way, 503 stopping.
  std::pair<unsigned, std::string> start_move(uint32_t p, node_id to);

  /// One move of a plan: partition `partition` to node `to`.
  struct move_step {
    uint32_t partition = 0;
    node_id to = no_node;
  };
  /// Called on the move thread as each move of a plan ends, with its step
  /// index and final status (phase "done" or "failed"). Must not block.
  using move_ended = std::function<void(size_t, const move_status&)>;

  /// Starts the moves of `plan` one after another on the move thread
  /// (cluster_moves.cpp); a failed move ends the plan (later steps are not
  /// run, `ended` is not called for them). The same answers as start_move,
  /// checked for every step before any starts: (202, the first move's JSON)
  /// or 400, 404, 409, 503 with a message. An empty plan is refused (400).
  std::pair<unsigned, std::string> start_moves(std::vector<move_step> plan,
                                               move_ended ended);

  /// The newest move of partition `p` this node drove or drives.
  std::optional<move_status> move_of(uint32_t p) const;

  /// The moves this node drove or drives, as a JSON array.
  std::string moves_json() const;

  /// The cluster as this node sees it (for the operator's `status`).
  struct view {
    node_id self = no_node;
    partition_map map;
    /// This node and the other registered ones: the address "host:port"
    /// of their cluster listener (this node's is live while lease_live).
    std::map<node_id, std::string> registered;
    std::set<node_id> connected; ///< others with a BASP link now
    bool etcd_up = false;
    bool lease_live = false;
  };
  view snapshot() const;

  /// Step 4 above. Idempotent.
  void leave();

  /// JSON members for /healthz: "node":N,"cluster":{...}.
  std::string health_fields() const;

  /// Prometheus lines for /metrics.
  std::string metrics() const;

  struct state; ///< shared with the threads (cluster_member.cpp)

private:
  std::shared_ptr<state> st_;
};

} // namespace parley
