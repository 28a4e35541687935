// parleyctl's user and device commands against a real parleyd (issue 23):
// user create (the account logs in, with the given or a generated
// password), user block and unblock (logins refused, the open connection
// closed), device list and user show (created, last seen, online), device
// revoke (the device's connection closes, its token is refused), user
// limit (one user's sends capped, another's not; kept across a restart;
// `off` restores the default), a name or a numeric id, an unknown user,
// and user create while registration is closed.
// Each checks parleyctl's table output and its --json output.

#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "parleyctl_run.hpp"
#include "parleyd_node.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// parleyctl ARGS, expected to succeed.
std::string ok(const node& n, std::vector<std::string> args) {
  auto r = ctl(n, args);
  CAPTURE(r.out);
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  return r.out;
}

/// parleyctl --json ARGS, expected to succeed.
std::string ok_json(const node& n, std::vector<std::string> args) {
  args.insert(args.begin(), "--json");
  return ok(n, args);
}

/// The JSON object of device `dev` in a devices array (empty if absent).
std::string device_row(const std::string& json, uint64_t dev) {
  auto key = "\"device\":" + std::to_string(dev) + ",";
  auto at = json.find(key);
  if (at == std::string::npos)
    return {};
  auto end = json.find('}', at);
  return json.substr(at, end - at + 1);
}

std::string login_body(const std::string& name, const std::string& password,
                       const std::string& device) {
  return R"({"username":")" + name + R"(","password":")" + password
         + R"(","deviceName":")" + device + R"("})";
}

/// Reads until a Disconnect frame or the close; its code (0: none).
uint32_t disconnect_code(ws_client& c) {
  for (int i = 0; i < 1000; ++i) {
    auto f = c.read();
    if (!f)
      return c.close_code();
    if (f->has_disconnect())
      return f->disconnect().code();
  }
  return 0;
}

/// Sends `count` messages on `c` as fast as it answers; counts the
/// RATE_LIMITED refusals (every other answer must be an acceptance).
int refused_of(ws_client& c, uint64_t conv, int count, uint32_t first_rid,
               const std::string& tag) {
  int refused = 0;
  for (int i = 0; i < count; ++i) {
    auto rid = first_rid + static_cast<uint32_t>(i);
    auto r = c.call(send_frame(rid, conv, tag + std::to_string(i), "x"),
                    frame_format::binary);
    REQUIRE(r);
    if (r->has_error()) {
      CHECK(r->error().code() == v1::Error::CODE_RATE_LIMITED);
      ++refused;
    } else {
      CHECK(r->has_accepted());
    }
  }
  return refused;
}

} // namespace

TEST_CASE("parleyctl_user_create_makes_accounts_that_log_in") {
  node n{admin_args()};
  // With a password: the table names the new user.
  auto out = ok(n, {"user", "create", "hana", "a-long-password"});
  CHECK(has(out, "hana"));
  CHECK_FALSE(has(lower(out), "password"));
  CHECK(http_call(n.port, "POST", "/v1/login",
                  login_body("hana", "a-long-password", "phone"))
          .status
        == 200);
  // Without: the node makes one, shows it once, and it works.
  auto js = ok_json(n, {"user", "create", "ivo"});
  auto password = json_field(js, "password");
  CHECK(password.size() >= 16);
  CHECK(json_field(js, "name") == "ivo");
  CHECK(std::stoull(json_field(js, "user_id")) > 0);
  CHECK(http_call(n.port, "POST", "/v1/login",
                  login_body("ivo", password, "phone"))
          .status
        == 200);
  auto other = json_field(ok_json(n, {"user", "create", "jana"}), "password");
  CHECK(other != password);
  // A taken name: refused, exit 1 with a message, nothing changes.
  auto taken = ctl(n, {"user", "create", "hana", "another-password"});
  CHECK(taken.exit_code == 1);
  CHECK(has(lower(taken.err + taken.out), "taken"));
  CHECK(http_call(n.port, "POST", "/v1/login",
                  login_body("hana", "a-long-password", "laptop"))
          .status
        == 200);
  // A name the accounts refuse (upper case): the table's check is the
  // accounts' rule, so parleyctl refuses it before asking (exit 2, naming
  // the rule), and the node refuses the same request (400).
  auto bad = ctl(n, {"user", "create", "Kim"});
  CHECK(bad.exit_code == 2);
  CHECK(has(bad.err + bad.out, "3-32 of a-z"));
  CHECK(http_call(n.admin_port, "POST", "/v1/admin/users",
                  R"({"name":"Kim"})", test_admin_token)
          .status
        == 400);
}

TEST_CASE("parleyctl_user_block_refuses_logins_and_closes_the_connection") {
  node n{admin_args()};
  auto frank = n.account("frank", "phone");
  auto id = user_id_of(n.port, frank);
  ws_client f{n.port};
  REQUIRE(f.call(hello(1, frank), frame_format::binary)->has_welcome());
  // By name, as a table.
  auto out = ok(n, {"user", "block", "frank"});
  CHECK(has(out, "frank"));
  CHECK(has(out, "true"));
  CHECK(disconnect_code(f) == 4007);
  CHECK(http_call(n.port, "POST", "/v1/login",
                  login_body("frank", "correct horse", "x"))
          .status
        == 403);
  ws_client again{n.port};
  auto w = again.call(hello(1, frank), frame_format::binary);
  CHECK((!w || !w->has_welcome()));
  // user show says so, by id.
  auto shown = ok_json(n, {"user", "show", std::to_string(id)});
  CHECK(json_field(shown, "blocked") == "true");
  CHECK(json_field(shown, "name") == "frank");
  // Unblocked by numeric id, as JSON: frank logs in again.
  auto js = ok_json(n, {"user", "unblock", std::to_string(id)});
  CHECK(json_field(js, "blocked") == "false");
  CHECK(json_field(js, "user_id") == std::to_string(id));
  CHECK(json_field(js, "name") == "frank");
  CHECK(http_call(n.port, "POST", "/v1/login",
                  login_body("frank", "correct horse", "y"))
          .status
        == 200);
  // An unknown user: exit 1 with a message.
  for (std::string who : {"nobody", "999999"}) {
    auto r = ctl(n, {"user", "block", who});
    CAPTURE(who);
    CHECK(r.exit_code == 1);
    CHECK(has(lower(r.err + r.out), "no such user"));
  }
}

TEST_CASE("parleyctl_device_list_shows_devices_and_device_revoke_closes_one") {
  node n{admin_args()};
  auto phone = n.account("gus", "phone");
  auto laptop = n.login("gus", "laptop"); // never connects
  auto id = user_id_of(n.port, phone);    // connects and goes: seen
  ws_client p{n.port};
  REQUIRE(p.call(hello(1, phone), frame_format::binary)->has_welcome());
  // Device 1 (phone) holds a connection; device 2 (laptop) never had one.
  // Its last seen is written just after it attached: ask until it shows.
  std::string js;
  for (int i = 0; i < 50; ++i) {
    js = ok_json(n, {"device", "list", "gus"});
    auto row = device_row(js, 1);
    if (!row.empty() && json_field(row, "last_seen_ms") != "0")
      break;
  }
  CAPTURE(js);
  CHECK(json_field(js, "user_id") == std::to_string(id));
  auto row1 = device_row(js, 1);
  auto row2 = device_row(js, 2);
  REQUIRE_FALSE(row1.empty());
  REQUIRE_FALSE(row2.empty());
  CHECK(json_field(row1, "name") == "phone");
  CHECK(json_field(row1, "online") == "true");
  CHECK(json_field(row1, "revoked") == "false");
  CHECK(std::stoll(json_field(row1, "created_ms")) > 0);
  CHECK(std::stoll(json_field(row1, "last_seen_ms")) > 0);
  CHECK(json_field(row2, "name") == "laptop");
  CHECK(json_field(row2, "online") == "false");
  CHECK(json_field(row2, "last_seen_ms") == "0");
  // user show (by id, as a table): the devices, the limit, blocked.
  auto table = ok(n, {"user", "show", std::to_string(id)});
  CHECK(has(table, "gus"));
  CHECK(has(table, "phone"));
  CHECK(has(table, "laptop"));
  CHECK(has(table, "default"));
  CHECK(has(lower(table), "last"));
  auto listed = ok(n, {"device", "list", "gus"});
  CHECK(has(listed, "phone"));
  CHECK(has(listed, "laptop"));
  // Revoking the phone closes its connection; its token is refused, the
  // laptop's still works.
  auto out = ok(n, {"device", "revoke", "gus", "1"});
  CHECK(has(out, "true"));
  CHECK(disconnect_code(p) == 4004);
  CHECK(http_call(n.port, "GET", "/v1/devices", {}, phone).status == 401);
  CHECK(http_call(n.port, "GET", "/v1/devices", {}, laptop).status == 200);
  js = ok_json(n, {"device", "list", std::to_string(id)});
  CHECK(json_field(device_row(js, 1), "revoked") == "true");
  CHECK(json_field(device_row(js, 1), "online") == "false");
  // Revoked again, or a device gus never had: 404, exit 1.
  for (std::string dev : {"1", "7"}) {
    auto r = ctl(n, {"device", "revoke", "gus", dev});
    CAPTURE(dev);
    CHECK(r.exit_code == 1);
    CHECK(has(lower(r.err + r.out), "no active device"));
  }
  auto r = ctl(n, {"device", "list", "nobody"});
  CHECK(r.exit_code == 1);
  CHECK(has(lower(r.err + r.out), "no such user"));
}

TEST_CASE("parleyctl_user_limit_caps_one_users_sends_and_is_kept") {
  node n{admin_args()};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "phone");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::binary);
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  REQUIRE(b.call(open_direct(2, "alice"), frame_format::binary)
            ->has_direct_opened());
  // Under the node's default both send 10 at once.
  CHECK(refused_of(a, conv, 10, 100, "a0-") == 0);
  // 2/s for alice: her open connection is told at once.
  auto out = ok(n, {"user", "limit", "alice", "send", "2/s"});
  CHECK(has(out, "2/s"));
  CHECK(refused_of(a, conv, 10, 200, "a1-") > 0);
  CHECK(refused_of(b, conv, 10, 300, "b1-") == 0);
  CHECK(json_field(ok_json(n, {"user", "show", "alice"}), "send_limit")
        == "2/s");
  // Kept with the account: after a restart her new connection has it.
  n.restart();
  REQUIRE(n.admin_port != 0);
  CHECK(json_field(ok_json(n, {"user", "show", "alice"}), "send_limit")
        == "2/s");
  ws_client a2{n.port};
  REQUIRE(a2.call(hello(1, alice), frame_format::binary)->has_welcome());
  CHECK(refused_of(a2, conv, 10, 400, "a2-") > 0);
  ws_client b2{n.port};
  REQUIRE(b2.call(hello(1, bob), frame_format::binary)->has_welcome());
  CHECK(refused_of(b2, conv, 10, 500, "b2-") == 0);
  // off: back to the default, on the open connection too.
  auto js = ok_json(n, {"user", "limit", "alice", "send", "off"});
  CHECK(json_field(js, "send_limit") == "default");
  CHECK(json_field(js, "name") == "alice");
  CHECK(refused_of(a2, conv, 10, 600, "a3-") == 0);
  // A bad rate: refused by the parser (a usage error), naming the rate.
  auto bad = ctl(n, {"user", "limit", "alice", "send", "fast"});
  CHECK(bad.exit_code != 0);
  CHECK(has(lower(bad.err), "rate"));
  CHECK(ctl(n, {"user", "limit", "nobody", "send", "5/s"}).exit_code == 1);
}

TEST_CASE("parleyctl_user_create_works_while_registration_is_closed") {
  auto args = admin_args();
  args.push_back("--parley.registration-closed");
  node n{args};
  // Sign-ups over the client port are refused...
  CHECK(http_call(n.port, "POST", "/v1/accounts",
                  R"({"username":"lena","password":"correct horse"})")
          .status
        == 403);
  // ...the operator still creates accounts, which log in.
  auto js = ok_json(n, {"user", "create", "lena", "correct horse"});
  CHECK(json_field(js, "name") == "lena");
  CHECK(json_field(js, "password").empty()); // given, not shown
  CHECK(http_call(n.port, "POST", "/v1/login",
                  login_body("lena", "correct horse", "phone"))
          .status
        == 200);
}
