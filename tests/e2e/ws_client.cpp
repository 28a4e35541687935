#include "ws_client.hpp"

#include <utility>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace parley::e2e {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

void set_timeout(tcp::socket& s, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

} // namespace

http_result http_call(uint16_t port, const std::string& method,
                      const std::string& target, const std::string& body,
                      const std::string& bearer) {
  asio::io_context ioc;
  tcp::socket sock{ioc};
  sock.connect({asio::ip::make_address("127.0.0.1"), port});
  set_timeout(sock, 30000);
  http::request<http::string_body> req{http::string_to_verb(method), target,
                                       11};
  req.set(http::field::host, "127.0.0.1");
  if (!bearer.empty())
    req.set(http::field::authorization, "Bearer " + bearer);
  req.body() = body;
  req.prepare_payload();
  http::write(sock, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  beast::error_code ec;
  http::read(sock, buf, res, ec);
  if (ec)
    return {};
  return {res.result_int(), res.body(),
          std::string(res[http::field::retry_after])};
}

http_result try_ws_upgrade(uint16_t port) {
  asio::io_context ioc;
  tcp::socket sock{ioc};
  sock.connect({asio::ip::make_address("127.0.0.1"), port});
  set_timeout(sock, 30000);
  http::request<http::string_body> req{http::verb::get, "/v1/ws", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::upgrade, "websocket");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  req.set(http::field::sec_websocket_version, "13");
  http::write(sock, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.skip(false);
  beast::error_code ec;
  http::read_header(sock, buf, parser, ec);
  if (ec)
    return {};
  if (parser.get().result_int() != 101)
    http::read(sock, buf, parser, ec);
  auto& res = parser.get();
  return {res.result_int(), res.body(),
          std::string(res[http::field::retry_after])};
}

struct ws_client::impl {
  asio::io_context ioc;
  websocket::stream<tcp::socket> ws{ioc};
  beast::flat_buffer buf;
  bool closed = false;
  /// A read outlives a read() that timed out: the next read() goes on
  /// waiting for it (asio's blocking reads ignore SO_RCVTIMEO, and a
  /// cancelled WebSocket read leaves the stream unusable).
  bool reading = false;
  bool read_done = false;
  beast::error_code read_ec;
};

ws_client::ws_client(uint16_t port, const std::string& bearer,
                     int rcvbuf_bytes)
  : impl_(std::make_unique<impl>()) {
  auto& ws = impl_->ws;
  ws.next_layer().open(tcp::v4());
  if (rcvbuf_bytes > 0)
    setsockopt(ws.next_layer().native_handle(), SOL_SOCKET, SO_RCVBUF,
               &rcvbuf_bytes, sizeof rcvbuf_bytes);
  ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
  if (!bearer.empty())
    ws.set_option(websocket::stream_base::decorator(
      [bearer](websocket::request_type& req) {
        req.set(http::field::authorization, "Bearer " + bearer);
      }));
  ws.handshake("127.0.0.1", "/v1/ws");
}

ws_client::~ws_client() {
  beast::error_code ec;
  if (impl_->reading)
    impl_->ws.next_layer().close(ec); // a read is pending: just hang up
  else if (!impl_->closed)
    impl_->ws.close(websocket::close_code::normal, ec);
}

void ws_client::send(const v1::ClientFrame& frame, gateway::frame_format fmt) {
  send_raw(gateway::encode_client_frame(frame, fmt),
           fmt == gateway::frame_format::binary);
}

void ws_client::send_raw(const std::string& data, bool binary) {
  impl_->ws.binary(binary);
  beast::error_code ec;
  impl_->ws.write(asio::buffer(data), ec);
  if (ec)
    impl_->closed = true;
}

std::optional<v1::ServerFrame> ws_client::read(int timeout_ms) {
  auto& d = *impl_;
  if (d.closed)
    return std::nullopt;
  if (!d.reading) {
    d.reading = true;
    d.read_done = false;
    d.buf.clear();
    d.ws.async_read(d.buf, [&d](beast::error_code ec, size_t) {
      d.read_done = true;
      d.read_ec = ec;
    });
  }
  auto deadline = std::chrono::steady_clock::now()
                  + std::chrono::milliseconds(timeout_ms);
  d.ioc.restart();
  while (!d.read_done && std::chrono::steady_clock::now() < deadline)
    d.ioc.run_one_until(deadline);
  if (!d.read_done)
    return std::nullopt; // still pending; the next read() continues it
  d.reading = false;
  if (auto ec = d.read_ec) {
    if (ec == websocket::error::closed || ec == asio::error::eof
        || ec == asio::error::connection_reset)
      d.closed = true;
    return std::nullopt;
  }
  auto data = beast::buffers_to_string(impl_->buf.data());
  return gateway::decode_server_frame(data,
                                      impl_->ws.got_binary()
                                        ? gateway::frame_format::binary
                                        : gateway::frame_format::json);
}

std::optional<v1::ServerFrame> ws_client::call(const v1::ClientFrame& frame,
                                               gateway::frame_format fmt,
                                               int timeout_ms) {
  send(frame, fmt);
  for (;;) {
    auto f = read(timeout_ms);
    if (!f || f->request_id() == frame.request_id())
      return f;
  }
}

bool ws_client::closed() const {
  return impl_->closed;
}

uint16_t ws_client::close_code() const {
  return impl_->ws.reason().code;
}

bool ws_client::tcp_established(int wait_ms) const {
  auto fd = const_cast<impl&>(*impl_).ws.next_layer().native_handle();
  // Only hang-ups wake the poll (a reset: POLLERR/POLLHUP, a FIN:
  // POLLRDHUP), not the data waiting unread.
  pollfd p{fd, POLLRDHUP, 0};
  ::poll(&p, 1, wait_ms);
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
    return false;
  return info.tcpi_state == TCP_ESTABLISHED;
}

v1::ClientFrame hello(uint32_t rid, const std::string& token) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  auto* h = f.mutable_hello();
  h->set_min_version(1);
  h->set_max_version(1);
  h->set_client_name("e2e");
  h->set_auth_token(token);
  return f;
}

v1::ClientFrame send_frame(uint32_t rid, uint64_t conv,
                           const std::string& cmid,
                           const std::string& payload) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  auto* s = f.mutable_send();
  s->set_conversation_id(conv);
  s->set_client_message_id(cmid);
  s->set_kind(v1::MESSAGE_KIND_TEXT);
  s->set_payload(payload);
  return f;
}

v1::ClientFrame open_direct(uint32_t rid, const std::string& username) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  f.mutable_open_direct()->set_username(username);
  return f;
}

v1::ClientFrame ping(uint32_t rid) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  f.mutable_ping();
  return f;
}

v1::ClientFrame sync_frame(uint32_t rid,
                           const std::map<uint64_t, uint64_t>& cursors,
                           uint32_t page_size) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  auto* s = f.mutable_sync();
  for (auto& [conv, after] : cursors) {
    auto* cur = s->add_cursors();
    cur->set_conversation_id(conv);
    cur->set_after_sequence(after);
  }
  if (page_size != 0)
    s->set_page_size(page_size);
  return f;
}

v1::ClientFrame sync_continue(uint32_t rid, const std::string& continuation) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  f.mutable_sync()->set_continuation(continuation);
  return f;
}

std::optional<v1::ServerFrame>
read_until(ws_client& c, const std::function<bool(const v1::ServerFrame&)>& pred,
           std::vector<v1::ServerFrame>* skipped) {
  for (int i = 0; i < 100; ++i) {
    auto f = c.read();
    if (!f)
      return std::nullopt;
    if (pred(*f))
      return f;
    if (skipped)
      skipped->push_back(*f);
  }
  return std::nullopt;
}

std::optional<v1::Message> next_message(ws_client& c) {
  auto f = read_until(c, [](const v1::ServerFrame& x) { return x.has_message(); });
  if (!f)
    return std::nullopt;
  return f->message();
}

} // namespace parley::e2e
