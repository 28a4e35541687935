#pragma once

// delivery_log: a delivery_actor that logs and counts each emitted message.
// parleyd's stand-in for device mailboxes until the gateway exists.

#include <atomic>
#include <cstdint>
#include <memory>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/delivery.hpp"

namespace parley {

struct delivery_log_state {
  std::shared_ptr<std::atomic<uint64_t>> delivered;

  static inline const char* name = "delivery_log";
};

delivery_actor::behavior_type
delivery_log_impl(delivery_actor::stateful_pointer<delivery_log_state> self,
                  std::shared_ptr<std::atomic<uint64_t>> delivered);

} // namespace parley
