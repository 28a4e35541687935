#pragma once

// Server frames built from actor messages: the Message, ReceiptUpdate and
// InboxEntry encodings shared by answers (sync) and pushes, and ws_sink,
// the connection actor's way to push them onto its session's outbound
// queue.

#include <cstdint>
#include <memory>

#include "runtime/core/messages.hpp"
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

/// Pushes frames onto one session's bounded outbound queue, numbering
/// them with the session's event sequence. Used by its connection actor
/// only. Each push is false if the session is gone or its queue overflowed
/// (the session then tells the connection: a slow consumer).
class ws_sink {
public:
  ws_sink(std::shared_ptr<ws_link> link, frame_format fmt,
          std::shared_ptr<metrics> stats);

  bool push(const stored_message& msg);
  /// A large group's message, on the bulk lane (it waits behind 1:1 and
  /// small-group traffic of the same session).
  bool push_bulk(const stored_message& msg);
  bool push(const receipt_event& ev);
  bool push(const inbox_entry& e);

  /// The next per-connection event number (pushes and Disconnect).
  uint32_t next_event_seq() {
    return ++event_seq_;
  }

private:
  bool send(v1::ServerFrame& f, bool bulk = false);

  /// Weak: the session lives as long as its connection actor (and its own
  /// pending I/O), never longer; a session kept past the server would be
  /// destroyed after its io_context.
  std::weak_ptr<ws_link> link_;
  frame_format fmt_;
  std::shared_ptr<metrics> stats_;
  uint32_t event_seq_ = 0;
};

} // namespace parley::gateway
