// The frame decoder takes bytes from the network: valid frames in both
// formats, and garbage, truncation, mutation and oversized input, which
// must all come back as a clear error code, never a crash.

#include <doctest/doctest.h>

#include <random>
#include <set>

#include <caf/sec.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/gateway/frame_codec.hpp"
#include "runtime/gateway/ws_sink.hpp"

using namespace parley;
using namespace parley::gateway;

namespace {

v1::ClientFrame sample_send() {
  v1::ClientFrame f;
  f.set_request_id(7);
  auto* s = f.mutable_send();
  s->set_conversation_id(42);
  s->set_client_message_id("3f2c-uuid");
  s->set_kind(v1::MESSAGE_KIND_TEXT);
  s->set_payload(std::string("hello \x00\xff world", 14));
  return f;
}

const std::set<v1::Error::Code> refusals{v1::Error::CODE_BAD_FRAME,
                                         v1::Error::CODE_TOO_LARGE,
                                         v1::Error::CODE_UNIMPLEMENTED};

} // namespace

TEST_CASE("frames round-trip in binary and in canonical JSON") {
  route_protobuf_logs();
  auto f = sample_send();
  for (auto fmt : {frame_format::binary, frame_format::json}) {
    auto bytes = encode_client_frame(f, fmt);
    auto d = decode_client_frame(bytes, fmt, 1 << 16);
    REQUIRE(d.ok);
    CHECK(d.frame.SerializeAsString() == f.SerializeAsString());
  }
  // JSON as a person types it: lowerCamelCase, 64-bit ints as strings,
  // bytes as base64.
  auto d = decode_client_frame(
    R"({"requestId":1,"send":{"conversationId":"42","clientMessageId":"a",)"
    R"("payload":"aGk="}})",
    frame_format::json, 1 << 16);
  REQUIRE(d.ok);
  CHECK(d.frame.send().conversation_id() == 42);
  CHECK(d.frame.send().payload() == "hi");
}

TEST_CASE("server frames encode to JSON a client can read back") {
  v1::ServerFrame f;
  f.set_request_id(3);
  auto* a = f.mutable_accepted();
  a->set_server_sequence(1ull << 40);
  a->set_server_message_id("abc");
  auto json = encode_server_frame(f, frame_format::json);
  CHECK(json.find("\"serverSequence\":\"1099511627776\"") != std::string::npos);
  auto back = decode_server_frame(json, frame_format::json);
  REQUIRE(back);
  CHECK(back->accepted().server_sequence() == 1ull << 40);
}

TEST_CASE("malformed frames are refused with stable codes") {
  struct row {
    std::string bytes;
    frame_format fmt;
    v1::Error::Code code;
  };
  v1::ClientFrame no_id = sample_send();
  no_id.set_request_id(0);
  v1::ClientFrame no_body;
  no_body.set_request_id(1);
  // request_id=5 (field 1) and field 18 (allotted to Typing, not built).
  std::string typing("\x08\x05\x92\x01\x00", 5);
  std::vector<row> rows{
    {"\xff\xff\xff\xff", frame_format::binary, v1::Error::CODE_BAD_FRAME},
    {no_id.SerializeAsString(), frame_format::binary,
     v1::Error::CODE_BAD_FRAME},
    {no_body.SerializeAsString(), frame_format::binary,
     v1::Error::CODE_BAD_FRAME},
    {typing, frame_format::binary, v1::Error::CODE_UNIMPLEMENTED},
    {"", frame_format::json, v1::Error::CODE_BAD_FRAME},
    {"not json", frame_format::json, v1::Error::CODE_BAD_FRAME},
    {R"({"requestId":1})", frame_format::json, v1::Error::CODE_BAD_FRAME},
    {R"({"requestId":1,"typing":{}})", frame_format::json,
     v1::Error::CODE_UNIMPLEMENTED},
    {R"({"requestId":1,"ping":{},"send":{}})", frame_format::json,
     v1::Error::CODE_BAD_FRAME}, // two members of one oneof
    {R"({"requestId":"x","ping":{}})", frame_format::json,
     v1::Error::CODE_BAD_FRAME},
    {R"({"requestId":1,"send":{"payload":"%%%"}})", frame_format::json,
     v1::Error::CODE_BAD_FRAME}, // bad base64
  };
  for (auto& r : rows) {
    CAPTURE(r.bytes);
    auto d = decode_client_frame(r.bytes, r.fmt, 1 << 16);
    CHECK_FALSE(d.ok);
    CHECK(code_name(d.code) == code_name(r.code));
    CHECK_FALSE(d.message.empty());
  }
}

TEST_CASE("oversized frames are refused before parsing") {
  auto f = sample_send();
  f.mutable_send()->set_payload(std::string(70000, 'x'));
  for (auto fmt : {frame_format::binary, frame_format::json}) {
    auto d = decode_client_frame(encode_client_frame(f, fmt), fmt, 65536);
    CHECK_FALSE(d.ok);
    CHECK(d.code == v1::Error::CODE_TOO_LARGE);
  }
}

TEST_CASE("fuzz: random, truncated and mutated frames never crash and "
          "always get an answer") {
  route_protobuf_logs();
  std::mt19937_64 rng{12345};
  auto check = [&](const std::string& bytes, frame_format fmt) {
    auto d = decode_client_frame(bytes, fmt, 4096);
    if (d.ok) {
      CHECK(d.frame.request_id() != 0);
      CHECK(d.frame.body_case() != v1::ClientFrame::BODY_NOT_SET);
    } else {
      CHECK(refusals.count(d.code) == 1);
    }
  };
  // Pure garbage of every length up to the limit and past it.
  for (int i = 0; i < 3000; ++i) {
    std::string bytes(rng() % 5000, '\0');
    for (auto& c : bytes)
      c = static_cast<char>(rng());
    check(bytes, frame_format::binary);
    check(bytes, frame_format::json);
  }
  // Every truncation of valid frames.
  for (auto fmt : {frame_format::binary, frame_format::json}) {
    auto bytes = encode_client_frame(sample_send(), fmt);
    for (size_t n = 0; n <= bytes.size(); ++n)
      check(bytes.substr(0, n), fmt);
  }
  // Byte flips, insertions and deletions of valid frames.
  for (int i = 0; i < 20000; ++i) {
    auto fmt = i % 2 ? frame_format::json : frame_format::binary;
    auto bytes = encode_client_frame(sample_send(), fmt);
    for (int k = 0, n = 1 + rng() % 4; k < n; ++k) {
      auto pos = rng() % bytes.size();
      switch (rng() % 3) {
        case 0: bytes[pos] = static_cast<char>(rng()); break;
        case 1: bytes.insert(pos, 1, static_cast<char>(rng())); break;
        default: bytes.erase(pos, 1);
      }
      if (bytes.empty())
        break;
    }
    check(bytes, fmt);
  }
}

TEST_CASE("a peek finds a binary frame's body type without decoding it, "
          "and never calls anything else a Send") {
  route_protobuf_logs();
  auto send = encode_client_frame(sample_send(), frame_format::binary);
  CHECK(peek_client_frame_body(send) == v1::ClientFrame::kSend);
  v1::ClientFrame ping;
  ping.set_request_id(3);
  ping.mutable_ping();
  auto ping_bytes = encode_client_frame(ping, frame_format::binary);
  CHECK(peek_client_frame_body(ping_bytes) == v1::ClientFrame::kPing);
  v1::ClientFrame sync;
  sync.set_request_id(4);
  sync.mutable_sync()->set_page_size(10);
  CHECK(peek_client_frame_body(encode_client_frame(sync, frame_format::binary))
        == v1::ClientFrame::kSync);
  // Two bodies on the wire: the last one wins, as when protobuf parses it.
  CHECK(peek_client_frame_body(send + ping_bytes) == v1::ClientFrame::kPing);
  CHECK(peek_client_frame_body(ping_bytes + send) == v1::ClientFrame::kSend);
  CHECK(peek_client_frame_body("") == 0);
  CHECK(peek_client_frame_body(std::string(1, '\0')) == 0); // field 0
  CHECK(peek_client_frame_body("{\"send\":{}}") == 0);     // JSON
  // Every truncation of a Send that cuts into its body is not a Send.
  for (size_t n = 0; n < send.size(); ++n)
    CHECK(peek_client_frame_body(send.substr(0, n))
          != v1::ClientFrame::kSend);
  // Mutated and random bytes: whatever the peek calls a Send decodes as a
  // Send or not at all (then the connection actor answers the error).
  std::mt19937_64 rng{777};
  int sends = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = i % 4 == 0 ? std::string(rng() % 300, '\0') : send;
    if (i % 4 == 0)
      for (auto& c : bytes)
        c = static_cast<char>(rng());
    else
      for (int k = 0, n = 1 + rng() % 3; k < n && !bytes.empty(); ++k)
        bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (peek_client_frame_body(bytes) != v1::ClientFrame::kSend)
      continue;
    ++sends;
    auto d = decode_client_frame(bytes, frame_format::binary, 4096);
    if (d.ok)
      CHECK(d.frame.body_case() == v1::ClientFrame::kSend);
  }
  CHECK(sends > 1000); // the loop did look at Sends
}

namespace {

/// Captures what a sink queues for a session.
struct captured_link : gateway::ws_link {
  std::vector<std::pair<std::string, bool>> frames;
  std::vector<bool> bulk; ///< per frame: sent on the bulk lane
  bool send_bulk(std::string data, bool binary) override {
    frames.emplace_back(std::move(data), binary);
    bulk.push_back(true);
    return true;
  }
  bool send(std::string data, bool binary) override {
    frames.emplace_back(std::move(data), binary);
    bulk.push_back(false);
    return true;
  }
  void close(uint16_t, std::string) override {
  }
};

} // namespace

TEST_CASE("a large group's push is the frame a plain push builds, on the "
          "bulk lane, numbered in one event sequence with it") {
  stored_message m;
  m.conversation = 1234567;
  m.seq = 300;
  m.sender_user = 7;
  m.sender_device = 2;
  m.client_message_id = "c-1";
  m.sent_at_ms = 1'700'000'000'123;
  m.kind = 1;
  m.payload = std::string(500, 'p') + std::string("\0\x01\xff", 3);
  for (auto fmt : {gateway::frame_format::binary, gateway::frame_format::json}) {
    auto link = std::make_shared<captured_link>();
    auto stats = std::make_shared<gateway::metrics>();
    gateway::ws_sink sink{link, fmt, stats};
    // Event sequences beyond one byte of varint.
    for (int i = 0; i < 200; ++i) {
      REQUIRE(sink.push_bulk(m));
      REQUIRE(sink.push(m));
    }
    REQUIRE(link->frames.size() == 400);
    REQUIRE(link->bulk.size() == 400);
    for (size_t i = 0; i < link->frames.size(); i += 2) {
      CHECK(link->bulk[i]);
      CHECK_FALSE(link->bulk[i + 1]);
      auto a = gateway::decode_server_frame(link->frames[i].first, fmt);
      auto b = gateway::decode_server_frame(link->frames[i + 1].first, fmt);
      REQUIRE(a);
      REQUIRE(b);
      CHECK(a->event_seq() == i + 1);
      CHECK(b->event_seq() == i + 2);
      b->set_event_seq(a->event_seq());
      CHECK(a->SerializeAsString() == b->SerializeAsString());
      CHECK(a->message().payload() == m.payload);
    }
  }
}

TEST_CASE("a retryable UNAVAILABLE says when to retry, a refusal does not") {
  using parley::errc;
  for (auto err : {caf::make_error(errc::unavailable, "partition 3 moving"),
                   caf::make_error(errc::storage_failed),
                   caf::make_error(errc::shutting_down),
                   caf::make_error(caf::sec::request_timeout)}) {
    auto e = parley::gateway::to_wire_error(err);
    CHECK(e.code() == parley::v1::Error::CODE_UNAVAILABLE);
    CHECK(e.retryable());
    CHECK(e.retry_after_ms() == parley::gateway::unavailable_retry_ms);
  }
  auto forbidden = parley::gateway::to_wire_error(
    caf::make_error(errc::not_member));
  CHECK_FALSE(forbidden.retryable());
  CHECK(forbidden.retry_after_ms() == 0);
}
