#pragma once

// device_registry: which connection holds each (user, device) on this node,
// and the delivery target of conversations: it pushes every committed
// message to the connections of the message's recipients. A device that is
// not connected gets nothing pushed; it catches up by sync. A second
// connection of a device replaces the first (which is told to close).
//
// DESIGN.md's `device` mailbox actor (one per device, with in-flight
// deliveries and push hand-off) grows out of this registry's entries; for
// now they are entries, not actors.

#include <cstdint>
#include <map>
#include <set>
#include <utility>

#include <caf/actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/delivery.hpp"

namespace parley {

using device_registry_actor = delivery_actor::extend<
  /// Registers `conn` as the connection of (user, device); it must handle
  /// (deliver_atom, stored_message) and (caf::close_atom, std::string).
  /// An earlier connection of the device is closed. Replies true.
  caf::replies_to<caf::join_atom, user_id, device_id, caf::actor>::with<bool>>;

struct device_registry_state {
  std::map<user_id, std::map<device_id, caf::actor>> online;
  std::map<caf::actor_addr, std::pair<user_id, device_id>> by_addr;
  uint64_t pushed = 0;

  static inline const char* name = "device_registry";
};

device_registry_actor::behavior_type device_registry_impl(
  device_registry_actor::stateful_pointer<device_registry_state> self);

} // namespace parley
