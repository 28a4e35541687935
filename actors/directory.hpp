#pragma once

// directory: placement. Answers which actor hosts a conversation, spawning
// it on first use; callers reach conversations only through it, so the same
// code runs on one node now and on partitioned nodes later. It monitors what
// it spawned: a conversation that fails is respawned after `respawn_delay`
// (it recovers from the store and re-emits its outbox), or sooner by the
// next lookup.

#include <cstdint>
#include <chrono>
#include <map>
#include <set>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_actor.hpp>

#include "actors/conversation.hpp"

namespace parley {

using directory_actor = caf::typed_actor<
  /// Returns the actor of conversation `conv` (spawned if not running).
  caf::replies_to<caf::get_atom, conversation_id>::with<conversation_actor>,
  /// Lists the running conversations (for an orderly shutdown).
  caf::replies_to<caf::get_atom>::with<std::vector<conversation_actor>>,
  /// Internal: restart conversation `conv` if it is not running.
  caf::reacts_to<caf::spawn_atom, conversation_id>>;

struct directory_state {
  conversation_deps deps;
  std::map<conversation_id, conversation_actor> conversations;
  std::map<caf::actor_addr, conversation_id> by_addr;
  std::set<caf::actor_addr> linked; ///< children whose exit_msg is pending
  uint64_t spawned = 0;
  caf::timespan respawn_delay = std::chrono::seconds(1);

  static inline const char* name = "directory";
};

directory_actor::behavior_type
directory_impl(directory_actor::stateful_pointer<directory_state> self,
               conversation_deps deps);

} // namespace parley
