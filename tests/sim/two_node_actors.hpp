#pragma once

// The two-node swarm's own actors: clients connected to one node that send
// by conversation id through that node's directory (routed: across the
// link when the other node owns the conversation) and retry with the same
// clientMessageId until answered; a joiner; and a delivery recorder per
// node. They report to the world, which outlives them.

#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/delivery.hpp"
#include "runtime/core/placement.hpp"

namespace parley::sim {

class two_node_world;

struct routed_plan {
  node_id home;          ///< the node the client is connected to
  conversation_id conv;
  user_id user;
  std::vector<std::string> cmids;
  /// Sends as the gateway does (tagged messages, answered with the tag,
  /// with a deadline of the client's own) instead of CAF requests.
  bool tagged = false;
};

/// Sends every cmid of `plan` through `plan.home`'s directory (window and
/// copies from the world's knobs), retrying errors and timeouts with
/// backoff until each one has an answer.
caf::actor spawn_routed_client(caf::actor_system& sys, two_node_world* w,
                               routed_plan plan);

/// Makes `user` a member of `conv` through `home`'s directory, retrying
/// until it is.
caf::actor spawn_routed_joiner(caf::actor_system& sys, two_node_world* w,
                               node_id home, conversation_id conv,
                               user_id user);

/// What one device's sync after heal saw.
struct synced {
  bool done = false;
  std::string error;                 ///< set: the sync failed
  std::vector<stored_message> messages;
  std::vector<inbox_entry> inbox;
};

/// Syncs `user`'s device through `home`'s directory from sequence 0 of
/// `conv` (a cursor, so every message comes), page by page, into `out`.
caf::actor spawn_syncer(caf::actor_system& sys, two_node_world* w,
                        node_id home, user_id user, conversation_id conv,
                        synced* out);

/// Records every delivery event of node `n` in the world.
delivery_actor spawn_node_recorder(caf::actor_system& sys, two_node_world* w,
                                   node_id n);

} // namespace parley::sim
