#pragma once

// The simulation's own actors: clients that send and retry until every
// message is acknowledged, a joiner that makes users members, and the
// delivery recorder. They report to the world, which outlives them.

#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/delivery.hpp"

namespace parley::sim {

class world;

struct client_plan {
  conversation_id conv;
  user_id user;
  device_id device;
  std::vector<std::string> cmids;
};

/// Sends every cmid of `plan` (with the world's window and copies),
/// retrying errors with backoff until each one has an answer.
caf::actor spawn_client(caf::actor_system& sys, world* w, client_plan plan);

/// Makes `user` a member of `conv`, retrying until it is.
caf::actor spawn_joiner(caf::actor_system& sys, world* w, conversation_id conv,
                        user_id user);

/// Records every delivery event in the world.
delivery_actor spawn_recorder(caf::actor_system& sys, world* w);

} // namespace parley::sim
