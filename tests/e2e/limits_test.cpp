// Rate limits through a real parleyd: a device flooding is refused with
// RATE_LIMITED and retry_after_ms while another user's messages flow, and
// nothing refused is delivered; logins and WebSocket connects per address
// are refused with 429 and Retry-After; an operator blocks a user.

#include <doctest/doctest.h>

#include <chrono>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "parleyctl_run.hpp"
#include "parleyd_node.hpp"
#include "ws_client.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

TEST_CASE("a_flooding_device_is_rate_limited_while_others_flow") {
  node n{{"--parley.limit-send-device=20/s,20",
          "--parley.limit-send-user=1000/s,1000"}};
  auto alice = n.account("alice", "phone");
  n.account("bob", "laptop");
  auto carol = n.account("carol", "phone");
  auto dave = n.account("dave", "phone");
  auto bob = n.login("bob", "tablet");
  ws_client a{n.port};
  auto ab = open_chat(a, alice, "bob", frame_format::binary);
  ws_client c{n.port};
  auto cd = open_chat(c, carol, "dave", frame_format::binary);
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::binary)->has_welcome());
  ws_client d{n.port};
  REQUIRE(d.call(hello(1, dave), frame_format::binary)->has_welcome());

  // One send first: the flood then takes the direct path (I/O thread to
  // conversation), whose rate limits are the actor path's.
  REQUIRE(a.call(send_frame(99, ab, "warm", "w"), frame_format::binary)
            ->has_accepted());
  // Alice floods 200 sends at once; Carol sends 10 in the middle of it.
  const int flood = 200;
  for (int i = 0; i < flood; ++i) {
    a.send(send_frame(100 + i, ab, "f" + std::to_string(i), "flood"),
           frame_format::binary);
    if (i == flood / 2)
      for (int j = 0; j < 10; ++j)
        c.send(send_frame(10 + j, cd, "c" + std::to_string(j), "normal"),
               frame_format::binary);
  }
  std::set<std::string> accepted;
  int limited = 0;
  uint32_t min_wait = 0; // the soonest advised retry, and its message
  std::string retry;
  for (int i = 0; i < flood; ++i) {
    auto f = a.read();
    REQUIRE(f);
    if (f->has_accepted()) {
      accepted.insert(f->accepted().client_message_id());
    } else {
      REQUIRE(f->has_error());
      CHECK(f->error().code() == v1::Error::CODE_RATE_LIMITED);
      CHECK(f->error().retryable());
      CHECK(f->error().retry_after_ms() > 0);
      // Spread over the drain of the refusals at 20/s (50 ms each).
      CHECK(f->error().retry_after_ms() <= 50 * (flood + 2));
      if (min_wait == 0 || f->error().retry_after_ms() < min_wait) {
        min_wait = f->error().retry_after_ms();
        retry = "f" + std::to_string(f->request_id() - 100);
      }
      ++limited;
    }
  }
  MESSAGE(accepted.size() << " accepted, " << limited << " rate limited");
  CHECK(accepted.size() >= 19); // the warm-up took one of the 20
  CHECK(accepted.size() < 100); // 20 at once, then 20/s while it lasts
  CHECK(limited == flood - int(accepted.size()));
  accepted.insert("warm");
  // Carol was not held back by Alice's flood: all ten accepted, delivered.
  for (int j = 0; j < 10; ++j) {
    auto f = c.read();
    REQUIRE(f);
    CHECK(f->has_accepted());
  }
  for (int j = 0; j < 10; ++j) {
    auto f = d.read();
    REQUIRE(f);
    REQUIRE(f->has_message());
    CHECK(f->message().server_sequence() == uint64_t(j + 1));
  }
  // Bob got exactly the accepted messages, none of the refused ones.
  std::set<std::string> got;
  while (auto f = b.read(500))
    if (f->has_message())
      got.insert(f->message().client_message_id());
  CHECK(got == accepted);
  // After the advised wait, a refused send goes through.
  std::this_thread::sleep_for(std::chrono::milliseconds(min_wait + 100));
  REQUIRE(!retry.empty());
  REQUIRE(!accepted.count(retry));
  auto again = a.call(send_frame(999, ab, retry, "flood"), frame_format::binary);
  REQUIRE(again);
  CHECK(again->has_accepted());
}

TEST_CASE("logins_and_connects_per_address_are_limited_with_429") {
  node n{{"--parley.limit-login-ip=4/min,4",
          "--parley.limit-connect-ip=3/min,3"}};
  auto token = n.account("erin", "phone"); // sign-up + login: 2 of 4
  n.login("erin", "laptop");               // 3
  n.login("erin", "tablet");               // 4
  auto r = http_call(n.port, "POST", "/v1/login",
                     R"({"username":"erin","password":"correct horse","deviceName":"x"})");
  CHECK(r.status == 429);
  CHECK(json_field(r.body, "code") == "CODE_RATE_LIMITED");
  CHECK(!json_field(r.body, "retryAfterMs").empty());
  CHECK(std::stoi(r.retry_after) >= 1);
  // Three WebSocket connections are taken, the fourth is refused before
  // the upgrade, and the ones open stay usable.
  ws_client c1{n.port};
  ws_client c2{n.port};
  CHECK(try_ws_upgrade(n.port).status == 101);
  auto refused = try_ws_upgrade(n.port);
  CHECK(refused.status == 429);
  CHECK(json_field(refused.body, "code") == "CODE_RATE_LIMITED");
  CHECK(!refused.retry_after.empty());
  CHECK(c1.call(hello(1, token), frame_format::json)->has_welcome());
  // Refusals are counted in /metrics.
  auto metrics = http_call(n.port, "GET", "/metrics").body;
  CHECK(metrics.find("parley_rate_limited_total 2") != std::string::npos);
}

TEST_CASE("an_operator_blocks_a_user_whose_connections_close_at_once") {
  node n{admin_args()};
  REQUIRE(n.admin_port != 0);
  auto frank = n.account("frank", "phone");
  auto gina = n.account("gina", "phone");
  ws_client f{n.port};
  auto conv = open_chat(f, frank, "gina", frame_format::binary);
  ws_client g{n.port};
  REQUIRE(g.call(hello(1, gina), frame_format::binary)->has_welcome());
  // On the admin port (issue 23): POST /v1/admin/users/NAME/block|unblock.
  auto block = [&](const std::string& token, bool on,
                   const std::string& who = "frank") {
    return http_call(n.admin_port, "POST",
                     "/v1/admin/users/" + who + (on ? "/block" : "/unblock"),
                     "{}", token);
  };
  // The client port serves no admin request any more.
  CHECK(http_call(n.port, "POST", "/v1/admin/block",
                  R"({"username":"frank","blocked":true})", test_admin_token)
          .status
        == 404);
  // Not the operator: refused, nothing changes.
  auto guess = block("guess", true).status;
  CHECK((guess == 401 || guess == 403));
  auto users = block(frank, true).status;
  CHECK((users == 401 || users == 403));
  CHECK(f.call(send_frame(5, conv, "before", "hi"), frame_format::binary)
          ->has_accepted());
  // Blocked: the open connection closes, the token and logins are refused.
  auto r = block(test_admin_token, true);
  CHECK(r.status == 200);
  CHECK(json_field(r.body, "blocked") == "true");
  CHECK(json_field(r.body, "name") == "frank");
  bool closed = false;
  for (int i = 0; i < 20 && !closed; ++i) {
    auto fr = f.read(500);
    closed = f.closed() || (fr && fr->has_disconnect());
  }
  CHECK(closed);
  ws_client again{n.port};
  auto w = again.call(hello(1, frank), frame_format::binary);
  CHECK((!w || !w->has_welcome()));
  auto login = http_call(n.port, "POST", "/v1/login",
                         R"({"username":"frank","password":"correct horse","deviceName":"x"})");
  CHECK(login.status == 403);
  // Gina is unaffected and got the message sent before the block.
  auto m = g.read();
  REQUIRE(m);
  CHECK(m->has_message());
  // Unblocked: frank can log in again.
  r = block(test_admin_token, false);
  CHECK(r.status == 200);
  CHECK(json_field(r.body, "blocked") == "false");
  login = http_call(n.port, "POST", "/v1/login",
                    R"({"username":"frank","password":"correct horse","deviceName":"y"})");
  CHECK(login.status == 200);
  CHECK(block(test_admin_token, true, "nobody").status == 404);
}
