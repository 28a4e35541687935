#pragma once

// The delivery interface: where a conversation emits each committed message
// (at least once; receivers dedupe by (conversation, seq)). Device mailboxes
// implement it in the next step; until then parleyd logs and counts.

#include <vector>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "runtime/core/type_ids.hpp"

namespace parley {

using delivery_actor = caf::typed_actor<
  /// A committed message and the users it goes to (the members at its
  /// sequence); each of their devices gets it, except the sending device.
  caf::reacts_to<deliver_atom, stored_message, std::vector<user_id>>,
  /// A member's receipt cursor moved (durably); every device of `to` gets
  /// it, unless it is a read the user does not share and the device is
  /// someone else's.
  caf::reacts_to<receipt_atom, receipt_event, std::vector<user_id>>>;

} // namespace parley
