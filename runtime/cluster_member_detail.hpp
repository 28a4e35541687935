#pragma once

// cluster_member's shared state (runtime/cluster_member.hpp), used by its
// threads: the lease thread's callback, the map watch's thread and the
// peer thread (cluster_peers.cpp). Guarded by `mtx` unless said otherwise.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "runtime/admin/json_text.hpp"
#include "runtime/cluster/cluster_options.hpp"
#include "runtime/cluster/cluster_tls.hpp"
#include "runtime/cluster/etcd_client.hpp"
#include "runtime/cluster/lease_runner.hpp"
#include "runtime/cluster_member.hpp"
#include "runtime/partition_move_driver.hpp"

namespace parley {

/// A registered node as its nodes/<id> key says (JSON).
struct node_registration {
  node_id node = 0;
  cluster::host_port at;
  std::string incarnation;
};

/// Parses a nodes/<id> value; nullopt if malformed.
std::optional<node_registration> parse_registration(const std::string& json);

/// The JSON of a registration.
std::string registration_json(const node_registration& r);

/// The map key's value: {"map_epoch":E,"partitions":K,"owners":[...]}.
std::string map_json(const partition_map& m);

/// Parses a map value; nullopt if malformed (no owners, an owner of 0).
std::optional<partition_map> parse_map(const std::string& json);

/// The node's actors that peers get from its front, in this order.
struct node_actors {
  caf::actor directory, registry, accounts, fanout;
  caf::actor mover; ///< its move agent (runtime/partition_move_driver.hpp)
};

struct cluster_member::state {
  state(caf::actor_system& s, cluster::cluster_options o)
    : sys(s), opts(std::move(o)) {}

  caf::actor_system& sys;
  const cluster::cluster_options opts;
  /// Mutual TLS between nodes, if configured (cluster_tls.hpp).
  cluster::tls_files tls() const {
    return {opts.tls_cert, opts.tls_key, opts.tls_ca};
  }
  std::unique_ptr<cluster::etcd_client> cp;
  node_registration self;
  caf::actor front; ///< published on opts.listen

  std::mutex mtx;
  std::condition_variable cv;

  // The lease (runtime/core/lease_state.hpp).
  std::unique_ptr<cluster::lease_runner> lease;
  bool lease_live = false;
  /// Renewed, but the map could not be re-read yet (refresh_map): still
  /// fenced; the peer thread retries.
  bool live_pending = false;
  uint64_t lease_generation = 0;
  caf::actor writer; ///< set by attach(): lease reports go to it

  // The partition map.
  partition_map map;
  int64_t map_revision = 0; ///< etcd revision the map was read at
  caf::actor keeper;        ///< set by attach()
  std::unique_ptr<cluster::watch_handle> map_watch;

  // Peers (cluster_peers.cpp).
  node_actors local;
  std::map<node_id, node_registration> wanted; ///< registered, not self
  struct peer {
    std::string incarnation;
    caf::actor front;
    node_actors actors;
  };
  std::map<node_id, peer> connected;
  std::set<node_id> lost; ///< connections that dropped
  /// Actors of lower-numbered nodes that dialled this one (their hello),
  /// taken into `connected` by the peer thread.
  std::map<node_id, node_actors> inbound;
  bool rewatch_nodes = false;
  bool stopping = false;
  std::thread peers_thread;
  std::unique_ptr<cluster::watch_handle> nodes_watch;
  std::atomic<bool> etcd_up{true};

  // Moves this node drives (partition_move_driver.cpp), by partition.
  std::map<uint32_t, move_status> moves;
  bool moving = false; ///< one at a time
  std::thread move_thread;
};

/// Sends the lease state (live, next generation) to the writer, if set.
/// Call with st.mtx held.
void report_lease(cluster_member::state& st);

/// Reads the map from etcd and, if newer than the one held, hands it to the
/// keeper and waits for it (bounded). True once the node holds etcd's map.
/// Call without st.mtx held.
bool refresh_map(cluster_member::state& st);

/// Runs a move of partition `p` to node `to` (partition_move_driver.cpp),
/// on the calling thread, to its end; st.moves[p] says where it stands.
void run_move(const std::shared_ptr<cluster_member::state>& sp, uint32_t p,
              node_id to);

/// The map key's value and mod_revision as etcd holds it now.
struct map_at {
  partition_map map;
  int64_t mod_revision = 0;
};
std::optional<map_at> read_map(cluster_member::state& st);

/// The map key, "/parley/<name>/map".
std::string map_key(const cluster::cluster_options& o);

/// A lower-numbered node's hello through the front: records its actors
/// for the peer thread. Takes st.mtx.
void inbound_hello(cluster_member::state& st, node_id from,
                   node_actors actors);

/// Starts the peer thread (after attach()).
void start_peers(const std::shared_ptr<cluster_member::state>& st);

/// Ends the peer thread and the nodes watch. Idempotent.
void stop_peers(cluster_member::state& st);

} // namespace parley
