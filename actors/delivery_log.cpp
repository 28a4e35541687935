#include "actors/delivery_log.hpp"

#include <spdlog/spdlog.h>

namespace parley {

delivery_actor::behavior_type
delivery_log_impl(delivery_actor::stateful_pointer<delivery_log_state> self,
                  std::shared_ptr<std::atomic<uint64_t>> delivered) {
  self->state.delivered = std::move(delivered);
  return {
    [self](deliver_atom, const stored_message& msg) {
      self->state.delivered->fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("deliver conversation={} seq={} sender={}/{} bytes={}",
                    msg.conversation, msg.seq, msg.sender_user,
                    msg.sender_device, msg.payload.size());
    },
  };
}

} // namespace parley
