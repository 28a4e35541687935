// The protocol's edge through a real parleyd: malformed HTTP gets a 400
// with a JSON body (never a dropped connection); every disconnect cause
// that can be caused from outside arrives as a Disconnect frame with its
// own code and reconnect advice, then a WebSocket close with the same
// code; a client that never reads is reset once closing outlasts the
// close timeout; a Hello after a failed one is not handled; the WebSocket
// layer's own closes (1007, 1009) are as documented; lenient JSON is
// refused; and WebSocket upgrades refused in a storm carry one hint, in
// the header and the body alike, spread over the drain instead of all
// naming the same moment.

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "parleyctl_run.hpp"
#include "parleyd_node.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

namespace {

struct raw_reply {
  unsigned status = 0; ///< 0: no HTTP answer at all
  std::string content_type;
  std::string body;
};

/// Writes `bytes` to 127.0.0.1:port as they are and reads until the server
/// hangs up (or 10 s pass): the one answer expected.
raw_reply raw_http(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr)
          == 0);
  for (size_t off = 0; off < bytes.size();) {
    auto n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0)
      break; // the server may answer and stop reading early
    off += static_cast<size_t>(n);
  }
  std::string in;
  char buf[4096];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  raw_reply r;
  std::smatch m;
  if (std::regex_search(in, m, std::regex("^HTTP/1\\.[01] (\\d{3}) ")))
    r.status = std::stoul(m[1].str());
  if (std::regex_search(in, m, std::regex("\r\nContent-Type: ([^\r]*)\r\n",
                                          std::regex::icase)))
    r.content_type = m[1].str();
  if (auto end = in.find("\r\n\r\n"); end != std::string::npos)
    r.body = in.substr(end + 4);
  return r;
}

/// Alice (`a`, Hello done, in `conv`) sends batches of `batch` sends of
/// `payload_bytes` each (request ids from 10), every one accepted, until
/// /metrics counts one slow-consumer disconnect (at most `max_rounds`
/// batches; fails the test without it). Returns the next free request id.
uint32_t flood_until_slow_disconnect(node& n, ws_client& a, uint64_t conv,
                                     size_t payload_bytes, int batch,
                                     int max_rounds) {
  std::string payload(payload_bytes, 'p');
  uint32_t rid = 10;
  bool overflowed = false;
  for (int round = 0; round < max_rounds && !overflowed; ++round) {
    for (int i = 0; i < batch; ++i)
      a.send(send_frame(rid + i, conv, "m" + std::to_string(rid + i),
                        payload),
             frame_format::binary);
    for (int i = 0; i < batch; ++i) {
      auto f = a.read();
      REQUIRE(f);
      CHECK(f->has_accepted());
    }
    rid += static_cast<uint32_t>(batch);
    auto metrics = http_call(n.port, "GET", "/metrics").body;
    overflowed = metrics.find("\nparley_slow_disconnects_total 1\n")
                 != std::string::npos;
  }
  REQUIRE(overflowed);
  return rid;
}

/// Reads frames until a Disconnect (skipping pushes before it), then
/// expects the close; returns the Disconnect.
v1::Disconnect read_disconnect(ws_client& c) {
  for (int i = 0; i < 100000; ++i) {
    auto f = c.read();
    REQUIRE(f);
    if (f->has_disconnect()) {
      CHECK_FALSE(c.read(5000)); // nothing after it: the close
      CHECK(c.closed());
      return f->disconnect();
    }
  }
  FAIL("no Disconnect frame");
  return {};
}

} // namespace

TEST_CASE("malformed_http_gets_400_with_a_json_body") {
  node n;
  std::string tls_hello{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11};
  tls_hello += std::string(32, '\x5a'); // the client random, and so on
  struct bad_case {
    const char* name;
    std::string bytes;
  };
  std::vector<bad_case> cases{
    {"bad version", "GET /healthz HTTP/x.1\r\nHost: a\r\n\r\n"},
    {"unsupported version", "GET /healthz HTTP/2.0\r\nHost: a\r\n\r\n"},
    {"100 KB header", "GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: "
                        + std::string(100 * 1024, 'x') + "\r\n\r\n"},
    {"Content-Length: abc",
     "POST /v1/login HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n{}"},
    {"bad chunk size", "POST /v1/login HTTP/1.1\r\nHost: a\r\n"
                       "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"},
    {"TLS ClientHello", tls_hello},
    {"garbage request line", "\x01\x02\x03 / HTTP/1.1\r\n\r\n"},
  };
  for (auto& c : cases) {
    auto r = raw_http(n.port, c.bytes);
    CHECK_MESSAGE(r.status == 400, c.name);
    CHECK_MESSAGE(r.content_type == "application/json", c.name);
    CHECK_MESSAGE(json_field(r.body, "code") == "CODE_BAD_FRAME", c.name);
    CHECK_MESSAGE(json_field(r.body, "message").rfind("malformed HTTP", 0)
                    == 0,
                  c.name << ": " << r.body);
  }
  // The server is fine, and a well-formed request still gets its answer.
  auto ok = raw_http(n.port, "GET /healthz HTTP/1.1\r\nHost: a\r\n"
                             "Connection: close\r\n\r\n");
  CHECK(ok.status == 200);
}

TEST_CASE("lenient_json_text_frames_are_refused_and_the_connection_survives") {
  node n;
  auto alice = n.account("alice", "phone");
  ws_client c{n.port};
  REQUIRE(c.call(hello(1, alice), frame_format::json)->has_welcome());
  for (const char* text :
       {"{'requestId':2,'ping':{}}", "{requestId:3,ping:{}}",
        R"({"requestId":4,"ping":{},})"}) {
    c.send_raw(text, false);
    auto f = c.read();
    REQUIRE(f);
    CHECK_MESSAGE(error_of(f) == v1::Error::CODE_BAD_FRAME, text);
  }
  auto pong = c.call(ping(5), frame_format::json);
  REQUIRE(pong);
  CHECK(pong->has_pong());
}

TEST_CASE("a_revoked_device_gets_4004_without_reconnect") {
  node n;
  auto phone = n.account("alice", "phone");
  auto laptop = n.login("alice", "laptop");
  ws_client p{n.port};
  auto w = p.call(hello(1, phone), frame_format::binary);
  REQUIRE(w);
  REQUIRE(w->has_welcome());
  auto del = http_call(n.port, "DELETE",
                       "/v1/devices/" + std::to_string(w->welcome().device_id()),
                       {}, laptop);
  CHECK(del.status == 204);
  auto d = read_disconnect(p);
  CHECK(d.code() == 4004);
  CHECK_FALSE(d.reconnect());
  CHECK(p.close_code() == 4004);
}

TEST_CASE("an_older_connection_of_a_device_is_replaced_with_4006") {
  node n;
  auto phone = n.account("alice", "phone");
  ws_client older{n.port};
  REQUIRE(older.call(hello(1, phone), frame_format::json)->has_welcome());
  ws_client newer{n.port};
  REQUIRE(newer.call(hello(1, phone), frame_format::json)->has_welcome());
  auto d = read_disconnect(older);
  CHECK(d.code() == 4006);
  CHECK_FALSE(d.reconnect()); // the newer one holds the device
  CHECK(older.close_code() == 4006);
  auto pong = newer.call(ping(2), frame_format::json);
  REQUIRE(pong);
  CHECK(pong->has_pong());
}

TEST_CASE("a_blocked_account_gets_4007_without_reconnect") {
  node n{admin_args()};
  REQUIRE(n.admin_port != 0);
  auto frank = n.account("frank", "phone");
  ws_client f{n.port};
  REQUIRE(f.call(hello(1, frank), frame_format::binary)->has_welcome());
  auto r = http_call(n.admin_port, "POST", "/v1/admin/users/frank/block",
                     "{}", test_admin_token);
  REQUIRE(r.status == 200);
  auto d = read_disconnect(f);
  CHECK(d.code() == 4007);
  CHECK_FALSE(d.reconnect());
  CHECK(f.close_code() == 4007);
}

TEST_CASE("a_silent_client_gets_4005_with_reconnect") {
  node n{{"--parley.heartbeat-ms=200"}};
  auto alice = n.account("alice", "phone");
  ws_client silent{n.port};
  REQUIRE(silent.call(hello(1, alice), frame_format::json)->has_welcome());
  auto d = read_disconnect(silent);
  CHECK(d.code() == 4005);
  CHECK(d.reconnect());
  CHECK(silent.close_code() == 4005);
}

TEST_CASE("a_slow_consumer_gets_a_4010_disconnect_frame_past_its_full_queue") {
  node n{{"--parley.limit-send-device=off", "--parley.limit-send-user=off",
          "--parley.max-outbound-frames=16"}};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::binary);
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  // Bob stops reading; Alice sends until the server gives up on him (his
  // socket buffers fill, then the 16-frame queue), as /metrics reports.
  flood_until_slow_disconnect(n, a, conv, 16 * 1024, 50, 400);
  // What was queued reaches him, then the Disconnect, then the close.
  auto d = read_disconnect(b);
  CHECK(d.code() == 4010);
  CHECK(d.reconnect()); // and sync
  CHECK(b.close_code() == 4010);
}

TEST_CASE("a_slow_consumer_that_never_reads_is_reset_after_the_close_timeout") {
  // Bob's socket takes almost nothing (a 4 KiB receive buffer) and he never
  // reads, but he pings on. His Disconnect frame waits behind a queue the
  // socket never takes, and his pings keep the read side busy: before the
  // close timeout (1 s here) the connection stayed up as long as he pinged.
  node n{{"--parley.limit-send-device=off", "--parley.limit-send-user=off",
          "--parley.max-outbound-frames=16", "--parley.close-timeout-ms=1000"}};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::binary);
  ws_client b{n.port, {}, 4096};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  // Frames large enough that the queue holds more than the stream buffers
  // before it holds a write back (256 KiB).
  auto rid = flood_until_slow_disconnect(n, a, conv, 48 * 1024, 20, 200);
  // He pings every 100 ms until the server resets the connection; 20 s is
  // far past the close timeout and short of every other timer that could
  // end it (Beast's close handshake 30 s, heartbeat 60 s, idle 300 s).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  uint32_t ping_rid = 2;
  while (b.tcp_established()
         && std::chrono::steady_clock::now() < deadline) {
    b.send(ping(ping_rid++), frame_format::binary);
    b.tcp_established(100); // paces the pings, returns early at the reset
  }
  CHECK_FALSE(b.tcp_established());
  // Alice is unaffected.
  auto pong = a.call(ping(rid), frame_format::binary);
  REQUIRE(pong);
  CHECK(pong->has_pong());
}

TEST_CASE("a_second_hello_after_a_failed_one_does_not_authenticate") {
  // The failed Hello's close handshake stays open (Bob's client does not
  // read, and the close timeout is long): a second Hello on that socket,
  // with a valid token, used to authenticate on the dying connection and
  // take the device from its live one (4006).
  node n{{"--parley.close-timeout-ms=600000"}};
  auto phone = n.account("alice", "phone");
  ws_client live{n.port};
  REQUIRE(live.call(hello(1, phone), frame_format::binary)->has_welcome());
  ws_client dying{n.port};
  dying.send(hello(1, ""), frame_format::binary); // no token: 4001
  dying.send(hello(2, phone), frame_format::binary);
  // The dying connection's actor ends with its Disconnect: one connection
  // open again (the live one), long before the close handshake could end.
  bool one_open = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!one_open && std::chrono::steady_clock::now() < deadline) {
    auto metrics = http_call(n.port, "GET", "/metrics").body;
    one_open = metrics.find("\nparley_connections_open 1\n")
               != std::string::npos;
    if (!one_open)
      live.tcp_established(20); // a pause between polls
  }
  REQUIRE(one_open);
  // The live connection still holds the device: its ping is answered, with
  // no Disconnect before the Pong.
  auto pong = live.call(ping(2), frame_format::binary);
  REQUIRE(pong);
  CHECK(pong->has_pong());
  // The dying one got its error and the Disconnect, and no Welcome.
  auto err = dying.read();
  REQUIRE(err);
  CHECK(err->request_id() == 1);
  CHECK(error_of(err) == v1::Error::CODE_UNAUTHENTICATED);
  auto d = read_disconnect(dying);
  CHECK(d.code() == 4001);
  CHECK(dying.close_code() == 4001);
}

TEST_CASE("frames_the_websocket_layer_refuses_close_it_with_standard_codes") {
  node n; // max-frame-bytes 96 KiB
  auto alice = n.account("alice", "phone");
  {
    // Up to 4 x max-frame-bytes: TOO_LARGE, and the connection stays.
    ws_client c{n.port};
    REQUIRE(c.call(hello(1, alice), frame_format::binary)->has_welcome());
    c.send_raw(std::string(3 * 96 * 1024, 'x'), true);
    CHECK(error_of(c.read()) == v1::Error::CODE_TOO_LARGE);
    auto pong = c.call(ping(2), frame_format::binary);
    REQUIRE(pong);
    CHECK(pong->has_pong());
    // Beyond: Beast closes with 1009, no Disconnect frame.
    c.send_raw(std::string(4 * 96 * 1024 + 1, 'x'), true);
    CHECK_FALSE(c.read());
    CHECK(c.closed());
    CHECK(c.close_code() == 1009);
  }
  {
    // A text frame that is not UTF-8: 1007, no Disconnect frame.
    ws_client c{n.port};
    REQUIRE(c.call(hello(1, alice), frame_format::json)->has_welcome());
    c.send_raw("{\"requestId\":2,\"ping\":{},\"x\":\"\xff\"}", false);
    CHECK_FALSE(c.read());
    CHECK(c.closed());
    CHECK(c.close_code() == 1007);
  }
}

TEST_CASE("upgrades_refused_in_a_storm_carry_one_hint_spread_over_the_drain") {
  // One token a minute, a burst of 40: the storm after the burst is
  // refused whole however slow the machine (the next token is a minute
  // away), and the backlog keeps 40 refusals (the burst bounds it).
  const int storm = 40;
  const uint64_t slot_ms = 60'000;
  node n{{"--parley.limit-connect-ip=1/min,40"}};
  for (int i = 0; i < storm; ++i)
    REQUIRE(try_ws_upgrade(n.port).status == 101); // the burst
  std::vector<uint64_t> hints;
  std::set<std::string> headers;
  for (int i = 0; i < storm; ++i) {
    auto r = try_ws_upgrade(n.port);
    REQUIRE(r.status == 429);
    CHECK(json_field(r.body, "code") == "CODE_RATE_LIMITED");
    auto ms = std::stoull(json_field(r.body, "retryAfterMs"));
    // One hint: Retry-After is the body's milliseconds in whole seconds,
    // rounded up.
    CHECK(r.retry_after == std::to_string((ms + 999) / 1000));
    hints.push_back(ms);
    headers.insert(r.retry_after);
  }
  // Spread: each refusal names its own moment, one token's slot (1 min)
  // after the one before, not all the next token's.
  std::set<uint64_t> distinct(hints.begin(), hints.end());
  CHECK(distinct.size() == hints.size());
  CHECK(headers.size() >= storm / 2);
  auto [lo, hi] = std::minmax_element(hints.begin(), hints.end());
  MESSAGE("hints from " << *lo << " ms to " << *hi << " ms");
  CHECK(*hi - *lo >= (storm / 2) * slot_ms);
  CHECK(*hi <= (storm + 2) * slot_ms);
}
