// parleyctl's user commands on a three-node cluster (issue 23): a user's
// account lives on the owner of the user's partition, the operator asks
// any node, and the user's connections are on yet another: `user limit`
// asked of one non-owner caps the user's sends on a connection already
// open on the other non-owner (pushed through the accounts actors) and on
// a new one (with the principal), never another user's; `user show` and
// `device list` answer the same from every node (online from the device's
// actor at the owner); `user block` closes the user's connections on
// every node; with the owner frozen, the node asked answers 503 (retry).

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cluster_clients.hpp"
#include "cluster_fixture.hpp"
#include "cluster_load.hpp"
#include "parleyctl_run.hpp"

using namespace parley;
using namespace parley::e2e;

namespace {

/// parleyctl --json ARGS at node `n`'s admin port (expected to succeed).
std::string ctl_json(test_cluster& c, node_id n,
                     std::vector<std::string> args) {
  auto port = admin_port(c.at(n));
  REQUIRE_MESSAGE(port != 0, "node " << n << " logged no admin port");
  std::vector<std::string> all{"--node", "127.0.0.1:" + std::to_string(port),
                               "--token", test_admin_token, "--json"};
  all.insert(all.end(), args.begin(), args.end());
  auto r = run_parleyctl(all, {}, 60000);
  CAPTURE(r.out);
  CAPTURE(r.err);
  CHECK(r.exit_code == 0);
  return r.out;
}

/// Sends `count` messages as fast as they are answered; the RATE_LIMITED
/// refusals (anything else must be accepted).
int refused_of(device& d, uint64_t conv, int count, const std::string& tag) {
  int refused = 0;
  for (int i = 0; i < count; ++i) {
    auto a = d.call(text(conv, tag + std::to_string(i), "x"));
    REQUIRE(a);
    if (a->has_error()) {
      CHECK(a->error().code() == v1::Error::CODE_RATE_LIMITED);
      ++refused;
    } else {
      CHECK(a->has_accepted());
    }
  }
  return refused;
}

/// Reads until a Disconnect frame or the close; its code (0: none).
uint32_t disconnect_code(device& d) {
  for (int i = 0; i < 1000; ++i) {
    auto f = d.ws->read();
    if (!f)
      return d.ws->close_code();
    if (f->has_disconnect())
      return f->disconnect().code();
  }
  return 0;
}

} // namespace

TEST_CASE("cluster_user_limit_and_block_asked_of_any_node_hold_on_every_node") {
  cluster_options opts;
  opts.extra = admin_args();
  test_cluster c{opts};
  auto alice = register_user(c.port(1), "alice", "phone");
  auto bob = register_user(c.port(1), "bob", "phone");
  node_id owner = c.owner_of_user(alice.id);
  // The operator asks `via`, alice connects to `conn`: neither owns her.
  std::vector<node_id> others;
  for (node_id n = 1; n <= 3; ++n)
    if (n != owner)
      others.push_back(n);
  REQUIRE(others.size() == 2);
  node_id via = others[0];
  node_id conn = others[1];
  CAPTURE(owner);
  CAPTURE(via);
  CAPTURE(conn);
  device a;
  a.connect(c.port(conn), alice.token);
  auto opened = a.call(direct("bob"));
  REQUIRE(opened);
  REQUIRE(opened->has_direct_opened());
  auto chat = opened->direct_opened().conversation_id();
  device b;
  b.connect(c.port(conn), bob.token);
  CHECK(refused_of(a, chat, 10, "a0-") == 0);
  // 2/s asked of a non-owner: alice's open connection on the other
  // non-owner has it from her next send; bob's on the same node not.
  auto js = ctl_json(c, via, {"user", "limit", "alice", "send", "2/s"});
  CHECK(json_field(js, "send_limit") == "2/s");
  CHECK(refused_of(a, chat, 10, "a1-") > 0);
  CHECK(refused_of(b, chat, 10, "b1-") == 0);
  // A new connection (another device) on the asking node gets it with her
  // principal.
  auto laptop = login_device(c.port(via), "alice", "laptop");
  device a2;
  a2.connect(c.port(via), laptop);
  CHECK(refused_of(a2, chat, 10, "a2-") > 0);
  // Every node shows the same account, by name or by id; both devices
  // online (their actors are at the owner).
  for (node_id n = 1; n <= 3; ++n) {
    CAPTURE(n);
    auto shown = ctl_json(c, n, {"user", "show", std::to_string(alice.id)});
    CHECK(json_field(shown, "name") == "alice");
    CHECK(json_field(shown, "send_limit") == "2/s");
    CHECK(json_field(shown, "blocked") == "false");
    auto listed = ctl_json(c, n, {"device", "list", "alice"});
    CHECK(listed.find(R"("device":1,"name":"phone")") != std::string::npos);
    CHECK(listed.find(R"("device":2,"name":"laptop")") != std::string::npos);
    CHECK(listed.find(R"("online":false)") == std::string::npos);
  }
  // off, asked of the owner: both open connections are back to the
  // default at once.
  js = ctl_json(c, owner, {"user", "limit", "alice", "send", "off"});
  CHECK(json_field(js, "send_limit") == "default");
  CHECK(refused_of(a, chat, 10, "a3-") == 0);
  CHECK(refused_of(a2, chat, 10, "a4-") == 0);
  // Blocked through the node of one connection: both close, on both
  // nodes; bob's stays.
  js = ctl_json(c, conn, {"user", "block", "alice"});
  CHECK(json_field(js, "blocked") == "true");
  CHECK(disconnect_code(a) == 4007);
  CHECK(disconnect_code(a2) == 4007);
  auto pong = b.call(ping(0));
  REQUIRE(pong);
  CHECK(pong->has_pong());
  // The owner frozen: a node asked answers in time that it got no answer
  // (503, retry), parleyctl says so and fails.
  c.freeze(owner);
  auto port = admin_port(c.at(via));
  auto r = run_parleyctl({"--node", "127.0.0.1:" + std::to_string(port),
                          "--token", test_admin_token, "user", "show",
                          "alice"},
                         {}, 60000);
  c.thaw(owner);
  CAPTURE(r.out);
  CAPTURE(r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("no answer in time") != std::string::npos);
  CHECK(r.err.find("retry") != std::string::npos);
}
