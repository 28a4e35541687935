#include "runtime/gateway/ws_session.hpp"

#include <deque>
#include <mutex>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "actors/disconnect.hpp"

namespace parley::gateway::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

http_request to_request(const http::request<http::string_body>& req,
                        const std::string& remote) {
  http_request r;
  r.method = std::string(req.method_string());
  r.target = std::string(req.target());
  r.body = req.body();
  if (auto i = req.find(http::field::authorization); i != req.end())
    r.authorization = std::string(i->value());
  r.remote = remote;
  return r;
}

// -- bulk lane -----------------------------------------------------------------

/// Sessions with bulk frames waiting, served a round at a time: each round
/// posts the drains of up to `round` sessions and then itself again, behind
/// whatever else was posted meanwhile (other sessions' frames).
class bulk_lane : public std::enable_shared_from_this<bulk_lane> {
public:
  explicit bulk_lane(asio::io_context& ioc) : ioc_(ioc) {
  }

  void add(std::function<void()> drain) {
    bool post = false;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      waiting_.push_back(std::move(drain));
      post = !scheduled_;
      scheduled_ = true;
    }
    if (post)
      asio::post(ioc_, [self = shared_from_this()] { self->round(); });
  }

private:
  static constexpr size_t round_size = 64;

  void round() {
    std::vector<std::function<void()>> now;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto n = std::min(round_size, waiting_.size());
      now.assign(std::make_move_iterator(waiting_.begin()),
                 std::make_move_iterator(waiting_.begin() + n));
      waiting_.erase(waiting_.begin(), waiting_.begin() + n);
      scheduled_ = !waiting_.empty();
    }
    for (auto& f : now)
      f();
    if (scheduled_)
      asio::post(ioc_, [self = shared_from_this()] { self->round(); });
  }

  asio::io_context& ioc_;
  std::mutex mtx_;
  std::deque<std::function<void()>> waiting_;
  bool scheduled_ = false;
};

// -- WebSocket session -----------------------------------------------------------

class ws_session : public ws_link,
                   public std::enable_shared_from_this<ws_session> {
public:
  ws_session(coalescing_stream::socket_type&& socket,
             const server_options& opts,
             std::shared_ptr<bulk_lane> bulk)
    : ws_(coalescing_stream{std::move(socket)}),
      opts_(opts),
      bulk_(std::move(bulk)),
      close_timer_(ws_.get_executor()) {
  }

  void run(http::request<http::string_body> req, const std::string& remote,
           const ws_acceptor& acceptor) {
    ws_.set_option(
      websocket::stream_base::timeout::suggested(beast::role_type::server));
    // Up to 4 x max-frame-bytes we answer TOO_LARGE; past it Beast
    // closes with 1009 (no Disconnect frame: README), without buffering
    // the frame. Beast's other closes are its own too: 1007 (text not
    // UTF-8), 1002 (protocol errors).
    ws_.read_message_max(opts_.max_frame_bytes * 4);
    auto self = shared_from_this();
    auto info = to_request(req, remote);
    ws_.async_accept(req, [self, info, acceptor](beast::error_code ec) {
      if (ec)
        return;
      self->handlers_ = acceptor(self, info);
      self->read();
    });
  }

  bool send(std::string data, bool binary) override {
    return put(data, binary, false);
  }

  bool send_bulk(std::string data, bool binary) override {
    return put(data, binary, true);
  }

  void close(uint16_t code, std::string reason) override {
    auto self = shared_from_this();
    asio::post(ws_.get_executor(), [self, code, reason] {
      self->close_now(code, reason, nullptr, false);
    });
  }

  void close_with(std::string frame, bool binary, uint16_t code,
                  std::string reason) override {
    auto self = shared_from_this();
    auto last = std::make_shared<std::string>(std::move(frame));
    asio::post(ws_.get_executor(), [self, code, reason, last, binary] {
      self->close_now(code, reason, last, binary);
    });
  }

private:
  /// Frames the actor side hands over, from any thread. A frame goes
  /// straight to the socket when nothing is queued (no hand-off to the I/O
  /// thread); otherwise one flush on the I/O thread takes everything queued
  /// meanwhile. For a bulk frame that flush waits for the lane's round,
  /// and a normal frame arriving meanwhile joins it.
  bool put(const std::string& data, bool binary, bool bulk) {
    char head[14];
    auto len = frame_header(head, binary, data.size()); // unmasked: a server
    using r = coalescing_stream::put_result;
    switch (ws_.next_layer().put(head, len, data, opts_.max_outbound_frames)) {
      case r::sent:
      case r::queued:
        return true;
      case r::flush:
        if (bulk)
          bulk_->add([self = shared_from_this()] { self->post_flush(); });
        else
          post_flush();
        return true;
      case r::full: {
        // The stream is shut now: no frame is taken after this one, and
        // the actor side is told once, on the I/O thread, to end the
        // session with a Disconnect frame (see close_with).
        spdlog::warn("websocket outbound queue full, closing");
        if (opts_.on_overflow)
          opts_.on_overflow();
        asio::post(ws_.get_executor(), [self = shared_from_this()] {
          if (self->handlers_.on_overflow)
            self->handlers_.on_overflow();
          else
            self->close_now(code_of(disconnect_cause::slow_consumer),
                            slow_consumer_reason, nullptr, false);
        });
        return false;
      }
      case r::closed:
        break;
    }
    return false;
  }

  void post_flush() {
    asio::post(ws_.get_executor(),
               [self = shared_from_this()] { self->ws_.next_layer().flush(); });
  }

  void read() {
    auto self = shared_from_this();
    ws_.async_read(buf_, [self](beast::error_code ec, size_t) {
      if (ec) {
        self->finish();
        return;
      }
      // Once closing, frames are dropped unread: nothing a client sends
      // after its Disconnect (a second Hello, say) reaches the actor side.
      // Reading goes on, for the peer's close frame.
      if (self->handlers_.on_frame && !self->closing_) {
        auto data = beast::buffers_to_string(self->buf_.data());
        self->handlers_.on_frame(std::move(data), self->ws_.got_binary());
      }
      self->buf_.consume(self->buf_.size());
      self->read();
    });
  }

  /// Closes with `code`, after `last` (if any): frames queued so far go
  /// out first, then `last` and the close frame follow them through the
  /// same queue, as Beast's own writes, which the queue's bound and shut
  /// state do not refuse. All of it within `opts_.close_timeout`: a peer
  /// that does not read holds `last` back (past the stream's bound a
  /// write waits for the socket), and Beast's own close timer starts only
  /// with the close frame.
  void close_now(uint16_t code, std::string reason,
                 std::shared_ptr<std::string> last, bool binary) {
    if (closing_)
      return;
    closing_ = true;
    ws_.next_layer().shut();
    arm_close_deadline();
    auto self = shared_from_this();
    auto close = [self, why = websocket::close_reason{
                          static_cast<websocket::close_code>(code), reason}] {
      self->ws_.async_close(
        why, [self](beast::error_code) { self->close_drained(); });
    };
    if (!last) {
      close();
      return;
    }
    ws_.binary(binary);
    ws_.async_write(asio::buffer(*last),
                    [self, last, close](beast::error_code ec, size_t) {
                      if (ec)
                        self->close_drained();
                      else
                        close();
                    });
  }

  /// Ends closing without dropping what is queued (the Disconnect frame,
  /// the close frame): a peer that half-closed, say, failed the read and
  /// with it Beast's close, but may still take what we send. The socket
  /// closes once the queue went out; the close timeout still bounds the
  /// wait (then `abort` resets it).
  void close_drained() {
    if (!ws_.next_layer().socket().is_open()) {
      close_timer_.cancel();
      return;
    }
    ws_.next_layer().when_drained(
      [self = shared_from_this()](beast::error_code) {
        self->close_timer_.cancel();
        beast_close_socket(self->ws_.next_layer());
      });
  }

  /// Closes the socket hard once the close timeout passes, unless it is
  /// closed before (then `abort` or `finish` cancels the timer). The
  /// timer's handler holds the session.
  void arm_close_deadline() {
    close_timer_.expires_after(opts_.close_timeout);
    close_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec != asio::error::operation_aborted) {
        spdlog::debug("websocket close timed out, resetting the connection");
        self->abort();
      }
    });
  }

  /// The close timeout passed: a socket still open is reset (SO_LINGER 0:
  /// the kernel drops what the peer never took instead of keeping it for
  /// minutes), and every operation on it completes with an error. A
  /// socket closed already is left alone.
  void abort() {
    close_timer_.cancel();
    auto& sock = ws_.next_layer().socket();
    if (!sock.is_open())
      return;
    beast::error_code ec;
    sock.set_option(asio::socket_base::linger(true, 0), ec);
    beast_close_socket(ws_.next_layer());
  }

  void finish() {
    ws_.next_layer().shut();
    // The read side ended with the socket open (the peer hung up without
    // a close handshake, or it failed while a write is held back): what is
    // queued gets the close timeout to go out, not forever, and the socket
    // closes once it went.
    if (!ws_.next_layer().socket().is_open()) {
      close_timer_.cancel();
    } else if (!closing_) {
      closing_ = true;
      arm_close_deadline();
      close_drained();
    }
    if (!finished_) {
      finished_ = true;
      if (handlers_.on_closed)
        handlers_.on_closed();
      handlers_ = {}; // breaks the session <-> actor cycle
    }
  }

  websocket::stream<coalescing_stream> ws_;
  const server_options& opts_;
  std::shared_ptr<bulk_lane> bulk_;
  beast::flat_buffer buf_;
  ws_handlers handlers_;
  asio::basic_waitable_timer<std::chrono::steady_clock,
                             asio::wait_traits<std::chrono::steady_clock>,
                             coalescing_stream::executor_type>
    close_timer_; ///< the close timeout (see arm_close_deadline)
  bool closing_ = false;
  bool finished_ = false;
};

std::shared_ptr<bulk_lane> make_bulk_lane(asio::io_context& ioc) {
  return std::make_shared<bulk_lane>(ioc);
}

void start_ws_session(coalescing_stream::socket_type&& socket,
                      const server_options& opts,
                      std::shared_ptr<bulk_lane> bulk, http_request_msg req,
                      const std::string& remote, const ws_acceptor& acceptor) {
  std::make_shared<ws_session>(std::move(socket), opts, std::move(bulk))
    ->run(std::move(req), remote, acceptor);
}

} // namespace parley::gateway::detail
