#include "runtime/gateway/server.hpp"

#include <utility> // Asio in Boost 1.74 needs it first

#include <array>
#include <optional>
#include <set>
#include <thread>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "runtime/gateway/coalescing_stream.hpp"
#include "runtime/gateway/ws_session.hpp"

namespace parley::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

ws_link::~ws_link() = default;

namespace {

// -- HTTP session -------------------------------------------------------------------

class http_session : public std::enable_shared_from_this<http_session> {
public:
  http_session(coalescing_stream::socket_type&& socket,
               const server_options& opts,
               const http_handler& http, const ws_acceptor& ws,
               std::shared_ptr<detail::bulk_lane> bulk)
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
                   [self = shared_from_this()] { self->detect_tls(); });
  }

private:
  /// A TLS client on this plain port would wait for a ServerHello until
  /// the timeout: its first bytes get a 400 in plain HTTP instead. The
  /// bytes read stay in buf_ for the HTTP parser.
  void detect_tls() {
    stream_.expires_after(std::chrono::seconds(30));
    beast::async_detect_ssl(
      stream_, buf_,
      [self = shared_from_this()](beast::error_code ec, bool tls) {
        if (ec)
          return;
        if (tls) {
          self->bad_request("TLS handshake on a plain HTTP port; use "
                            "http:// and ws://");
          return;
        }
        self->read();
      });
  }

  void bad_request(const std::string& why) {
    refuse(400, "CODE_BAD_FRAME", "malformed HTTP request: " + why);
  }

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
      refuse(413, "CODE_TOO_LARGE", "request body too large");
      return;
    }
    if (ec && ec.category() == http_errors()
        && ec != http::error::partial_message) {
      // Malformed: bad start line or version, oversized header, bad
      // Content-Length or chunking. The words are Beast's, not the
      // client's bytes, so they are safe in the JSON.
      bad_request(ec.message());
      return;
    }
    if (ec)
      return; // timeout, or the peer went away
    if (parser_->get().version() != 10 && parser_->get().version() != 11) {
      bad_request("HTTP version not supported; use HTTP/1.1");
      return;
    }
    auto req = parser_->release();
    if (websocket::is_upgrade(req)) {
      if (req.target() != "/v1/ws") {
        refuse(404, "CODE_NOT_FOUND", "WebSocket is at /v1/ws");
        return;
      }
      if (opts_.admit_upgrade) {
        if (auto refusal = opts_.admit_upgrade(detail::to_request(req, remote_))) {
          keep_alive_ = false;
          version_ = req.version();
          write(std::move(*refusal));
          return;
        }
      }
      stream_.expires_never();
      detail::start_ws_session(stream_.release_socket(), opts_, bulk_,
                               std::move(req), remote_, ws_);
      return;
    }
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    auto self = shared_from_this();
    auto ex = stream_.get_executor();
    http_(detail::to_request(req, remote_), [self, ex](http_response resp) {
      asio::post(ex, [self, resp = std::move(resp)]() mutable {
        self->write(std::move(resp));
      });
    });
  }

  /// Answers with a JSON error body (the gateway's ErrorBody form) and
  /// closes the connection. `message` must need no JSON escaping: our own
  /// words or Beast's, never the client's bytes.
  void refuse(unsigned status, const char* code, const std::string& message) {
    keep_alive_ = false;
    http_response r;
    r.status = status;
    r.body = std::string{R"({"error":{"code":")"} + code
             + R"(","message":")" + message + R"("}})";
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
                          self->drain();
                          return;
                        }
                        self->read();
                      });
  }

  /// After the last answer: reads and drops what the client still sends
  /// (the rest of an oversized header, say) until it hangs up, for a
  /// while, so that closing with unread bytes does not reset the
  /// connection and destroy the answer before the client reads it.
  void drain() {
    if (drained_ == 0)
      stream_.expires_after(std::chrono::seconds(5));
    auto scratch = std::make_shared<std::array<char, 16384>>();
    stream_.async_read_some(
      asio::buffer(*scratch),
      [self = shared_from_this(), scratch](beast::error_code ec, size_t n) {
        self->drained_ += n;
        if (!ec && self->drained_ < (8u << 20))
          self->drain();
      });
  }

  static const boost::system::error_category& http_errors() {
    return http::make_error_code(http::error::bad_method).category();
  }

  /// On its io_context's own executor, like the WebSocket it may become.
  beast::basic_stream<tcp, asio::io_context::executor_type> stream_;
  const server_options& opts_;
  const http_handler& http_;
  const ws_acceptor& ws_;
  std::shared_ptr<detail::bulk_lane> bulk_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  bool keep_alive_ = false;
  unsigned version_ = 11;
  size_t drained_ = 0; ///< bytes dropped after the last answer
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
  std::shared_ptr<detail::bulk_lane> bulk = detail::make_bulk_lane(ioc);
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
