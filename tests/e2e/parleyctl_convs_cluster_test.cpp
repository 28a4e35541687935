// parleyctl's conversation commands on a three-node cluster (issue 23):
// conv show and conv tail asked of any node answer from the conversation's
// owner (the directory hands the request on), the same on every node;
// inbox rebuild all on every node covers each user exactly once (each node
// its own partitions' users) and leaves the unread counts as they were;
// a user's rebuild asked of a node that does not own the user is refused
// naming the owner; a conversation whose owner does not answer (frozen) is
// a retryable refusal, not a hang.

#include <doctest/doctest.h>

#include <csignal>
#include <string>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "cluster_clients.hpp"
#include "cluster_fixture.hpp"
#include "cluster_load.hpp"
#include "parleyctl_run.hpp"

using namespace parley;
using namespace parley::e2e;
namespace pb = google::protobuf;

namespace {

/// parleyctl --json ARGS at node `n`'s admin port.
ctl_result ctl_at(test_cluster& c, node_id n, std::vector<std::string> args) {
  auto port = admin_port(c.at(n));
  REQUIRE_MESSAGE(port != 0, "node " << n << " logged no admin port");
  std::vector<std::string> all{"--node", "127.0.0.1:" + std::to_string(port),
                               "--token", test_admin_token, "--json"};
  all.insert(all.end(), args.begin(), args.end());
  return run_parleyctl(all, {}, 60000);
}

pb::Struct json_at(test_cluster& c, node_id n, std::vector<std::string> args) {
  auto r = ctl_at(c, n, args);
  INFO("node " << n << " stdout: " << r.out << " stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  // A followed job prints its states; the last object is how it ended.
  auto at = r.out.rfind("\n{");
  pb::Struct s;
  auto text = at == std::string::npos ? r.out : r.out.substr(at + 1);
  REQUIRE(pb::util::JsonStringToMessage(text, &s).ok());
  return s;
}

double num(const pb::Struct& s, const std::string& key) {
  auto i = s.fields().find(key);
  REQUIRE_MESSAGE(i != s.fields().end(), "no " << key);
  return i->second.number_value();
}

} // namespace

TEST_CASE("cluster_conv_show_tail_and_inbox_rebuild_answer_alike_on_every_"
          "node") {
  cluster_options opts;
  opts.extra = admin_args();
  test_cluster c{opts};
  auto alice = register_user(c.port(1), "alice", "phone");
  auto bob = register_user(c.port(1), "bob", "phone");
  device a, b;
  a.connect(c.port(1), alice.token);
  b.connect(c.port(1), bob.token);
  // A group owned by node 3 (not the node the clients use).
  uint64_t group = 0;
  for (int k = 0; k < 60 && group == 0; ++k) {
    auto f = a.call(group_create("team", {bob.id}));
    REQUIRE(f);
    REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
    if (c.owner_of_conversation(f->accepted().conversation_id()) == 3)
      group = f->accepted().conversation_id();
  }
  REQUIRE_MESSAGE(group != 0, "no group landed on node 3");
  for (int i = 2; i <= 4; ++i)
    REQUIRE(a.call(text(group, "m" + std::to_string(i), "hello"))
              ->has_accepted());
  // Bob read 2, then has 4 delivered: Alice hears the aggregate of 4.
  b.send(receipt(group, 2, true));
  b.send(receipt(group, 4, false));
  REQUIRE(a.wait_receipt([](const v1::ReceiptUpdate& r) {
    return r.up_to_sequence() == 4 && r.delivered_count() == 1;
  }));

  auto id = std::to_string(group);
  for (node_id n = 1; n <= 3; ++n) {
    CAPTURE(n);
    auto s = json_at(c, n, {"conv", "show", id});
    CHECK(num(s, "head") == 4);
    CHECK(num(s, "dispatched") == 4);
    CHECK(num(s, "owner") == 3);
    bool saw_bob = false;
    for (auto& m : s.fields().at("members").list_value().values()) {
      auto& o = m.struct_value();
      if (num(o, "user") != double(bob.id))
        continue;
      saw_bob = true;
      CHECK(num(o, "delivered") == 4);
      CHECK(num(o, "read") == 2);
    }
    CHECK(saw_bob);
    auto t = json_at(c, n, {"conv", "tail", id, "2"});
    auto& msgs = t.fields().at("messages").list_value().values();
    REQUIRE(msgs.size() == 2);
    CHECK(num(msgs[0].struct_value(), "seq") == 3);
    CHECK(num(msgs[1].struct_value(), "seq") == 4);
  }

  // Every node rebuilds its own partitions' users: two users in all.
  auto before_b = unread_of(inbox_page(c.port(2), bob.token), group);
  CHECK(before_b == 2); // 3 and 4 (2 was read)
  double users = 0;
  for (node_id n = 1; n <= 3; ++n) {
    auto j = json_at(c, n, {"inbox", "rebuild", "all"});
    CHECK(j.fields().at("state").string_value() == "done");
    CHECK(num(j, "done") == num(j, "total"));
    users += num(j, "total");
  }
  CHECK(users == 2);
  CHECK(unread_of(inbox_page(c.port(2), bob.token), group) == before_b);
  // One user: at its owner; elsewhere refused, naming the owner.
  auto owner = c.owner_of_user(alice.id);
  auto one = json_at(c, owner, {"inbox", "rebuild", "alice"});
  CHECK(num(one, "total") == 1);
  node_id other = owner == 1 ? 2 : 1;
  auto r = ctl_at(c, other, {"inbox", "rebuild", "alice"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("node " + std::to_string(owner)) != std::string::npos);

  // The owner frozen: asked elsewhere, a refusal saying to retry.
  c.freeze(3);
  auto frozen = ctl_at(c, 1, {"conv", "show", id});
  c.thaw(3);
  INFO("stdout: " << frozen.out << " stderr: " << frozen.err);
  CHECK(frozen.exit_code == 1);
  CHECK(frozen.err.find("try again") != std::string::npos);
  CHECK(frozen.err.find("503") != std::string::npos);
}
