#pragma once

// Internal to the device registry: its peers, the registries of other
// nodes (issue 22). Users of partitions another node owns are served by
// that node's registry: a join or lookup about one is asked of it in the
// node-to-node form (answered with a plain caf::actor: a typed handle has
// no type id, so a device_actor cannot cross BASP) and its answer passed
// on; an inbox update is handed to it with its sender kept; deliveries and
// receipts for them go on to it as one message per node. Only what came
// from an actor of this CAF node is handed on, and the node-to-node forms
// never are, so two nodes whose maps disagree never pass a message back
// and forth.

#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>

#include "actors/device_registry.hpp"

namespace parley::registry_peers {

using self_ptr = device_registry_actor::stateful_pointer<device_registry_state>;

/// Sets the registry of node `n`, or forgets it if `peer` is null; returns
/// how many peers are known.
uint64_t set_peer(self_ptr self, node_id n, caf::actor peer);

/// Recomputes `owns_all` after the map changed.
void map_changed(self_ptr self);

/// Where a request about a user goes.
struct placed {
  bool here = false;            ///< this node owns the user's partition
  device_registry_actor owner;  ///< else: the owner's registry, if usable
  caf::error err;               ///< else: why not (errc::unavailable)
};

/// Places `user` for the request being handled: here, at the owner's
/// registry (known, and the request came from this node), or refused.
placed place(self_ptr self, user_id user);

/// Error unless this node owns `user`'s partition, for a node-to-node
/// request from node `from` (never handed on).
caf::error check_asked_by(self_ptr self, user_id user, node_id from);

/// Asks `owner` for the device actor of (user, dev), attaching `conn`
/// (join) or not (lookup), and answers the request being handled with it.
caf::result<device_actor> join_at(self_ptr self,
                                  const device_registry_actor& owner,
                                  user_id user, device_id dev,
                                  caf::actor conn);
caf::result<device_actor> get_at(self_ptr self,
                                 const device_registry_actor& owner,
                                 user_id user, device_id dev);

/// Hands the message being handled, as received and with its sender kept,
/// to `owner` (a message that needs no answer).
void hand_on(self_ptr self, const device_registry_actor& owner);

/// The users of `to` this node owns. The others are sent on, grouped by
/// owner, as one (deliver_atom, msg, users) per node to its registry if
/// the delivery came from this node and a registry is known; else they are
/// skipped and counted. Returns `to` itself if the node owns every user,
/// else `buf`, filled with its own users.
const std::vector<user_id>& relay(self_ptr self, const stored_message& msg,
                                  const std::vector<user_id>& to,
                                  std::vector<user_id>& buf);

/// The same for a receipt event (receipt_atom, ev, users).
const std::vector<user_id>& relay(self_ptr self, const receipt_event& ev,
                                  const std::vector<user_id>& to,
                                  std::vector<user_id>& buf);

} // namespace parley::registry_peers
