#pragma once

// Server frames built from actor messages: the Message, ReceiptUpdate and
// InboxEntry encodings shared by answers (sync) and pushes, and ws_sink,
// the device actor's way onto one WebSocket session's outbound queue.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "actors/local_messages.hpp"
#include "parley/v1/wire.pb.h"
#include "runtime/gateway/frame_codec.hpp"
#include "runtime/gateway/metrics.hpp"
#include "runtime/gateway/server.hpp"

namespace parley::gateway {

void to_wire_message(const stored_message& m, v1::Message& out);

void to_wire_receipt(const receipt_event& ev, v1::ReceiptUpdate& out);

/// The Accepted frame answering request `rid` (a send, or a group change
/// with no client_message_id).
v1::ServerFrame accepted_frame(uint32_t rid, conversation_id conv,
                               const std::string& client_message_id,
                               const send_result& r);

/// An inbox entry; its `latest` carries the ids and time, not the body.
void to_wire_inbox(const inbox_entry& e, v1::InboxEntry& out);

/// Pushes frames for a device actor onto one session's bounded outbound
/// queue, numbering them with the session's event sequence. Thread-safe.
class ws_sink : public device_sink {
public:
  ws_sink(std::shared_ptr<ws_link> link, frame_format fmt,
          std::shared_ptr<metrics> stats);

  bool push(const stored_message& msg) override;
  /// The message body is encoded once per format for all sinks; each
  /// frame only adds its event sequence around it.
  bool push(const prepared_message& pm) override;
  bool push(const receipt_event& ev) override;
  bool push(const inbox_entry& e) override;

  /// The next per-connection event number (pushes and Disconnect).
  uint32_t next_event_seq() {
    return ++event_seq_;
  }

private:
  bool send(v1::ServerFrame& f);

  /// Weak: the session lives as long as its connection actor (and its own
  /// pending I/O), never longer because a device actor, or the presence
  /// table the fan-out reads, still holds this sink; a session kept past
  /// the server would be destroyed after its io_context.
  std::weak_ptr<ws_link> link_;
  frame_format fmt_;
  std::shared_ptr<metrics> stats_;
  std::atomic<uint32_t> event_seq_{0};
  /// Numbering and queueing happen together, so frames leave in the order
  /// of their event sequence whichever thread pushes.
  std::mutex send_mtx_;
};

} // namespace parley::gateway
