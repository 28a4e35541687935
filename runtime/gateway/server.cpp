#include "runtime/gateway/server.hpp"

#include <utility> // Asio in Boost 1.74 needs it first

#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>

#include "runtime/gateway/coalescing_stream.hpp"

namespace parley::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

ws_link::~ws_link() = default;

namespace {

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
      bulk_(std::move(bulk)) {
  }

  void run(http::request<http::string_body> req, const std::string& remote,
           const ws_acceptor& acceptor) {
    ws_.set_option(
      websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(opts_.max_frame_bytes * 4); // we answer TOO_LARGE
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
      self->close_now(code, reason);
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
      case r::full:
        spdlog::warn("websocket outbound queue full, closing");
        if (opts_.on_overflow)
          opts_.on_overflow();
        close(static_cast<uint16_t>(websocket::close_code::policy_error),
              "outbound queue full; reconnect and sync");
        return false;
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
      auto data = beast::buffers_to_string(self->buf_.data());
      self->buf_.consume(self->buf_.size());
      if (self->handlers_.on_frame)
        self->handlers_.on_frame(std::move(data), self->ws_.got_binary());
      self->read();
    });
  }

  void close_now(uint16_t code, std::string reason) {
    if (closing_)
      return;
    closing_ = true;
    // Frames queued so far go out first; the close frame follows them
    // through the same queue.
    ws_.next_layer().shut();
    ws_.async_close(
      websocket::close_reason{static_cast<websocket::close_code>(code),
                              reason},
      [self = shared_from_this()](beast::error_code) {});
  }

  void finish() {
    ws_.next_layer().shut();
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
  bool closing_ = false;
  bool finished_ = false;
};

// -- HTTP session -------------------------------------------------------------------

class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(coalescing_stream::socket_type&& socket,
               const server_options& opts,
               const http_handler& http, const ws_acceptor& ws,
               std::shared_ptr<bulk_lane> bulk)
    : stream_(std::move(socket)),
      opts_(opts),
      http_(http),
      ws_(ws),
      bulk_(std::move(bulk)) {
    beast::error_code ec;
    // Small frames must not wait for Nagle's algorithm (up to 40 ms with
    // delayed ACKs): chat latency is per frame.
    stream_.socket().set_option(tcp::no_delay(true), ec);
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec)
      remote_ = ep.address().to_string();
  }

  void run() {
    asio::dispatch(stream_.get_executor(),
                   [self = shared_from_this()] { self->read(); });
  }

private:
  void read() {
    parser_.emplace();
    parser_->body_limit(opts_.max_body_bytes);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buf_, *parser_,
                     [self = shared_from_this()](beast::error_code ec,
                                                 size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    if (ec == http::error::body_limit) {
      reply_now(413, R"({"error":{"code":"TOO_LARGE","message":"request body too large"}})",
                false);
      return;
    }
    if (ec)
      return;
    auto req = parser_->release();
    if (websocket::is_upgrade(req)) {
      if (req.target() != "/v1/ws") {
        reply_now(404, R"({"error":{"code":"NOT_FOUND","message":"WebSocket is at /v1/ws"}})",
                  false);
        return;
      }
      if (opts_.admit_upgrade) {
        if (auto refusal = opts_.admit_upgrade(to_request(req, remote_))) {
          keep_alive_ = false;
          version_ = req.version();
          write(std::move(*refusal));
          return;
        }
      }
      stream_.expires_never();
      std::make_shared<ws_session>(stream_.release_socket(), opts_, bulk_)
        ->run(std::move(req), remote_, ws_);
      return;
    }
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    auto self = shared_from_this();
    auto ex = stream_.get_executor();
    http_(to_request(req, remote_), [self, ex](http_response resp) {
      asio::post(ex, [self, resp = std::move(resp)]() mutable {
        self->write(std::move(resp));
      });
    });
  }

  void reply_now(unsigned status, std::string body, bool keep_alive) {
    keep_alive_ = keep_alive;
    http_response r;
    r.status = status;
    r.body = std::move(body);
    write(std::move(r));
  }

  void write(http_response resp) {
    auto res = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(resp.status), version_);
    res->set(http::field::server, "parleyd");
    res->set(http::field::content_type, resp.content_type);
    for (auto& [k, v] : resp.headers)
      res->set(k, v);
    res->keep_alive(keep_alive_);
    res->body() = std::move(resp.body);
    res->prepare_payload();
    auto self = shared_from_this();
    http::async_write(stream_, *res,
                      [self, res](beast::error_code ec, size_t) {
                        if (ec)
                          return;
                        if (!res->keep_alive()) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(
                            tcp::socket::shutdown_send, ignored);
                          return;
                        }
                        self->read();
                      });
  }

  /// On its io_context's own executor, like the WebSocket it may become.
  beast::basic_stream<tcp, asio::io_context::executor_type> stream_;
  const server_options& opts_;
  const http_handler& http_;
  const ws_acceptor& ws_;
  std::shared_ptr<bulk_lane> bulk_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
};

} // namespace

// -- server ---------------------------------------------------------------------------

struct server::impl {
  server_options opts;
  http_handler http;
  ws_acceptor ws;
  // One io_context per I/O thread, each connection on one of them: a
  // session's handlers never need a strand, and a post for a session wakes
  // exactly the thread that owns it (with one context shared by several
  // threads, asio hands work between them: more wake-ups, RESULTS.md).
  asio::io_context ioc{1}; ///< also runs the acceptor and the bulk lane
  std::vector<std::unique_ptr<asio::io_context>> more;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>>
    guards;
  size_t next = 0;
  std::shared_ptr<bulk_lane> bulk = std::make_shared<bulk_lane>(ioc);
  tcp::acceptor acceptor{ioc};
  std::vector<std::thread> threads;
  uint16_t port = 0;

  asio::io_context& next_context() {
    auto i = next++ % (more.size() + 1);
    return i == 0 ? ioc : *more[i - 1];
  }

  void accept() {
    acceptor.async_accept(next_context(),
                          [this](beast::error_code ec,
                                 coalescing_stream::socket_type socket) {
                            if (ec)
                              return; // closed: stop() was called
                            std::make_shared<http_session>(std::move(socket),
                                                           opts, http, ws,
                                                           bulk)
                              ->run();
                            accept();
                          });
  }
};

server::server(server_options opts, http_handler http, ws_acceptor ws)
  : impl_(std::make_unique<impl>()) {
  impl_->opts = std::move(opts);
  impl_->http = std::move(http);
  impl_->ws = std::move(ws);
}

server::~server() {
  stop();
}

std::string server::start() {
  auto& d = *impl_;
  beast::error_code ec;
  auto addr = asio::ip::make_address(d.opts.address, ec);
  if (ec)
    return "bad listen address " + d.opts.address + ": " + ec.message();
  tcp::endpoint ep{addr, d.opts.port};
  d.acceptor.open(ep.protocol(), ec);
  if (!ec)
    d.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    d.acceptor.bind(ep, ec);
  if (!ec)
    d.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return "cannot listen on " + d.opts.address + ":"
           + std::to_string(d.opts.port) + ": " + ec.message();
  d.port = d.acceptor.local_endpoint().port();
  for (unsigned i = 1; i < std::max(1u, d.opts.threads); ++i) {
    d.more.push_back(std::make_unique<asio::io_context>(1));
    d.guards.push_back(asio::make_work_guard(*d.more.back()));
  }
  d.accept();
  d.threads.emplace_back([&d] { d.ioc.run(); });
  for (auto& c : d.more)
    d.threads.emplace_back([c = c.get()] { c->run(); });
  return {};
}

uint16_t server::port() const {
  return impl_->port;
}

void server::stop() {
  auto& d = *impl_;
  if (d.threads.empty())
    return;
  asio::post(d.ioc, [&d] {
    beast::error_code ec;
    d.acceptor.close(ec);
  });
  d.ioc.stop();
  for (auto& c : d.more)
    c->stop();
  for (auto& t : d.threads)
    t.join();
  d.threads.clear();
}

} // namespace parley::gateway
