#pragma once

// connection: one actor per WebSocket session. Owns the auth handshake
// (Hello with a token, or the Authorization header of the upgrade),
// decoding of inbound frames, and turning requests into messages to the
// directory, conversations and accounts. It answers every request with its
// request_id, and uses only the authenticated user and device, never ids a
// client claims. The socket's I/O stays on the server's threads: they hand
// every frame read to this actor, which puts the frames it sends (answers,
// and the pushes its device actor sends it as ordinary messages) on the
// session's bounded outbound queue (ws_link).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor_clock.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/accounts.hpp"
#include "actors/device_registry.hpp"
#include "actors/directory.hpp"
#include "actors/inbox.hpp"
#include "actors/store_reader.hpp"
#include "runtime/core/reply_deadlines.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/gateway/rate_limiter.hpp"
#include "runtime/gateway/frame_codec.hpp"
#include "runtime/gateway/metrics.hpp"
#include "runtime/gateway/server.hpp"
#include "runtime/gateway/ws_sink.hpp"

namespace parley::gateway {

using connection_actor = caf::typed_actor<
  /// An inbound WebSocket message (binary: protobuf, else JSON text).
  caf::reacts_to<frame_atom, std::string, bool>,
  /// Close the session with a Disconnect frame and the WebSocket close
  /// code of `cause` (a disconnect_cause, actors/disconnect.hpp), e.g.
  /// device revoked, replaced, account blocked, slow consumer.
  caf::reacts_to<caf::close_atom, uint32_t, std::string>,
  /// The user's read-receipt setting changed.
  caf::reacts_to<caf::update_atom, bool>,
  /// An operator changed the user's send limit (count 0: the default).
  caf::reacts_to<caf::update_atom, send_limit>,
  /// Pushes from the device actor: a message, a large group's message (on
  /// the bulk lane), a receipt update, a changed inbox entry.
  caf::reacts_to<deliver_atom, stored_message>,
  caf::reacts_to<fanout_atom, stored_message>,
  caf::reacts_to<receipt_atom, receipt_event>,
  caf::reacts_to<caf::update_atom, inbox_entry>,
  /// The socket closed; the actor ends.
  caf::reacts_to<caf::leave_atom>,
  /// Internal: the Hello deadline passed.
  caf::reacts_to<caf::timeout_atom>,
  /// Internal: heartbeat check (a client silent for two heartbeat
  /// intervals is disconnected).
  caf::reacts_to<caf::tick_atom>,
  /// Answers to the tagged send and receipt this actor sent (through the
  /// directory), and the tick of their deadlines (reply_deadlines).
  caf::reacts_to<send_atom, send_answer>,
  caf::reacts_to<receipt_atom, receipt_answer>,
  caf::reacts_to<expire_atom>>;

/// A Send or a receipt frame waiting for its conversation's answer.
struct awaited_answer {
  uint32_t request_id = 0;
  frame_format fmt = frame_format::binary;
  bool receipt = false;              ///< else a Send
  conversation_id conv = 0;          ///< a Send's
  std::string client_message_id;     ///< a Send's
};

struct connection_deps {
  accounts_actor accounts;
  directory_actor directory;
  device_registry_actor registry;
  store_reader_actor reader;
  std::shared_ptr<metrics> stats;
  std::shared_ptr<node_metrics> node_stats; ///< may be null
  size_t max_frame_bytes = 96 * 1024;
  std::chrono::milliseconds hello_timeout = std::chrono::seconds(10);
  uint32_t heartbeat_ms = 30000;
  inbox_actor inbox;
  std::shared_ptr<rate_limiter> limiter; ///< may be null: no limits
  /// The largest frame sent (sync pages stay within it; in Welcome).
  size_t max_server_frame_bytes = default_max_server_frame_bytes;
};

struct connection_state {
  connection_deps deps;
  std::shared_ptr<ws_link> link;
  std::string header_token; ///< from "Authorization: Bearer ..."
  bool authenticating = false;
  bool authenticated = false;
  principal who;
  /// Rate-limit keys of this device and user (set at authentication).
  std::string send_device_key;
  std::string send_user_key;
  frame_format push_format = frame_format::binary;
  /// Set once authenticated: the device's actor and this session's sink.
  device_actor device;
  std::shared_ptr<ws_sink> sink;
  uint32_t event_seq = 0; ///< before the sink exists
  /// When the last frame arrived (the heartbeat check).
  caf::actor_clock::time_point last_frame;
  /// Sends and receipts waiting for an answer, by tag; one that waits
  /// past timeouts::client gets a retryable UNAVAILABLE.
  reply_deadlines<awaited_answer> awaited{timeouts::client};

  static inline const char* name = "connection";
};

connection_actor::behavior_type
connection_impl(connection_actor::stateful_pointer<connection_state> self,
                connection_deps deps, std::shared_ptr<ws_link> link,
                std::string authorization);

} // namespace parley::gateway
