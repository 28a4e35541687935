// A real parleyd on loopback with real HTTP and WebSocket clients: the
// account API, the Hello handshake, sends over JSON and binary frames,
// heartbeats, and every refusal with its documented code.

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "parleyd_node.hpp"
#include "process.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;


TEST_CASE("http_api_creates_accounts_logs_devices_in_and_refuses_bad_input") {
  node n;
  auto health = http_call(n.port, "GET", "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body.find("ok") != std::string::npos);
  auto token = n.account("alice", "phone");
  auto dup = http_call(n.port, "POST", "/v1/accounts",
                       R"({"username":"alice","password":"whatever123"})");
  CHECK(dup.status == 409);
  CHECK(dup.body.find("CONFLICT") != std::string::npos);
  auto wrong = http_call(n.port, "POST", "/v1/login",
                         R"({"username":"alice","password":"wrong pass",)"
                         R"("deviceName":"x"})");
  CHECK(wrong.status == 401);
  CHECK(http_call(n.port, "POST", "/v1/accounts", "{garbage").status == 400);
  CHECK(http_call(n.port, "POST", "/v1/accounts",
                  R"({"username":"NO SPACES","password":"long enough"})")
          .status
        == 400);
  CHECK(http_call(n.port, "POST", "/v1/accounts",
                  std::string(200000, 'x'))
          .status
        == 413);
  CHECK(http_call(n.port, "GET", "/nope").status == 404);
  auto devices = http_call(n.port, "GET", "/v1/devices", {}, token);
  CHECK(devices.status == 200);
  CHECK(devices.body.find("phone") != std::string::npos);
  CHECK(http_call(n.port, "GET", "/v1/devices", {}, "bad-token").status
        == 401);
  auto metrics = http_call(n.port, "GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("parley_http_requests_total") != std::string::npos);
}

TEST_CASE("websocket_sends_are_accepted_in_order_over_json_and_binary") {
  node n;
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  ws_client a{n.port};
  auto welcome = a.call(hello(1, alice), frame_format::json);
  REQUIRE(welcome);
  REQUIRE(welcome->has_welcome());
  CHECK(welcome->welcome().protocol_version() == 1);
  auto opened = a.call(open_direct(2, "bob"), frame_format::json);
  REQUIRE(opened);
  REQUIRE(opened->has_direct_opened());
  auto conv = opened->direct_opened().conversation_id();
  for (uint32_t i = 1; i <= 3; ++i) {
    auto acc = a.call(send_frame(10 + i, conv, "a-" + std::to_string(i), "hi"),
                      frame_format::json);
    REQUIRE(acc);
    REQUIRE(acc->has_accepted());
    CHECK(acc->accepted().server_sequence() == i);
    CHECK_FALSE(acc->accepted().deduplicated());
  }
  // Bob, in binary frames, authenticated by header, finds the same
  // conversation; his message takes the next sequence.
  ws_client b{n.port, bob};
  auto bw = b.call(hello(1, ""), frame_format::binary);
  REQUIRE(bw);
  REQUIRE(bw->has_welcome());
  auto bo = b.call(open_direct(2, "alice"), frame_format::binary);
  REQUIRE(bo);
  CHECK(bo->direct_opened().conversation_id() == conv);
  auto bacc = b.call(send_frame(3, conv, "b-1", "yo"), frame_format::binary);
  REQUIRE(bacc);
  REQUIRE(bacc->has_accepted());
  CHECK(bacc->accepted().server_sequence() == 4);
  // Alice retries her first send on a new connection: the original answer.
  ws_client a2{n.port};
  REQUIRE(a2.call(hello(1, alice), frame_format::binary)->has_welcome());
  auto again = a2.call(send_frame(2, conv, "a-1", "hi"), frame_format::binary);
  REQUIRE(again);
  REQUIRE(again->has_accepted());
  CHECK(again->accepted().server_sequence() == 1);
  CHECK(again->accepted().deduplicated());
}

TEST_CASE("websocket_refuses_bad_tokens_requests_before_hello_and_non_members") {
  node n;
  auto alice = n.account("alice", "phone");
  n.account("bob", "laptop");
  auto carol = n.account("carol", "tablet");
  {
    ws_client c{n.port};
    auto r = c.call(hello(1, "forged-token"), frame_format::json);
    CHECK(error_of(r) == v1::Error::CODE_UNAUTHENTICATED);
    // The server then says why and closes.
    auto bye = c.read();
    REQUIRE(bye);
    CHECK(bye->has_disconnect());
    CHECK_FALSE(c.read(3000));
    CHECK(c.closed());
  }
  {
    ws_client c{n.port};
    auto r = c.call(send_frame(1, 1, "x", "early"), frame_format::binary);
    CHECK(error_of(r) == v1::Error::CODE_UNAUTHENTICATED);
    auto pong = c.call(ping(2), frame_format::binary); // still open
    REQUIRE(pong);
    CHECK(pong->has_pong());
  }
  // Carol cannot write into Alice and Bob's conversation.
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::json);
  ws_client c{n.port};
  REQUIRE(c.call(hello(1, carol), frame_format::json)->has_welcome());
  auto r = c.call(send_frame(2, conv, "c-1", "let me in"), frame_format::json);
  CHECK(error_of(r) == v1::Error::CODE_FORBIDDEN);
  auto missing = c.call(open_direct(3, "nobody"), frame_format::json);
  CHECK(error_of(missing) == v1::Error::CODE_NOT_FOUND);
}

TEST_CASE("a_revoked_device_is_disconnected_and_its_token_refused") {
  node n;
  auto phone = n.account("alice", "phone");
  auto laptop = n.login("alice", "laptop");
  ws_client p{n.port};
  auto w = p.call(hello(1, phone), frame_format::json);
  REQUIRE(w);
  REQUIRE(w->has_welcome());
  auto dev = w->welcome().device_id();
  auto del = http_call(n.port, "DELETE", "/v1/devices/" + std::to_string(dev),
                       {}, laptop);
  CHECK(del.status == 204);
  auto bye = p.read();
  REQUIRE(bye);
  CHECK(bye->has_disconnect());
  CHECK(bye->disconnect().reason() == "device revoked");
  CHECK_FALSE(p.read(3000));
  ws_client again{n.port};
  CHECK(error_of(again.call(hello(1, phone), frame_format::json))
        == v1::Error::CODE_UNAUTHENTICATED);
}

TEST_CASE("bad_frames_get_error_frames_and_the_connection_survives") {
  node n;
  auto alice = n.account("alice", "phone");
  ws_client a{n.port};
  REQUIRE(a.call(hello(1, alice), frame_format::binary)->has_welcome());
  a.send_raw("\xff\xff\xff\xff garbage", true);
  CHECK(error_of(a.read()) == v1::Error::CODE_BAD_FRAME);
  a.send_raw("{not json", false);
  CHECK(error_of(a.read()) == v1::Error::CODE_BAD_FRAME);
  a.send_raw(R"({"requestId":5,"typing":{}})", false);
  CHECK(error_of(a.read()) == v1::Error::CODE_UNIMPLEMENTED);
  a.send_raw(std::string(100 * 1024, 'x'), true);
  CHECK(error_of(a.read()) == v1::Error::CODE_TOO_LARGE);
  auto pong = a.call(ping(9), frame_format::binary);
  REQUIRE(pong);
  CHECK(pong->has_pong());
}

namespace {

v1::ClientFrame delivered(uint32_t rid, uint64_t conv, uint64_t up_to) {
  v1::ClientFrame f;
  f.set_request_id(rid);
  f.mutable_delivered()->set_conversation_id(conv);
  f.mutable_delivered()->set_up_to_sequence(up_to);
  return f;
}

double metric(uint16_t port, const std::string& name) {
  auto body = http_call(port, "GET", "/metrics").body;
  std::smatch m;
  std::regex re("\\n" + name + " ([0-9.e+-]+)");
  return std::regex_search(body, m, re) ? std::stod(m[1].str()) : -1.0;
}

} // namespace

TEST_CASE("delivered_acks_are_taken_silently_and_bad_ones_refused") {
  node n;
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  ws_client b{n.port};
  auto conv = open_chat(b, bob, "alice", frame_format::binary);
  ws_client a{n.port};
  REQUIRE(a.call(hello(1, alice), frame_format::json)->has_welcome());
  CHECK(metric(n.port, "parley_devices_online") == 2);
  for (uint32_t i = 0; i < 3; ++i)
    REQUIRE(b.call(send_frame(10 + i, conv, "m" + std::to_string(i), "hi"),
                   frame_format::binary)
              ->has_accepted());
  for (int i = 0; i < 3; ++i) {
    auto m = a.read();
    REQUIRE(m);
    REQUIRE(m->has_message());
  }
  CHECK(metric(n.port, "parley_deliveries_unacked") == 3);
  // Acks, in a burst and out of order, are taken without an answer.
  for (uint32_t s : {1, 3, 2})
    a.send(delivered(20 + s, conv, s), frame_format::json);
  REQUIRE(a.call(ping(30), frame_format::json)->has_pong());
  CHECK_FALSE(a.read(500)); // no errors came after the pong either
  CHECK(metric(n.port, "parley_deliveries_unacked") == 0);
  // Malformed, past the head, or for someone else's conversation: refused.
  v1::ClientFrame bad;
  bad.set_request_id(40);
  bad.mutable_delivered()->set_conversation_id(conv);
  CHECK(error_of(a.call(bad, frame_format::json))
        == v1::Error::CODE_BAD_FRAME);
  CHECK(error_of(a.call(delivered(41, conv, 4), frame_format::json))
        == v1::Error::CODE_CURSOR_AHEAD);
  CHECK(error_of(a.call(delivered(42, conv + 1, 1), frame_format::json))
        == v1::Error::CODE_FORBIDDEN);
  auto pong = a.call(ping(43), frame_format::json);
  REQUIRE(pong);
  CHECK(pong->has_pong()); // the connection is still up
}

TEST_CASE("a_silent_client_is_disconnected_after_two_heartbeats") {
  node n{{"--parley.heartbeat-ms=300"}};
  auto alice = n.account("alice", "phone");
  auto alice2 = n.login("alice", "laptop");
  ws_client silent{n.port};
  auto w = silent.call(hello(1, alice), frame_format::json);
  REQUIRE(w);
  CHECK(w->welcome().heartbeat_ms() == 300);
  ws_client lively{n.port};
  REQUIRE(lively.call(hello(1, alice2), frame_format::json)->has_welcome());
  // The lively one pings (a ping at most every 100 ms while the silent one
  // is waited on) until the silent one is told to go, and stays connected
  // all along.
  std::optional<v1::ServerFrame> bye;
  for (uint32_t i = 0; !bye && !silent.closed() && i < 200; ++i) {
    auto pong = lively.call(ping(10 + i), frame_format::json, 2000);
    REQUIRE(pong);
    CHECK(pong->has_pong());
    bye = silent.read(100);
  }
  auto pong = lively.call(ping(300), frame_format::json, 2000);
  REQUIRE(pong);
  CHECK(pong->has_pong());
  // The silent one was told why and closed.
  REQUIRE(bye);
  REQUIRE(bye->has_disconnect());
  CHECK(bye->disconnect().code() == 4005);
  CHECK(bye->disconnect().reconnect());
  CHECK_FALSE(silent.read(2000));
}


TEST_CASE("pipelined_sends_keep_their_order_and_keep_the_connection_alive") {
  // Sends written back to back, some behind the first send to another
  // conversation (whose handle the connection looks up first): every send
  // keeps its place.
  node n{{"--parley.heartbeat-ms=500", "--parley.no-rate-limits"}};
  auto alice = n.account("alice", "phone");
  n.account("bob", "laptop");
  ws_client a{n.port};
  REQUIRE(a.call(hello(1, alice), frame_format::binary)->has_welcome());
  auto opened = a.call(open_direct(2, "bob"), frame_format::binary);
  REQUIRE(opened);
  REQUIRE(opened->has_direct_opened());
  auto conv = opened->direct_opened().conversation_id();
  std::vector<uint64_t> others; // conversations not sent to yet
  for (int k = 0; k < 4; ++k) {
    auto name = "carol" + std::to_string(k);
    n.account(name, "phone");
    auto o = a.call(open_direct(3 + k, name), frame_format::binary);
    REQUIRE(o);
    REQUIRE(o->has_direct_opened());
    others.push_back(o->direct_opened().conversation_id());
  }
  auto first = a.call(send_frame(10, conv, "p-0", "x"), frame_format::binary);
  REQUIRE(first);
  REQUIRE(first->has_accepted());
  CHECK(first->accepted().server_sequence() == 1);
  // 300 sends written back to back. Every 60th is followed by the first
  // send to another conversation (the actor looks its handle up, and the
  // sends behind it wait), and the middle by a ping and two bad sends.
  std::map<uint32_t, uint64_t> sequence_of_rid; // expected
  std::map<uint32_t, uint64_t> other_of_rid;
  uint32_t rid = 100;
  for (uint64_t i = 1; i <= 300; ++i) {
    a.send(send_frame(rid, conv, "p-" + std::to_string(i), "x"),
           frame_format::binary);
    sequence_of_rid[rid++] = i + 1;
    if (i % 60 == 0 && i < 300) {
      auto other = others[i / 60 - 1];
      a.send(send_frame(rid, other, "o-1", "x"), frame_format::binary);
      other_of_rid[rid++] = other;
    }
    if (i == 150) {
      a.send(ping(9000), frame_format::binary);
      a.send(send_frame(9001, conv, "", "no id"), frame_format::binary);
      a.send(send_frame(9002, conv, "big", std::string(70 * 1024, 'x')),
             frame_format::binary);
    }
  }
  std::map<uint32_t, v1::ServerFrame> answers;
  while (answers.size() < sequence_of_rid.size() + other_of_rid.size() + 3) {
    auto f = a.read(10000);
    REQUIRE(f);
    CHECK(answers.count(f->request_id()) == 0); // one answer each
    answers[f->request_id()] = *f;
  }
  // The sequences follow the order the sends were written in.
  for (auto& [r, seq] : sequence_of_rid) {
    INFO(answers[r].DebugString());
    REQUIRE(answers[r].has_accepted());
    CHECK(answers[r].accepted().server_sequence() == seq);
    CHECK(answers[r].accepted().conversation_id() == conv);
    CHECK(answers[r].accepted().client_message_id()
          == "p-" + std::to_string(seq - 1));
  }
  for (auto& [r, other] : other_of_rid) {
    INFO(answers[r].DebugString());
    REQUIRE(answers[r].has_accepted());
    CHECK(answers[r].accepted().conversation_id() == other);
    CHECK(answers[r].accepted().server_sequence() == 1);
  }
  CHECK(answers[9000].has_pong());
  CHECK(answers[9001].error().code() == v1::Error::CODE_BAD_FRAME);
  CHECK(answers[9002].error().code() == v1::Error::CODE_TOO_LARGE);
  // A repeat gets the original answer.
  auto again = a.call(send_frame(9003, conv, "p-7", "x"),
                      frame_format::binary);
  REQUIRE(again);
  REQUIRE(again->has_accepted());
  CHECK(again->accepted().server_sequence() == 8);
  CHECK(again->accepted().deduplicated());
  // Sends only, for four heartbeat intervals: they count as signs of life,
  // and the connection stays.
  for (uint32_t i = 0; i < 20; ++i) {
    CHECK_FALSE(a.read(100)); // 100 ms with nothing pushed (no Disconnect)
    auto acc = a.call(send_frame(9100 + i, conv, "h-" + std::to_string(i),
                                 "x"),
                      frame_format::binary, 2000);
    REQUIRE(acc);
    REQUIRE(acc->has_accepted());
  }
  CHECK_FALSE(a.closed());
}
