#pragma once

// Why the server ends a client's session. Each cause is both the WebSocket
// close code and the Disconnect frame's `code` the client receives (README,
// "Disconnects"; wire.proto, `message Disconnect`), and each has the
// `reconnect` advice that fits it. Actors that end a session send its
// connection `(caf::close_atom, uint32_t cause, std::string reason)`.
// DO NOT CHANGE the numbers: clients act on them.

#include <cstdint>

namespace parley {

enum class disconnect_cause : uint32_t {
  /// No token, or one that is wrong or revoked (at Hello). Not reconnect.
  unauthenticated = 4001,
  /// Hello's version range excludes the server's. Not reconnect.
  unsupported_version = 4002,
  /// No Hello within the Hello timeout (10 s). Reconnect.
  no_hello = 4003,
  /// The device was revoked (DELETE /v1/devices/{id}). Not reconnect: log
  /// in again as a new device.
  device_revoked = 4004,
  /// No frame from the client for two heartbeat intervals. Reconnect.
  heartbeat_timeout = 4005,
  /// The same device connected again; this older session ends. Not
  /// reconnect: the newer one holds the device.
  replaced = 4006,
  /// An operator blocked the account (parleyctl user block). Not reconnect.
  account_blocked = 4007,
  /// The server-side device actor of this session failed or could not be
  /// attached (its push state is gone). Reconnect, then sync.
  device_unavailable = 4008,
  /// The device actor heard no heartbeat refresh from this session for its
  /// TTL (three heartbeat intervals): it treats the session as stale.
  /// Reconnect, then sync.
  connection_stale = 4009,
  /// The session's outbound queue was full (a client reading too slowly).
  /// Reconnect, then sync: what did not fit is recovered by sync.
  slow_consumer = 4010,
};

/// Whether a client should reconnect after `cause`.
constexpr bool should_reconnect(disconnect_cause cause) {
  switch (cause) {
    case disconnect_cause::no_hello:
    case disconnect_cause::heartbeat_timeout:
    case disconnect_cause::device_unavailable:
    case disconnect_cause::connection_stale:
    case disconnect_cause::slow_consumer:
      return true;
    default:
      return false;
  }
}

/// The code on the wire.
constexpr uint32_t code_of(disconnect_cause cause) {
  return static_cast<uint32_t>(cause);
}

} // namespace parley
