#pragma once

// The delivery interface: where a conversation emits each committed message
// (at least once; receivers dedupe by (conversation, seq)). Device mailboxes
// implement it in the next step; until then parleyd logs and counts.

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/type_ids.hpp"

namespace parley {

using delivery_actor = caf::typed_actor<
  /// A committed message to deliver to the conversation's member devices.
  caf::reacts_to<deliver_atom, stored_message>>;

} // namespace parley
