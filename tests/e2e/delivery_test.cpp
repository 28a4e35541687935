// Delivery end to end: pushes to online devices, sync for offline ones,
// retries across connections, and slow readers, against a real parleyd.

#include <doctest/doctest.h>

#include <regex>
#include <set>
#include <string>

#include "parleyd_node.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

TEST_CASE("online_delivery_reaches_the_peer_in_order_across_formats") {
  node n;
  auto alice = n.account("alice", "phone");
  auto alice_laptop = n.login("alice", "laptop");
  auto bob = n.account("bob", "laptop");
  ws_client a{n.port};
  REQUIRE(a.call(hello(1, alice), frame_format::json)->has_welcome());
  ws_client al{n.port};
  REQUIRE(al.call(hello(1, alice_laptop), frame_format::binary)->has_welcome());
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  auto conv = a.call(open_direct(2, "bob"), frame_format::json)
                ->direct_opened()
                .conversation_id();
  const int count = 50;
  for (int i = 0; i < count; ++i) // pipelined: no waiting per send
    a.send(send_frame(100 + i, conv, "m" + std::to_string(i),
                      "text " + std::to_string(i)),
           frame_format::json);
  // Bob (binary) gets all of them, in sequence order, once.
  uint32_t last_event = 0;
  for (int i = 0; i < count; ++i) {
    auto f = b.read();
    REQUIRE(f);
    REQUIRE(f->has_message());
    auto& m = f->message();
    CHECK(m.conversation_id() == conv);
    CHECK(m.server_sequence() == uint64_t(i + 1));
    CHECK(m.payload() == "text " + std::to_string(i));
    CHECK(m.client_message_id() == "m" + std::to_string(i));
    CHECK(f->request_id() == 0);
    CHECK(f->event_seq() == last_event + 1);
    last_event = f->event_seq();
  }
  // Alice's other device sees her messages too; the sending device does
  // not get its own messages pushed back, only the Accepted answers.
  for (int i = 0; i < count; ++i) {
    auto f = al.read();
    REQUIRE(f);
    REQUIRE(f->has_message());
    CHECK(f->message().server_sequence() == uint64_t(i + 1));
  }
  int accepted = 0;
  for (int i = 0; i < count; ++i) {
    auto f = a.read();
    REQUIRE(f);
    CHECK_FALSE(f->has_message());
    accepted += f->has_accepted();
  }
  CHECK(accepted == count);
  // Bob answers in binary; Alice's JSON connection receives it.
  auto acc = b.call(send_frame(7, conv, "b0", "reply"), frame_format::binary);
  REQUIRE(acc->has_accepted());
  auto f = a.read();
  REQUIRE(f);
  REQUIRE(f->has_message());
  CHECK(f->message().payload() == "reply");
  CHECK(f->message().sender_user_id() == user_id_of(n.port, bob));
  // /metrics counts what happened.
  auto metrics = http_call(n.port, "GET", "/metrics").body;
  auto value = [&](const std::string& name) {
    std::smatch m;
    std::regex re("\n" + name + " ([0-9.]+)");
    return std::regex_search(metrics, m, re) ? std::stod(m[1].str()) : -1.0;
  };
  CHECK(value("parley_messages_delivered_total") >= 2 * count + 1);
  CHECK(value("parley_messages_accepted_total") >= count + 1);
  CHECK(value("parley_outbox_backlog") == 0);
  CHECK(value("parley_commit_latency_seconds_count") >= 1);
  // Every message sent through the gateway is timed once, and took time
  // (the last one may be timed just after its Accepted was read).
  CHECK(value("parley_send_latency_seconds_count") >= count);
  CHECK(value("parley_send_latency_seconds_count") <= count + 1);
  CHECK(value("parley_send_latency_seconds_sum") > 0);
  CHECK(metrics.find("parley_commit_latency_seconds_bucket{le=\"+Inf\"}")
        != std::string::npos);
}

TEST_CASE("an_offline_recipient_syncs_exactly_the_missed_messages_in_pages") {
  node n{{"--parley.limit-send-device=off", "--parley.limit-send-user=off"}};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::binary);
  // Bob saw the first two messages before going offline.
  for (int i = 0; i < 2; ++i)
    REQUIRE(a.call(send_frame(10 + i, conv, "early" + std::to_string(i), "e"),
                   frame_format::binary)
              ->has_accepted());
  const int missed = 1000;
  for (int i = 0; i < missed; ++i)
    a.send(send_frame(100 + i, conv, "m" + std::to_string(i),
                      "payload " + std::to_string(i)),
           frame_format::binary);
  for (int i = 0; i < missed; ++i) {
    auto f = a.read();
    REQUIRE(f);
    REQUIRE(f->has_accepted());
  }
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::json)->has_welcome());
  std::vector<uint64_t> seqs;
  uint32_t rid = 2;
  auto pages = sync_all(b, {{conv, 2}}, 100, frame_format::json, rid, 20);
  rid += static_cast<uint32_t>(pages.size());
  for (size_t i = 0; i < pages.size(); ++i) {
    auto& page = pages[i];
    if (i == 0) {
      REQUIRE(page.inbox_size() == 1);
      CHECK(page.inbox(0).head_sequence() == 2 + missed);
    } else {
      CHECK(page.inbox_size() == 0);
    }
    CHECK(page.messages_size() <= 100);
    for (auto& m : page.messages()) {
      seqs.push_back(m.server_sequence());
      CHECK(m.payload()
            == "payload " + std::to_string(m.server_sequence() - 3));
    }
  }
  CHECK(pages.size() >= 10);
  REQUIRE(seqs.size() == size_t(missed)); // exactly those, once
  for (size_t i = 0; i < seqs.size(); ++i)
    CHECK(seqs[i] == 3 + i); // in order
  // A cursor past the head, or into someone else's conversation, is refused.
  auto carol = n.account("carol", "tablet");
  ws_client c{n.port};
  REQUIRE(c.call(hello(1, carol), frame_format::json)->has_welcome());
  v1::ClientFrame peek;
  peek.set_request_id(5);
  auto* cur = peek.mutable_sync()->add_cursors();
  cur->set_conversation_id(conv);
  CHECK(error_of(c.call(peek, frame_format::json))
        == v1::Error::CODE_FORBIDDEN);
  v1::ClientFrame ahead;
  ahead.set_request_id(rid++);
  auto* cur2 = ahead.mutable_sync()->add_cursors();
  cur2->set_conversation_id(conv);
  cur2->set_after_sequence(999999);
  CHECK(error_of(b.call(ahead, frame_format::json))
        == v1::Error::CODE_CURSOR_AHEAD);
}

TEST_CASE("a_send_retried_on_a_new_connection_after_a_drop_is_stored_once") {
  node n;
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  uint64_t conv = 0;
  for (int round = 0; round < 20; ++round) {
    {
      ws_client a{n.port};
      conv = open_chat(a, alice, "bob", frame_format::binary);
      // Send and drop the connection without waiting for Accepted.
      a.send(send_frame(3, conv, "drop-" + std::to_string(round), "once"),
             frame_format::binary);
    }
    ws_client a{n.port};
    REQUIRE(a.call(hello(1, alice), frame_format::binary)->has_welcome());
    auto acc = a.call(send_frame(4, conv, "drop-" + std::to_string(round),
                                 "once"),
                      frame_format::binary);
    REQUIRE(acc);
    REQUIRE(acc->has_accepted());
  }
  // Each of the 20 sends is in the log exactly once, gapless.
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  v1::ClientFrame f;
  f.set_request_id(2);
  auto* c = f.mutable_sync()->add_cursors();
  c->set_conversation_id(conv);
  auto page = b.call(f, frame_format::binary);
  REQUIRE(page);
  REQUIRE(page->has_sync_page());
  auto& msgs = page->sync_page().messages();
  REQUIRE(msgs.size() == 20);
  std::set<std::string> seen;
  for (int i = 0; i < msgs.size(); ++i) {
    CHECK(msgs[i].server_sequence() == uint64_t(i + 1));
    CHECK(seen.insert(msgs[i].client_message_id()).second);
  }
}

TEST_CASE("a_device_that_does_not_read_is_disconnected_and_recovers_by_sync") {
  node n{{"--parley.limit-send-device=off", "--parley.limit-send-user=off"}};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::binary);
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  // Bob stops reading. Alice sends until the server gives up on him: his
  // socket buffers fill, then his bounded outbound queue (1,024 frames).
  const int total = 40000;
  std::string payload(1000, 'p');
  int accepted = 0;
  uint32_t rid = 10;
  for (int sent = 0; sent < total; ++sent) {
    a.send(send_frame(rid++, conv, "m" + std::to_string(sent), payload),
           frame_format::binary);
    if (sent - accepted >= 64) { // keep 64 in flight
      auto f = a.read();
      REQUIRE(f);
      accepted += f->has_accepted();
    }
  }
  while (accepted < total) {
    auto f = a.read();
    REQUIRE(f);
    accepted += f->has_accepted();
  }
  // Bob now reads what reached him: the stream ends before all 40,000.
  int pushed = 0;
  while (auto f = b.read(3000))
    pushed += f->has_message();
  CHECK(b.closed());
  CHECK(pushed < total);
  auto metrics = http_call(n.port, "GET", "/metrics").body;
  CHECK(metrics.find("\nparley_slow_disconnects_total 1\n")
        != std::string::npos);
  MESSAGE(pushed << " of " << total << " pushed before the server closed "
                    "the slow connection");
  // He reconnects and syncs: every message, once, in order.
  ws_client b2{n.port};
  REQUIRE(b2.call(hello(1, bob), frame_format::binary)->has_welcome());
  uint64_t next = 1;
  for (auto& page : sync_all(b2, {{conv, 0}}, 1000, frame_format::binary, 2,
                             200))
    for (auto& m : page.messages())
      CHECK(m.server_sequence() == next++);
  CHECK(next == uint64_t(total) + 1);
}
