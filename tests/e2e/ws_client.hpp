#pragma once

// Test clients for a real parleyd on loopback: blocking HTTP calls and a
// WebSocket client speaking ClientFrame/ServerFrame (binary or JSON), with
// receive timeouts so a test never hangs.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/gateway/frame_codec.hpp"

namespace parley::e2e {

struct http_result {
  unsigned status = 0;
  std::string body;
  std::string retry_after; ///< the Retry-After header, if any
};

/// One HTTP/1.1 request to 127.0.0.1:port.
http_result http_call(uint16_t port, const std::string& method,
                      const std::string& target, const std::string& body = {},
                      const std::string& bearer = {});

/// Tries a WebSocket upgrade of /v1/ws and hangs up: 101 if the server
/// would take the connection, else its refusal.
http_result try_ws_upgrade(uint16_t port);

class ws_client {
public:
  /// Connects to ws://127.0.0.1:port/v1/ws, optionally with a bearer token
  /// in the Authorization header of the upgrade, and with the socket's
  /// receive buffer set to `rcvbuf_bytes` before connecting (0: the
  /// system's; small: a client that cannot take much it does not read).
  explicit ws_client(uint16_t port, const std::string& bearer = {},
                     int rcvbuf_bytes = 0);
  ~ws_client();

  void send(const v1::ClientFrame& frame, gateway::frame_format fmt);
  void send_raw(const std::string& data, bool binary);

  /// Next server frame, or nullopt on timeout or close.
  std::optional<v1::ServerFrame> read(int timeout_ms = 10000);

  /// Sends `frame` and reads frames until the one answering its request_id.
  std::optional<v1::ServerFrame> call(const v1::ClientFrame& frame,
                                      gateway::frame_format fmt,
                                      int timeout_ms = 10000);

  /// True once the server closed the connection.
  bool closed() const;

  /// The WebSocket close code the server sent (0 if none yet).
  uint16_t close_code() const;

  /// Whether the TCP connection is still established as the kernel sees
  /// it (like `ss -tn`), without reading from it: waits up to `wait_ms`
  /// for the server to reset it or send its FIN, and answers false once
  /// it did.
  bool tcp_established(int wait_ms = 0) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Frames a person would type.
v1::ClientFrame hello(uint32_t rid, const std::string& token);
v1::ClientFrame send_frame(uint32_t rid, uint64_t conv,
                           const std::string& cmid,
                           const std::string& payload);
v1::ClientFrame open_direct(uint32_t rid, const std::string& username);
v1::ClientFrame ping(uint32_t rid);
/// A Sync from `cursors` (conversation -> after sequence), with
/// `page_size` if not 0.
v1::ClientFrame sync_frame(uint32_t rid,
                           const std::map<uint64_t, uint64_t>& cursors,
                           uint32_t page_size = 0);
/// A Sync with nothing but `continuation`.
v1::ClientFrame sync_continue(uint32_t rid, const std::string& continuation);

/// Reads frames until one satisfies `pred` (at most 100; others are
/// collected in `skipped`); nullopt on timeout, close or none of 100.
std::optional<v1::ServerFrame>
read_until(ws_client& c, const std::function<bool(const v1::ServerFrame&)>& pred,
           std::vector<v1::ServerFrame>* skipped = nullptr);

/// Reads until a pushed message, skipping anything else (receipts).
std::optional<v1::Message> next_message(ws_client& c);

} // namespace parley::e2e
