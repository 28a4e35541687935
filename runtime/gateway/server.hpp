#pragma once

// The gateway's network edge: one port serving HTTP (JSON API, health,
// metrics) and WebSocket (/v1/ws), on Boost.Beast with its own I/O threads,
// never on CAF's scheduler. No CAF in this header: the server hands
// requests and frames to callbacks, and the actor side answers through
// `respond_fn` and `ws_link`, both safe to call from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace parley::gateway {

struct http_request {
  std::string method;
  std::string target;
  std::string body;
  std::string authorization; ///< the Authorization header, if any
  std::string remote;        ///< peer address
};

struct http_response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Answers one HTTP request; call exactly once, from any thread.
using respond_fn = std::function<void(http_response)>;

using http_handler = std::function<void(http_request, respond_fn)>;

/// The actor side's handle on one WebSocket session. Thread-safe.
class ws_link {
public:
  virtual ~ws_link();

  /// Sends a frame: written to the socket on the calling thread when
  /// nothing is queued ahead of it, else queued for the session's I/O
  /// thread. Returns false if the session is closed or its bounded queue
  /// overflowed (then no more frames are taken, and the session's
  /// `on_overflow` handler is told, which should end it with close_with).
  virtual bool send(std::string data, bool binary) = 0;

  /// As send, for bulk traffic (large-group fan-out). Written on the
  /// calling thread when nothing is queued, like send. What has to wait
  /// goes to the I/O thread in rounds that let other sessions' frames
  /// through in between, so a burst to thousands of sessions does not
  /// delay everyone else's frames until it is through.
  virtual bool send_bulk(std::string data, bool binary) {
    return send(std::move(data), binary);
  }

  /// Closes the session with a WebSocket close code and reason.
  virtual void close(uint16_t code, std::string reason) = 0;

  /// Sends `frame` (a Disconnect) behind everything queued, even past the
  /// queue's bound (a full queue takes this one last frame), then closes
  /// as `close` does.
  virtual void close_with(std::string frame, bool binary, uint16_t code,
                          std::string reason) {
    send(std::move(frame), binary);
    close(code, std::move(reason));
  }
};

/// Callbacks of one WebSocket session, called on its I/O thread.
struct ws_handlers {
  std::function<void(std::string data, bool binary)> on_frame;
  std::function<void()> on_closed;
  /// The outbound queue overflowed (a client too slow to keep up): the
  /// session takes no more frames and should be ended with `close_with`.
  /// If empty, the server closes it with code 4010 and no frame.
  std::function<void()> on_overflow;
};

/// The reason a slow consumer is closed with (Disconnect and close frame).
inline constexpr const char* slow_consumer_reason =
  "outbound queue full; reconnect and sync";

/// Called once per accepted WebSocket with its link and upgrade request.
using ws_acceptor =
  std::function<ws_handlers(std::shared_ptr<ws_link>, const http_request&)>;

/// How long closing a WebSocket session may take by default (see
/// server_options::close_timeout).
inline constexpr uint64_t default_close_timeout_ms = 10000;

struct server_options {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;             ///< 0: any free port (see port())
  unsigned threads = 1;             ///< I/O threads
  /// Larger frames get TOO_LARGE; past 4 times this, Beast closes the
  /// connection (1009) without reading them.
  size_t max_frame_bytes = 96 * 1024;
  size_t max_outbound_frames = 1024;  ///< per-session queue bound
  size_t max_body_bytes = 64 * 1024;  ///< HTTP request bodies
  /// From the moment a session starts closing (its Disconnect frame, then
  /// the close handshake), or its read side ends with the socket still
  /// open, until its socket is closed hard (RST, unsent bytes dropped): a
  /// peer that does not read cannot hold the connection and its queue.
  std::chrono::milliseconds close_timeout{default_close_timeout_ms};
  /// Asked before a WebSocket upgrade (on the I/O thread, must not block):
  /// a response refuses it (e.g. 429 for a reconnect storm). May be empty.
  std::function<std::optional<http_response>(const http_request&)>
    admit_upgrade;
  /// Called when a session is closed because its outbound queue
  /// overflowed (a device too slow to keep up). May be empty.
  std::function<void()> on_overflow;
};

/// Listens on one address; HTTP and WebSocket on the same port.
class server {
public:
  server(server_options opts, http_handler http, ws_acceptor ws);
  ~server();

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds and starts the I/O threads. Returns an error message, or empty.
  std::string start();

  /// The bound port (useful with port 0).
  uint16_t port() const;

  /// Stops accepting, closes every session and joins the I/O threads.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace parley::gateway
