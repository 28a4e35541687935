// parleyd migrates a data directory of key layout 1 (written here by hand,
// keys without the 'P' slot prefix) at startup, through layout 2 to the
// newest (3: accounts keyed by user id): the account in it logs in
// and syncs its old messages. A directory of a layout newer than the
// binary, or one with a truncated key, stops parleyd with exit code 1 and
// a message saying why.

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "parley/v1/store.pb.h"
#include "parleyd_node.hpp"
#include "process.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/store/leveldb_backend.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using namespace std::string_literals;

namespace {

namespace pb = parley::store::v1;

std::string temp_dir(const std::string& what) {
  auto dir = (std::filesystem::temp_directory_path()
              / ("parley-layout-" + what + "-" + std::to_string(getpid())))
               .string();
  std::filesystem::remove_all(dir);
  return dir;
}

/// Layout 1's key encoding: the table tag, then the fields, integers as 8
/// big-endian bytes (keys.hpp before issue 21).
struct v1_key {
  std::string bytes;
  explicit v1_key(char tag) : bytes(1, tag) {
  }
  v1_key& u64(uint64_t x) {
    for (int shift = 56; shift >= 0; shift -= 8)
      bytes.push_back(static_cast<char>((x >> shift) & 0xFF));
    return *this;
  }
  v1_key& raw(const std::string& s) {
    bytes += s;
    return *this;
  }
};

/// Writes `records` (layout-1 keys) into a new LevelDB at `dir`.
void write_store(const std::string& dir,
                 const std::vector<std::pair<std::string, std::string>>& recs) {
  auto kv = leveldb_backend::open(dir);
  REQUIRE(kv);
  write_batch b;
  for (auto& [k, v] : recs)
    b.put(k, v);
  REQUIRE_FALSE((*kv)->write(b, true));
}

/// A data directory of layout 1: users alice (1) and bob (2), their direct
/// conversation 7 with three messages, a read cursor, the user counter.
void write_layout_1(const std::string& dir) {
  REQUIRE(credentials::init());
  std::vector<std::pair<std::string, std::string>> recs;
  uint64_t uid = 1;
  for (std::string name : {"alice", "bob"}) {
    pb::AccountRecord a;
    a.set_user_id(uid);
    a.set_password_hash(credentials::hash_password("correct horse", "min"));
    a.set_created_at_ms(1000);
    recs.emplace_back(v1_key('u').raw(name).bytes, a.SerializeAsString());
    recs.emplace_back(v1_key('v').u64(uid).bytes, name);
    ++uid;
  }
  pb::Counter counter;
  counter.set_value(2);
  recs.emplace_back(v1_key('n').raw("user").bytes, counter.SerializeAsString());
  const uint64_t conv = 7;
  pb::ConversationRecord c;
  c.set_kind(pb::ConversationRecord::KIND_DIRECT);
  c.set_created_at_ms(1000);
  recs.emplace_back(v1_key('c').u64(conv).bytes, c.SerializeAsString());
  pb::MemberRecord m;
  m.set_role(pb::MemberRecord::ROLE_MEMBER);
  m.set_joined_at_sequence(1);
  for (uint64_t u : {1, 2}) {
    recs.emplace_back(v1_key('b').u64(conv).u64(u).bytes, m.SerializeAsString());
    recs.emplace_back(v1_key('y').u64(u).u64(conv).bytes, m.SerializeAsString());
  }
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    pb::MessageRecord msg;
    msg.set_sender_user_id(seq == 2 ? 1 : 2);
    msg.set_sender_device_id(1);
    msg.set_client_message_id("old-" + std::to_string(seq));
    msg.set_sent_at_ms(2000 + seq);
    msg.set_kind(parley::v1::MESSAGE_KIND_TEXT);
    msg.set_payload("from layout 1, message " + std::to_string(seq));
    recs.emplace_back(v1_key('m').u64(conv).u64(seq).bytes,
                      msg.SerializeAsString());
  }
  pb::OutboxWatermark wm;
  wm.set_dispatched_sequence(3);
  recs.emplace_back(v1_key('o').u64(conv).bytes, wm.SerializeAsString());
  std::string read_cursor = v1_key('x').u64(1).bytes.substr(1); // be(1)
  recs.emplace_back(v1_key('s').u64(conv).u64(1).raw("\x02"s).bytes,
                    read_cursor);
  write_store(dir, recs);
}

/// Starts parleyd on `dir`; returns its port once it has started (0 if it
/// did not).
uint16_t start(child& c) {
  return started_port(c);
}

std::vector<std::string> args_for(const std::string& dir) {
  return {"--data", dir, "--listen", "127.0.0.1:0",
          "--parley.password-hash=min"};
}

} // namespace

TEST_CASE("parleyd migrates a layout-1 data directory: the old account logs "
          "in and syncs its old messages") {
  auto dir = temp_dir("v1");
  write_layout_1(dir);
  {
    child c{PARLEYD, args_for(dir)};
    auto port = start(c);
    REQUIRE(port != 0);
    CHECK(c.saw("layout migration: from layout 1 to 2"));
    CHECK(c.saw("layout migration: done, 15 keys moved"));
    // Then on to 3: alice's and bob's records keyed by their ids.
    CHECK(c.saw("layout migration: from layout 2 to 3"));
    CHECK(c.saw("layout migration: done, 2 accounts keyed by id"));
    CHECK(c.saw("key layout=3 found=1 moved=15"));
    auto r = http_call(port, "POST", "/v1/login",
                       R"({"username":"alice","password":"correct horse",)"
                       R"("deviceName":"laptop"})");
    REQUIRE(r.status == 200);
    auto token = json_field(r.body, "token");
    REQUIRE_FALSE(token.empty());
    CHECK(user_id_of(port, token) == 1);
    ws_client ws{port};
    auto w = ws.call(hello(1, token), gateway::frame_format::binary);
    REQUIRE(w);
    REQUIRE(w->has_welcome());
    auto pages = sync_all(ws, {}, 100, gateway::frame_format::binary, 2);
    std::vector<std::string> payloads;
    uint64_t unread = 0;
    for (auto& p : pages) {
      for (auto& m : p.messages())
        if (m.conversation_id() == 7)
          payloads.push_back(m.payload());
      for (auto& e : p.inbox())
        if (e.conversation_id() == 7)
          unread = e.unread_count();
    }
    CHECK(payloads == std::vector<std::string>{"from layout 1, message 1",
                                               "from layout 1, message 2",
                                               "from layout 1, message 3"});
    CHECK(unread == 1); // bob's message 3 after alice's read cursor at 1
    c.signal(SIGTERM);
    CHECK(exit_code(c.wait(15000)) == 0);
  }
  // A second start finds layout 3 and moves nothing.
  {
    child c{PARLEYD, args_for(dir)};
    REQUIRE(start(c) != 0);
    CHECK(c.saw("key layout=3 found=3 moved=0"));
    CHECK_FALSE(c.saw("layout migration"));
    c.signal(SIGTERM);
    CHECK(exit_code(c.wait(15000)) == 0);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("parleyd refuses a data directory of a newer key layout") {
  auto dir = temp_dir("v99");
  std::string v99(7, '\0');
  v99.push_back(99);
  write_store(dir, {{"zlayout", v99}});
  child c{PARLEYD, args_for(dir)};
  CHECK(exit_code(c.wait(15000)) == 1);
  CHECK(c.saw("key layout is version 99; this binary supports layouts up "
              "to 3"));
  CHECK_FALSE(c.saw("node started"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("parleyd refuses a layout-1 directory with a truncated key") {
  auto dir = temp_dir("garbage");
  write_store(dir, {{v1_key('m').u64(7).raw("\x01\x02"s).bytes, "x"},
                    {v1_key('c').u64(7).bytes, ""}});
  child c{PARLEYD, args_for(dir)};
  CHECK(exit_code(c.wait(15000)) == 1);
  CHECK(c.saw("table 'm' (messages) keys are 17 bytes, this one is 11"));
  CHECK_FALSE(c.saw("node started"));
  std::filesystem::remove_all(dir);
}
