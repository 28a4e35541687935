#pragma once

// Internal to the device registry: its peers, the registries of other
// nodes (issue 22). Users of partitions another node owns are served by
// that node's registry: requests about them are handed to it with their
// sender kept, deliveries and receipts for them go on to it as one message
// per node. Only what came from an actor of this CAF node is handed on, so
// two nodes whose maps disagree never pass a message back and forth.

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

/// True if this node owns `user`'s partition. If not, the request being
/// handled is handed, as received and with its sender kept, to the owner's
/// registry if one is known and the request came from this node (`err`
/// stays empty: the owner answers); else `err` says why it is refused
/// (errc::unavailable).
bool served_here(self_ptr self, user_id user, caf::error& err);

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
