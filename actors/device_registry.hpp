#pragma once

// device_registry: the node's index of device actors and the delivery
// target of conversations. It spawns a device's actor when a connection of
// the device joins, forwards every committed message to the device actors of
// its recipients that hold a connection (devices without one get nothing
// pushed: they catch up by sync), and retires device actors that have been
// without a connection for `idle_ttl`. A device actor that fails takes its
// connection down with it (the client reconnects and syncs). It serves only
// users whose partition this node owns (`device_registry_options::where`);
// a newer map that moves a user away stops the user's device actors and
// closes their connections (device_unavailable: the client reconnects and
// syncs). Users owned by another node are served by that node's registry
// (`peers`, set at run time by the cluster; device_registry_peers.hpp): a
// join or lookup of such a user is asked of it and its answer passed on
// (the device actor there talks to the connection here over CAF's
// middleman), an inbox update handed to it with its sender kept, and
// deliveries and receipts for such users go on to it as one message per
// node. Only what came from an actor of this CAF node is
// handed on (no ping-pong between nodes whose maps disagree): a request
// from another node, or for a node with no known registry, answers
// errc::unavailable and spawns nothing; such deliveries are skipped and
// counted (those devices catch up by sync). Large-group fan-out shards
// hand it one message per batch of users of its partitions, (fanout_atom,
// stored_message, user ids): it passes the message to those users' connected
// device actors (each passes a large-group message to its connection at most
// once).

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/delivery.hpp"
#include "actors/device.hpp"
#include "runtime/core/placement.hpp"

namespace parley {

using device_registry_actor = delivery_actor::extend<
  /// Attaches connection `conn` to the device actor of (user, device),
  /// spawned on first use; an earlier connection of the device is closed.
  /// Replies the device actor (acks go to it). Another node's user: handed
  /// to that node's registry (see above), else unavailable.
  caf::replies_to<caf::join_atom, user_id, device_id,
                  caf::actor>::with<device_actor>,
  /// `user` changed an inbox entry on device `origin`: pushed to the user's
  /// other connected devices (another node's user: handed on as a join).
  caf::reacts_to<caf::update_atom, user_id, device_id, inbox_entry>,
  /// Large-group fan-out: `msg` to the connected devices of `users` (of
  /// any partitions this node owns), except the sending device; replies how
  /// many got it. Error: unavailable, and nothing sent, if another node
  /// owns the partition of any of `users` (the sender's map is stale: the
  /// batch's members sync).
  caf::replies_to<fanout_atom, stored_message,
                  std::vector<user_id>>::with<uint64_t>,
  /// The running device actor of (user, device), asked of the owner's
  /// registry for another node's user (as a join). Error: not_found, or
  /// unavailable if another node owns the user's partition and it cannot
  /// be asked.
  caf::replies_to<caf::get_atom, user_id, device_id>::with<device_actor>,
  /// The node-to-node forms of join and lookup, from the registry of node
  /// `from` for a user of this node's partitions: the same, answered with
  /// the device actor as a plain caf::actor (a typed handle has no type id
  /// to cross BASP with). Error: unavailable if this node does not own the
  /// user's partition (never handed on again).
  caf::replies_to<caf::join_atom, node_id, user_id, device_id,
                  caf::actor>::with<caf::actor>,
  caf::replies_to<caf::get_atom, node_id, user_id, device_id>::with<
    caf::actor>,
  /// Sets (or, with a null handle, forgets) the device registry of node `n`
  /// (cast to device_registry_actor) that this node's deliveries and
  /// requests for users of that node's partitions go to from now on (the
  /// cluster member, from CAF's middleman); replies how many peers are
  /// known. A plain value, as the accounts actor's.
  caf::replies_to<caf::put_atom, node_id, caf::actor>::with<uint64_t>,
  /// Replaces the partition map, as the directory's put_atom does (whoever
  /// changes the map sends it to both); replies the new epoch. Errors:
  /// conflict (an epoch not above the current one), bad_request.
  caf::replies_to<caf::put_atom, partition_map>::with<uint64_t>,
  /// Who answers device actors' delivered-cursor limits from now on (the
  /// node's directory, spawned after the registry: node.cpp sends it
  /// before anything can join); running device actors get it too.
  caf::reacts_to<caf::put_atom, ack_limit_actor>,
  /// Internal: retires device actors idle for `idle_ttl`.
  caf::reacts_to<caf::tick_atom>>;

struct device_registry_options {
  /// How long a device actor outlives its last connection.
  std::chrono::milliseconds idle_ttl = std::chrono::seconds(60);
  device_options device;
  /// This node and the partition map: which users it serves.
  placement where = placement::single_node();
};

struct device_registry_state {
  struct entry {
    device_actor actor;
    caf::actor_addr conn; ///< null: no connection attached
    caf::actor_clock::time_point offline_since;
  };

  device_deps deps;
  device_registry_options opts;
  /// Looked up on every delivery; unordered (nothing walks it in order).
  std::unordered_map<user_id, std::map<device_id, entry>> devices;
  std::map<caf::actor_addr, std::pair<user_id, device_id>> by_conn;
  std::map<caf::actor_addr, std::pair<user_id, device_id>> by_device;
  std::set<caf::actor_addr> linked; ///< devices whose exit_msg may come
  uint64_t forwarded = 0;
  uint64_t fanned_out = 0; ///< large-group messages passed to devices
  /// Registries of other nodes, by node id (put_atom, node_id, actor).
  std::map<node_id, device_registry_actor> peers;
  /// True while this node owns every partition (no user is another's).
  bool owns_all = true;
  /// Deliveries and receipts handed on to other nodes' registries
  /// (messages), and users of them skipped: of a node with no known
  /// registry (`unrouted`), or not this node's in one that came from
  /// another node (`dropped`, never handed on again).
  uint64_t relayed = 0;
  uint64_t unrouted = 0;
  uint64_t dropped = 0;

  static inline const char* name = "device_registry";
};

device_registry_actor::behavior_type device_registry_impl(
  device_registry_actor::stateful_pointer<device_registry_state> self,
  device_deps deps, device_registry_options opts);

} // namespace parley
