// Multi-device delivery and receipts through a real parleyd: a user with
// three devices (two online, one offline) gets every message on each
// exactly once, messages sent from one device appear on the others, and
// delivered/read receipts move from the reader to the sender's devices and
// to the reader's own other devices; sync carries them for the offline one.

#include <doctest/doctest.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <algorithm>
#include <csignal>
#include <tuple>

#include <sys/wait.h>

#include "parleyd_node.hpp"
#include "process.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

TEST_CASE("three_devices_get_each_message_once_and_receipts_reach_the_sender") {
  node n;
  auto phone = n.account("alice", "phone");
  auto laptop = n.login("alice", "laptop");
  auto tablet = n.login("alice", "tablet");
  auto bob = n.account("bob", "desk");
  ws_client b{n.port};
  auto conv = open_chat(b, bob, "alice", frame_format::binary);
  auto alice_id = user_id_of(n.port, phone);
  ws_client p{n.port};
  REQUIRE(p.call(hello(1, phone), frame_format::json)->has_welcome());
  ws_client l{n.port};
  REQUIRE(l.call(hello(1, laptop), frame_format::binary)->has_welcome());

  // Bob -> Alice: both online devices get it, once.
  REQUIRE(b.call(send_frame(10, conv, "b1", "hi alice"), frame_format::binary)
            ->has_accepted());
  for (auto* c : {&p, &l}) {
    auto m = c->read();
    REQUIRE(m);
    REQUIRE(m->has_message());
    CHECK(m->message().server_sequence() == 1);
    CHECK(m->message().payload() == "hi alice");
  }
  // Alice's phone -> Bob: Bob and Alice's laptop get it, the phone does not.
  REQUIRE(p.call(send_frame(2, conv, "a1", "hi bob"), frame_format::json)
            ->has_accepted());
  for (auto* c : {&b, &l}) {
    auto m = c->read();
    REQUIRE(m);
    REQUIRE(m->has_message());
    CHECK(m->message().server_sequence() == 2);
    CHECK(m->message().sender_user_id() == alice_id);
  }
  CHECK_FALSE(p.read(300));

  // The laptop acknowledges and reads message 1: Bob sees delivered, then
  // read; the phone sees Alice's own read cursor (to clear its unread).
  l.send(receipt_frame(3, conv, 1, false), frame_format::binary);
  auto delivered = read_until(b, [](auto& f) {
    return is_receipt(f, v1::RECEIPT_KIND_DELIVERED, 1);
  });
  REQUIRE(delivered);
  CHECK(delivered->receipt().user_id() == alice_id);
  CHECK(delivered->receipt().conversation_id() == conv);
  l.send(receipt_frame(4, conv, 1, true), frame_format::binary);
  auto read = read_until(b, [](auto& f) {
    return is_receipt(f, v1::RECEIPT_KIND_READ, 1);
  });
  REQUIRE(read);
  CHECK(read->receipt().user_id() == alice_id);
  auto own = read_until(p, [](auto& f) {
    return is_receipt(f, v1::RECEIPT_KIND_READ, 1);
  });
  REQUIRE(own);
  // A read cursor never moves back; receipts past the head are refused.
  l.send(receipt_frame(5, conv, 1, true), frame_format::binary);
  CHECK(error_of(l.call(receipt_frame(6, conv, 9, true), frame_format::binary))
        == v1::Error::CODE_CURSOR_AHEAD);

  // The tablet was offline: its sync has both messages once, Alice's read
  // cursor, and Bob's receipt state.
  ws_client t{n.port};
  REQUIRE(t.call(hello(1, tablet), frame_format::json)->has_welcome());
  auto pages = sync_all(t, {}, 100, frame_format::json, 2);
  REQUIRE(!pages.empty());
  REQUIRE(pages[0].inbox_size() == 1);
  CHECK(pages[0].inbox(0).head_sequence() == 2);
  CHECK(pages[0].inbox(0).read_sequence() == 1);
  // Reading on the laptop cleared the unread count for every device:
  // message 2 is Alice's own, so nothing is unread.
  CHECK(pages[0].inbox(0).unread_count() == 0);
  CHECK(pages[0].total_unread() == 0);
  CHECK(pages[0].inbox(0).latest().sender_user_id() == alice_id);
  std::vector<uint64_t> seqs;
  for (auto& pg : pages)
    for (auto& m : pg.messages())
      seqs.push_back(m.server_sequence());
  CHECK(seqs == std::vector<uint64_t>{1, 2});
  // Bob's sync: Alice's cursors on his message... message 2 is Alice's, so
  // Bob sees her delivered 1 and read 1.
  auto bp = sync_all(b, {{conv, 2}}, 100, frame_format::binary, 50);
  std::map<int, uint64_t> alice_cursors;
  for (auto& r : bp[0].receipts())
    if (r.user_id() == alice_id)
      alice_cursors[r.kind()] = r.up_to_sequence();
  CHECK(alice_cursors[v1::RECEIPT_KIND_DELIVERED] == 1);
  CHECK(alice_cursors[v1::RECEIPT_KIND_READ] == 1);
  // Bob has not read Alice's message.
  CHECK(bp[0].inbox(0).unread_count() == 1);
  CHECK(bp[0].total_unread() == 1);
}

namespace {

/// The inbox of a fresh sync: conversation ids in order, and unread counts
/// (and, if asked, each entry's latest message).
std::pair<std::vector<uint64_t>, std::map<uint64_t, uint64_t>>
inbox_of(uint16_t port, const std::string& token,
         std::map<uint64_t, v1::Message>* latest = nullptr) {
  ws_client c{port};
  REQUIRE(c.call(hello(1, token), frame_format::binary)->has_welcome());
  auto pages = sync_all(c, {}, 100, frame_format::binary, 2);
  std::vector<uint64_t> order;
  std::map<uint64_t, uint64_t> unread;
  for (auto& e : pages.at(0).inbox()) {
    order.push_back(e.conversation_id());
    unread[e.conversation_id()] = e.unread_count();
    if (latest)
      (*latest)[e.conversation_id()] = e.latest();
  }
  return {order, unread};
}

} // namespace

TEST_CASE("the_conversation_list_follows_the_latest_message_across_restarts") {
  node n;
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "phone");
  auto carol = n.account("carol", "phone");
  ws_client b{n.port};
  auto with_bob = open_chat(b, bob, "alice", frame_format::binary);
  ws_client c{n.port};
  auto with_carol = open_chat(c, carol, "alice", frame_format::json);
  // The list is ordered by the latest message's acceptance time (the
  // server's, in milliseconds; the lower conversation id first on a tie).
  // Two sends may share a millisecond, so the expected order comes from
  // the times the server answered, never from the test's clock.
  std::map<uint64_t, int64_t> accepted_at;
  std::map<uint64_t, std::string> last_sent; // server message ids
  auto send = [&](ws_client& from, uint32_t rid, uint64_t conv,
                  const std::string& cmid, frame_format fmt) {
    auto a = from.call(send_frame(rid, conv, cmid, "x"), fmt);
    REQUIRE(a);
    REQUIRE(a->has_accepted());
    accepted_at[conv] = a->accepted().sent_at_ms();
    last_sent[conv] = a->accepted().server_message_id();
  };
  auto by_activity = [&] {
    std::vector<uint64_t> v{with_bob, with_carol};
    std::sort(v.begin(), v.end(), [&](uint64_t x, uint64_t y) {
      if (accepted_at[x] != accepted_at[y])
        return accepted_at[x] > accepted_at[y];
      return x < y;
    });
    return v;
  };
  // Each entry shows its conversation's last message, at the time the
  // server gave it.
  auto check_latest = [&](const std::map<uint64_t, v1::Message>& latest) {
    for (auto conv : {with_bob, with_carol}) {
      CAPTURE(conv);
      REQUIRE(latest.count(conv) == 1);
      CHECK(latest.at(conv).server_message_id() == last_sent[conv]);
      CHECK(latest.at(conv).sent_at_ms() == accepted_at[conv]);
    }
  };
  send(b, 10, with_bob, "b1", frame_format::binary);
  send(c, 10, with_carol, "c1", frame_format::json);
  std::map<uint64_t, v1::Message> latest;
  auto [order, unread] = inbox_of(n.port, alice, &latest);
  CHECK(order == by_activity());
  check_latest(latest);
  send(b, 11, with_bob, "b2", frame_format::binary);
  std::tie(order, unread) = inbox_of(n.port, alice, &latest);
  CHECK(order == by_activity());
  check_latest(latest);
  CHECK(unread[with_bob] == 2);
  CHECK(unread[with_carol] == 1);
  // Pinning puts a conversation first whatever its activity; Alice's other
  // online device is told.
  {
    auto laptop = n.login("alice", "laptop");
    ws_client al{n.port};
    REQUIRE(al.call(hello(1, laptop), frame_format::binary)->has_welcome());
    ws_client a{n.port};
    REQUIRE(a.call(hello(1, alice), frame_format::json)->has_welcome());
    v1::ClientFrame pin;
    pin.set_request_id(2);
    pin.mutable_set_conversation_flags()->set_conversation_id(with_carol);
    pin.mutable_set_conversation_flags()->set_pinned(true);
    auto ans = a.call(pin, frame_format::json);
    REQUIRE(ans);
    REQUIRE(ans->has_inbox_update());
    CHECK(ans->inbox_update().pinned());
    auto pushed = read_until(al, [](auto& f) { return f.has_inbox_update(); });
    REQUIRE(pushed);
    CHECK(pushed->request_id() == 0);
    CHECK(pushed->inbox_update().conversation_id() == with_carol);
    CHECK(pushed->inbox_update().pinned());
    CHECK_FALSE(a.read(300)); // the device that set it only got its answer
    pin.set_request_id(3);
    pin.mutable_set_conversation_flags()->set_conversation_id(999);
    CHECK(error_of(a.call(pin, frame_format::json))
          == v1::Error::CODE_FORBIDDEN);
  }
  std::tie(order, unread) = inbox_of(n.port, alice);
  CHECK(order == std::vector<uint64_t>{with_carol, with_bob});
  // A clean restart, then kill -9 and a restart: same list, same counts.
  for (int sig : {SIGTERM, SIGKILL}) {
    n.stop(sig);
    n.restart();
    std::tie(order, unread) = inbox_of(n.port, alice);
    CHECK(order == std::vector<uint64_t>{with_carol, with_bob});
    CHECK(unread[with_bob] == 2);
    CHECK(unread[with_carol] == 1);
  }
  // The rebuild command recomputes the same projection from the log.
  n.stop(SIGTERM);
  {
    child rebuild(PARLEYD, {"--data", n.dir, "--rebuild-inbox", "all"});
    CHECK(rebuild.wait_for_line("inbox rebuilt users=3 entries=4"));
    auto st = rebuild.wait();
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
    child bad(PARLEYD, {"--data", n.dir, "--rebuild-inbox", "nobody"});
    CHECK(bad.wait_for_line("no such user"));
    CHECK(WEXITSTATUS(bad.wait()) != 0);
  }
  n.restart();
  std::tie(order, unread) = inbox_of(n.port, alice);
  CHECK(order == std::vector<uint64_t>{with_carol, with_bob});
  CHECK(unread[with_bob] == 2);
  CHECK(unread[with_carol] == 1);
}

TEST_CASE("with_read_receipts_off_nobody_sees_read_state_in_a_1_to_1_chat") {
  node n;
  auto alice = n.account("alice", "phone");
  auto alice_laptop = n.login("alice", "laptop");
  auto bob = n.account("bob", "phone");
  auto get = http_call(n.port, "GET", "/v1/settings", {}, alice);
  CHECK(get.status == 200);
  CHECK(get.body == R"({"readReceipts":true})");
  CHECK(http_call(n.port, "PUT", "/v1/settings", "{}", alice).status == 400);
  CHECK(http_call(n.port, "PUT", "/v1/settings", R"({"readReceipts":false})",
                  "bad-token")
          .status
        == 401);
  auto put = http_call(n.port, "PUT", "/v1/settings",
                       R"({"readReceipts":false})", alice);
  CHECK(put.status == 200);
  CHECK(put.body == R"({"readReceipts":false})");

  ws_client b{n.port};
  auto conv = open_chat(b, bob, "alice", frame_format::binary);
  ws_client a{n.port};
  REQUIRE(a.call(hello(1, alice), frame_format::binary)->has_welcome());
  ws_client al{n.port};
  REQUIRE(al.call(hello(1, alice_laptop), frame_format::binary)->has_welcome());
  REQUIRE(b.call(send_frame(10, conv, "b1", "hi"), frame_format::binary)
            ->has_accepted());
  REQUIRE(a.read()->has_message());
  REQUIRE(al.read()->has_message());
  // Alice acknowledges and reads: Bob sees delivered, never read; Alice's
  // laptop still learns her read cursor.
  a.send(receipt_frame(2, conv, 1, false), frame_format::binary);
  a.send(receipt_frame(3, conv, 1, true), frame_format::binary);
  auto own = read_until(al, [](auto& f) {
    return is_receipt(f, v1::RECEIPT_KIND_READ, 1);
  });
  REQUIRE(own);
  REQUIRE(read_until(b, [](auto& f) {
    return is_receipt(f, v1::RECEIPT_KIND_DELIVERED, 1);
  }));
  REQUIRE(b.call(ping(11), frame_format::binary)->has_pong());
  std::vector<v1::ServerFrame> seen;
  while (auto f = b.read(500))
    seen.push_back(*f);
  for (auto& f : seen)
    CHECK_FALSE(f.has_receipt());
  // Bob reads Alice's reply: Alice does not see it either.
  REQUIRE(a.call(send_frame(4, conv, "a1", "hey"), frame_format::binary)
            ->has_accepted());
  REQUIRE(read_until(b, [](auto& f) { return f.has_message(); }));
  b.send(receipt_frame(12, conv, 2, true), frame_format::binary);
  REQUIRE(b.call(ping(13), frame_format::binary)->has_pong());
  seen.clear();
  while (auto f = a.read(500))
    seen.push_back(*f);
  for (auto& f : seen)
    CHECK_FALSE(is_receipt(f, v1::RECEIPT_KIND_READ, 2));
  // Sync agrees: Bob gets Alice's delivered cursor, not her read cursor;
  // Alice gets no read cursor of Bob's.
  auto bp = sync_all(b, {}, 100, frame_format::binary, 20);
  for (auto& r : bp.at(0).receipts())
    CHECK(r.kind() != v1::RECEIPT_KIND_READ);
  bool delivered = false;
  for (auto& r : bp.at(0).receipts())
    delivered |= r.kind() == v1::RECEIPT_KIND_DELIVERED;
  CHECK(delivered);
  auto ap = sync_all(a, {}, 100, frame_format::binary, 20);
  for (auto& r : ap.at(0).receipts())
    CHECK(r.kind() != v1::RECEIPT_KIND_READ);
  // Alice's own read cursor still clears her unread count.
  CHECK(ap.at(0).inbox(0).read_sequence() == 1);
  CHECK(ap.at(0).inbox(0).unread_count() == 0);
}

TEST_CASE("a_new_device_syncs_the_configured_recent_history") {
  node n{{"--parley.sync-recent=3"}};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "phone");
  ws_client b{n.port};
  auto conv = open_chat(b, bob, "alice", frame_format::binary);
  for (uint32_t i = 0; i < 10; ++i)
    REQUIRE(b.call(send_frame(10 + i, conv, "m" + std::to_string(i), "x"),
                   frame_format::binary)
              ->has_accepted());
  auto tablet = n.login("alice", "tablet");
  ws_client t{n.port};
  REQUIRE(t.call(hello(1, tablet), frame_format::json)->has_welcome());
  auto pages = sync_all(t, {}, 100, frame_format::json, 2);
  std::vector<uint64_t> seqs;
  for (auto& p : pages)
    for (auto& m : p.messages())
      seqs.push_back(m.server_sequence());
  CHECK(seqs == std::vector<uint64_t>{8, 9, 10});
  CHECK(pages.at(0).inbox(0).unread_count() == 10);
}
