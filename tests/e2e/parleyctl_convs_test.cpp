// parleyctl's conversation commands against a real parleyd (issue 23):
// conv show reports the head and the cursors a client just set, conv tail
// lists the last messages' metadata (never a payload); an unknown
// conversation is an error. Each command is run twice: as a table and with
// --json. inbox rebuild: parleyctl_inbox_test.cpp.

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "parleyctl_output.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

namespace {

/// Checks `conv show CONV` (JSON and table) against what the test set:
/// the kind, head and dispatched watermark, and each member's
/// (delivered, read) cursors and name.
void check_show(const node& n, uint64_t conv, const std::string& kind,
                uint64_t head,
                const std::map<uint64_t, std::pair<int, int>>& expect,
                const std::map<uint64_t, std::string>& names) {
  auto id = std::to_string(conv);
  auto js = ok(n, {"--json", "conv", "show", id}).out;
  INFO(js);
  auto j = parse_json(js);
  CHECK(js.find("\"conversation\":" + id + ",") != std::string::npos);
  CHECK(str(j, "kind") == kind);
  CHECK(num(j, "head") == head);
  CHECK(num(j, "dispatched") == head);
  CHECK(num(j, "owner") == 1);
  CHECK(num(j, "member_count") == expect.size());
  CHECK(num(j, "members_listed") == expect.size());
  std::map<uint64_t, std::pair<int, int>> got;
  std::map<uint64_t, std::string> got_names;
  for (auto& m : list(j, "members").values()) {
    auto& o = m.struct_value();
    auto user = static_cast<uint64_t>(num(o, "user"));
    got[user] = {int(num(o, "delivered")), int(num(o, "read"))};
    got_names[user] = str(o, "name");
  }
  CHECK(got == expect);
  CHECK(got_names == names);

  auto t = ok(n, {"conv", "show", id}).out;
  INFO(t);
  CHECK(table_value(t, "head") == std::to_string(head));
  CHECK(table_value(t, "dispatched") == std::to_string(head));
  CHECK(table_value(t, "kind") == kind);
  std::map<uint64_t, std::pair<int, int>> rows;
  std::map<uint64_t, std::string> row_names;
  for (auto& r : table_rows(t, {"user", "name", "delivered", "read"})) {
    rows[std::stoull(r["user"])] = {std::stoi(r["delivered"]),
                                    std::stoi(r["read"])};
    row_names[std::stoull(r["user"])] = r["name"];
  }
  CHECK(rows == expect);
  CHECK(row_names == names);
}

} // namespace

// A direct chat: its id has the top bit set (2^63 and up).
TEST_CASE("conv_show_reports_the_head_and_the_cursors_a_client_just_set") {
  node n{admin_args()};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "desk");
  auto alice_id = user_id_of(n.port, alice);
  auto bob_id = user_id_of(n.port, bob);
  ws_client b{n.port};
  auto conv = open_chat(b, bob, "alice", frame_format::binary);
  ws_client a{n.port};
  REQUIRE(a.call(hello(1, alice), frame_format::binary)->has_welcome());
  for (int i = 1; i <= 4; ++i)
    REQUIRE(b.call(send_frame(10 + i, conv, "m" + std::to_string(i), "hello"),
                   frame_format::binary)
              ->has_accepted());
  std::map<uint64_t, std::string> names{{alice_id, "alice"},
                                        {bob_id, "bob"}};
  check_show(n, conv, "direct", 4, {{alice_id, {0, 0}}, {bob_id, {0, 0}}},
             names);
  // Alice has 3 on a device and has read 2; Bob hears both (the cursors
  // are written before they are pushed).
  a.send(receipt_frame(2, conv, 3, false), frame_format::binary);
  REQUIRE(read_until(b, [](auto& f) {
    return is_receipt(f, v1::RECEIPT_KIND_DELIVERED, 3);
  }));
  a.send(receipt_frame(3, conv, 2, true), frame_format::binary);
  REQUIRE(read_until(b, [](auto& f) {
    return is_receipt(f, v1::RECEIPT_KIND_READ, 2);
  }));
  check_show(n, conv, "direct", 4, {{alice_id, {3, 2}}, {bob_id, {0, 0}}},
             names);
}

TEST_CASE("conv_show_of_a_group_reports_each_members_cursors") {
  node n{admin_args()};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "desk");
  auto carol = n.account("carol", "tablet");
  std::map<std::string, uint64_t> id;
  for (auto& [name, token] :
       {std::pair{"alice", alice}, {"bob", bob}, {"carol", carol}})
    id[name] = user_id_of(n.port, token);
  ws_client a{n.port}, b{n.port}, c{n.port};
  REQUIRE(a.call(hello(1, alice), frame_format::binary)->has_welcome());
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  REQUIRE(c.call(hello(1, carol), frame_format::binary)->has_welcome());
  auto g = a.call(group_frame(2, "team", {"bob", "carol"}),
                  frame_format::binary);
  REQUIRE(g);
  REQUIRE_MESSAGE(g->has_accepted(), g->DebugString());
  auto conv = g->accepted().conversation_id();
  // 1: the CREATED event; 2-6: Alice's messages.
  for (int i = 1; i <= 5; ++i)
    REQUIRE(a.call(send_frame(10 + i, conv, "m" + std::to_string(i), "hey"),
                   frame_format::binary)
              ->has_accepted());
  // Bob has read 4, then 6 delivered; Carol has read 6 (a read moves the
  // delivered cursor too). Alice, the sender, hears the aggregates for
  // her latest message (6) once the cursors are written: delivered by 1
  // (Bob's, after his read: one connection, in order), then by 2 and
  // read by 1 (Carol's).
  auto aggregate = [&](uint32_t delivered, uint32_t read) {
    return read_until(a, [=](const v1::ServerFrame& f) {
      return f.has_receipt() && f.receipt().up_to_sequence() == 6
             && f.receipt().delivered_count() == delivered
             && f.receipt().read_count() == read;
    });
  };
  b.send(receipt_frame(3, conv, 4, true), frame_format::binary);
  b.send(receipt_frame(4, conv, 6, false), frame_format::binary);
  REQUIRE(aggregate(1, 0));
  c.send(receipt_frame(3, conv, 6, true), frame_format::binary);
  REQUIRE(aggregate(2, 1));
  std::map<uint64_t, std::pair<int, int>> expect{{id["alice"], {0, 0}},
                                                 {id["bob"], {6, 4}},
                                                 {id["carol"], {6, 6}}};
  check_show(n, conv, "group", 6, expect,
             {{id["alice"], "alice"},
              {id["bob"], "bob"},
              {id["carol"], "carol"}});
}

TEST_CASE("conv_tail_lists_the_last_messages_in_order_without_payloads") {
  node n{admin_args()};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "desk");
  auto bob_id = user_id_of(n.port, bob);
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  auto g = b.call(group_frame(2, "pair", {"alice"}), frame_format::binary);
  REQUIRE(g);
  REQUIRE_MESSAGE(g->has_accepted(), g->DebugString());
  auto conv = g->accepted().conversation_id();
  // Messages 2-6 of 22, 33, ... 66 bytes, each holding a marker.
  for (int seq = 2; seq <= 6; ++seq) {
    auto payload = "SECRET-" + std::to_string(seq);
    payload.resize(size_t(11 * seq), 'x');
    REQUIRE(b.call(send_frame(10 + seq, conv, "cm-" + std::to_string(seq),
                              payload),
                   frame_format::binary)
              ->has_accepted());
  }
  auto id = std::to_string(conv);
  auto js = ok(n, {"--json", "conv", "tail", id, "3"}).out;
  INFO(js);
  CHECK(js.find("SECRET") == std::string::npos);
  CHECK(js.find("\"conversation\":" + id + ",") != std::string::npos);
  auto j = parse_json(js);
  auto& msgs = list(j, "messages").values();
  REQUIRE(msgs.size() == 3);
  for (int k = 0; k < 3; ++k) {
    auto& m = msgs[k].struct_value();
    auto seq = 4 + k;
    CHECK(num(m, "seq") == seq);
    CHECK(num(m, "payload_bytes") == 11 * seq);
    CHECK(num(m, "sender") == bob_id);
    CHECK(num(m, "device") > 0);
    CHECK(str(m, "kind") == "text");
    CHECK(str(m, "client_message_id") == "cm-" + std::to_string(seq));
    CHECK(num(m, "sent_ms") > 0);
  }
  // More than there are: all six, the CREATED event first.
  auto all = parse_json(ok(n, {"--json", "conv", "tail", id, "10"}).out);
  REQUIRE(list(all, "messages").values_size() == 6);
  CHECK(str(list(all, "messages").values(0).struct_value(), "kind")
        == "membership");

  auto t = ok(n, {"conv", "tail", id, "3"}).out;
  INFO(t);
  CHECK(t.find("SECRET") == std::string::npos);
  auto rows = table_rows(t, {"seq", "sender", "client_message_id"});
  REQUIRE(rows.size() == 3);
  for (int k = 0; k < 3; ++k) {
    CHECK(rows[k]["seq"] == std::to_string(4 + k));
    CHECK(rows[k]["payload_bytes"] == std::to_string(11 * (4 + k)) + " B");
    CHECK(rows[k]["sender"] == std::to_string(bob_id));
    CHECK(rows[k]["client_message_id"] == "cm-" + std::to_string(4 + k));
  }
  (void)alice;
}

TEST_CASE("conv_commands_on_an_unknown_conversation_exit_1_with_a_message") {
  node n{admin_args()};
  for (auto json : {false, true}) {
    std::vector<std::string> show{"conv", "show", "777"};
    std::vector<std::string> tail{"conv", "tail", "777", "5"};
    if (json) {
      show.insert(show.begin(), "--json");
      tail.insert(tail.begin(), "--json");
    }
    for (auto& args : {show, tail}) {
      auto r = ctl(n, args);
      INFO("stdout: " << r.out << " stderr: " << r.err);
      CHECK(r.exit_code == 1);
      CHECK(r.err.find("777") != std::string::npos);
      CHECK(r.err.find("not found") != std::string::npos);
    }
  }
}
