// parleyd on a data directory from before accounts were partitioned
// (issue 21, item 7), written by hand in key layout 1: the old global user
// id counter at 1000 and a device whose token has no user prefix. The old
// token keeps working (HTTP and WebSocket, across a restart) until its
// device is revoked; new users get ids above 1000 in their usernames'
// partitions, never twice; new tokens name their user. The directory is
// migrated to key layout 3 (the account's record keyed by its id, in
// another partition than its name's entry): the old account logs in, turns
// read receipts off, and once an operator blocks it its logins are refused
// and its token stops working.

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "parley/v1/store.pb.h"
#include "parleyctl_run.hpp"
#include "parleyd_node.hpp"
#include "process.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/leveldb_backend.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;

namespace {

namespace pb = parley::store::v1;

/// A layout-1 key: the table tag, then the fields (u64 big-endian).
std::string v1_key(char tag, std::vector<uint64_t> ids, std::string raw = {}) {
  std::string out(1, tag);
  for (auto x : ids)
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((x >> shift) & 0xFF));
  return out + raw;
}

/// Alice (user 1) with device 1 holding `token` (the old, bare form), and
/// the global counter at 1000.
void write_old_store(const std::string& dir, const std::string& token) {
  auto kv = leveldb_backend::open(dir);
  REQUIRE(kv);
  write_batch b;
  pb::AccountRecord a;
  a.set_user_id(1);
  a.set_password_hash(credentials::hash_password("correct horse", "min"));
  a.set_created_at_ms(1000);
  b.put(v1_key('u', {}, "alice"), a.SerializeAsString());
  b.put(v1_key('v', {1}), "alice");
  pb::Counter counter;
  counter.set_value(1000);
  b.put(v1_key('n', {}, "user"), counter.SerializeAsString());
  pb::DeviceRecord dev;
  dev.set_name("old phone");
  dev.set_token_hash(credentials::token_hash(token));
  dev.set_created_at_ms(1000);
  b.put(v1_key('d', {1, 1}), dev.SerializeAsString());
  pb::TokenRecord tok;
  tok.set_user_id(1);
  tok.set_device_id(1);
  b.put(v1_key('t', {}, credentials::token_hash(token)),
        tok.SerializeAsString());
  REQUIRE_FALSE((*kv)->write(b, true));
}

uint16_t start(child& c) {
  return started_port(c);
}

/// The admin port parleyd logged ("admin listening ... port=N"), or 0.
uint16_t admin_port_of(child& c) {
  static const std::regex admin("admin listening .*port=(\\d+)");
  std::smatch m;
  for (auto& l : c.lines())
    if (std::regex_search(l, m, admin))
      return static_cast<uint16_t>(std::stoi(m[1].str()));
  return 0;
}

/// Registers `name`; returns its user id.
uint64_t enrol(uint16_t port, const std::string& name) {
  auto r = http_call(port, "POST", "/v1/accounts",
                     R"({"username":")" + name
                       + R"(","password":"correct horse"})");
  REQUIRE(r.status == 201);
  return std::stoull(json_field(r.body, "userId"));
}

} // namespace

TEST_CASE("parleyd keeps old tokens and the old user counter working on an "
          "existing data directory") {
  REQUIRE(credentials::init());
  auto dir = (std::filesystem::temp_directory_path()
              / ("parley-accounts-upgrade-" + std::to_string(getpid())))
               .string();
  std::filesystem::remove_all(dir);
  auto old_token = credentials::new_token(1).substr(2); // the bare secret
  REQUIRE(old_token.size() == 43);
  write_old_store(dir, old_token);
  std::vector<std::string> args{
    "--data", dir, "--listen", "127.0.0.1:0", "--parley.password-hash=min"};
  for (auto& a : admin_args())
    args.push_back(a);
  // Alice's name and id are in different partitions: her login and block
  // take two steps, her token and setting one (actors/accounts.hpp).
  CHECK(partition_of(placement_key::username("alice"), 64)
        != partition_of(placement_key::user(1), 64));
  std::set<uint64_t> ids{1};
  auto check_new = [&](uint16_t port, const std::string& name) {
    auto id = enrol(port, name);
    CAPTURE(name);
    CHECK(id > 1000);
    CHECK(ids.insert(id).second);
    CHECK(partition_of(placement_key::user(id), 64)
          == partition_of(placement_key::username(name), 64));
  };
  std::string laptop;
  {
    child c{PARLEYD, args};
    auto port = start(c);
    REQUIRE(port != 0);
    CHECK(c.saw("key layout=3 found=1"));
    CHECK(c.saw("layout migration: done, 1 accounts keyed by id"));
    // The old token, over HTTP and WebSocket.
    CHECK(http_call(port, "GET", "/v1/devices", {}, old_token).status == 200);
    CHECK(user_id_of(port, old_token) == 1);
    for (auto name : {"bob", "carol", "dave", "erin", "frank"})
      check_new(port, name);
    // A new login's token names its user.
    auto r = http_call(port, "POST", "/v1/login",
                       R"({"username":"alice","password":"correct horse",)"
                       R"("deviceName":"laptop"})");
    REQUIRE(r.status == 200);
    laptop = json_field(r.body, "token");
    CHECK(laptop.rfind("1.", 0) == 0);
    CHECK(user_id_of(port, laptop) == 1);
    // Alice's old secret behind another user's id is nobody's token.
    auto other = *std::next(ids.begin());
    CHECK(http_call(port, "GET", "/v1/devices", {},
                    std::to_string(other) + "." + old_token)
            .status
          == 401);
    c.signal(SIGTERM);
    CHECK(exit_code(c.wait(15000)) == 0);
  }
  {
    // After a restart: the old token still works, ids stay unique.
    child c{PARLEYD, args};
    auto port = start(c);
    REQUIRE(port != 0);
    CHECK(user_id_of(port, old_token) == 1);
    for (auto name : {"grace", "heidi", "ivan"})
      check_new(port, name);
    // Revoking the old device refuses its token; the laptop's still works.
    CHECK(http_call(port, "DELETE", "/v1/devices/1", {}, laptop).status
          == 204);
    CHECK(http_call(port, "GET", "/v1/devices", {}, old_token).status == 401);
    CHECK(http_call(port, "GET", "/v1/devices", {}, laptop).status == 200);
    // Her setting: read receipts off, kept.
    auto set = http_call(port, "PUT", "/v1/settings",
                         R"({"readReceipts":false})", laptop);
    CHECK(set.status == 200);
    CHECK(set.body == R"({"readReceipts":false})");
    CHECK(http_call(port, "GET", "/v1/settings", {}, laptop).body
          == R"({"readReceipts":false})");
    // Blocked by the operator (on the admin port), by name: her two
    // partitions' steps; her login is refused, her token too.
    auto admin = admin_port_of(c);
    REQUIRE(admin != 0);
    auto block = http_call(admin, "POST", "/v1/admin/users/alice/block",
                           "{}", test_admin_token);
    CHECK(block.status == 200);
    CHECK(json_field(block.body, "blocked") == "true");
    CHECK(json_field(block.body, "user_id") == "1");
    auto refused = http_call(port, "POST", "/v1/login",
                             R"({"username":"alice","password":"correct horse",)"
                             R"("deviceName":"tablet"})");
    CHECK(refused.status == 403);
    CHECK(http_call(port, "GET", "/v1/devices", {}, laptop).status == 401);
    c.signal(SIGTERM);
    CHECK(exit_code(c.wait(15000)) == 0);
  }
  std::filesystem::remove_all(dir);
}
