#pragma once

// Where a conversation sends the membership events it owes its members'
// indexes (runtime/core/membership_events.hpp): the node's directory, which
// routes each by the user's partition to the owner's node and writes the
// user's 'y' row there (actors/directory_memberships.cpp).

#include <cstdint>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "runtime/core/type_ids.hpp"

namespace parley {

using membership_sink_actor = caf::typed_actor<
  /// Applies `ev` to its user's index (a versioned write: an older or
  /// repeated event leaves a newer row alone); replies ev.version once the
  /// index holds that version or a newer one durably. Errors: unavailable
  /// (the user's partition owner is unreachable), the store writer's.
  caf::replies_to<caf::put_atom, membership_event>::with<uint64_t>>;

} // namespace parley
