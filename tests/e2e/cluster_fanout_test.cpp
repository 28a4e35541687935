// A 1,000-member group across a real three-node cluster (issue 22): every
// member has a device connected (a third to each node), the members' users
// are placed in partitions of every node, and the group's messages reach
// every device exactly once, in order, whichever node its user's partition
// and its connection live on. The fan-out counters of each node are
// printed (how the work spread).

#include <doctest/doctest.h>

#include <functional>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cluster_clients.hpp"
#include "cluster_fixture.hpp"

using namespace parley;
using namespace parley::e2e;

namespace {

using seqs = std::vector<uint64_t>;

/// The value of the metric `name` on node `port` (-1 if absent).
double metric(uint16_t port, const std::string& name) {
  auto text = http_call(port, "GET", "/metrics").body;
  std::smatch m;
  std::regex re("\n" + name + " ([0-9.e+]+)");
  return std::regex_search(text, m, re) ? std::stod(m[1].str()) : -1.0;
}

/// Member i connects to node i % nodes + 1; `user_owner` says which node
/// owns a user's partition.
void thousand_member_group(deployment d, int nodes,
                           std::function<node_id(uint64_t)> user_owner) {
  const int members = 1000;
  auto node_of = [&](int i) { return node_id(i % nodes + 1); };
  std::vector<uint16_t> ports{0};
  for (int n = 1; n <= nodes; ++n)
    ports.push_back(d.port(n));
  auto port = [&](int i) { return ports[node_of(i)]; };

  // Register everyone, through every node (four client threads: no
  // doctest macros inside them).
  std::vector<std::optional<user_account>> users(members);
  {
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t)
      workers.emplace_back([&, t] {
        for (int i = t; i < members; i += 4)
          users[i] = try_register(port(i),
                                  "m" + std::to_string(1000 + i), "phone");
      });
    for (auto& w : workers)
      w.join();
  }
  for (int i = 0; i < members; ++i)
    REQUIRE_MESSAGE(users[i], "member " << i << " was not registered");

  // Every member's device connects to node i % 3 + 1; together they cover
  // every (connection node, user's partition owner) pair.
  std::set<std::pair<node_id, node_id>> cover;
  for (int i = 0; i < members; ++i)
    cover.insert({node_of(i), user_owner(users[i]->id)});
  CHECK(cover.size() == size_t(nodes * nodes));
  std::vector<device> devs(members);
  for (int i = 0; i < members; ++i)
    devs[i].connect(port(i), users[i]->token);

  // Member 0 creates the group with the 999 others (1), sends five (2-6)
  // and a last one (7).
  std::vector<uint64_t> ids;
  for (int i = 1; i < members; ++i)
    ids.push_back(users[i]->id);
  auto created = devs[0].call(group_create("everyone", ids));
  REQUIRE(created);
  REQUIRE_MESSAGE(created->has_accepted(), created->DebugString());
  auto group = created->accepted().conversation_id();
  MESSAGE("group " << group << " owned by node " << d.owner(group));
  for (int k = 0; k < 6; ++k) {
    auto f = devs[0].call(text(group, "f" + std::to_string(k),
                               "to all " + std::to_string(k)));
    REQUIRE(f);
    REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
    CHECK(f->accepted().server_sequence() == uint64_t(k + 2));
  }

  // Every other device: 1 to 7, once each, in order. Read up to the last
  // one; then whatever else is already there.
  const seqs all{1, 2, 3, 4, 5, 6, 7};
  int complete = 0;
  std::vector<int> complete_on(nodes + 1, 0);
  for (int i = 1; i < members; ++i) {
    auto& d = devs[i];
    bool last = d.wait_until([&] {
      return !d.got.empty() && d.got.back().server_sequence() == 7;
    });
    d.drain(1);
    if (last && d.seqs_in(group) == all) {
      ++complete;
      ++complete_on[node_of(i)];
    } else {
      CHECK_MESSAGE(d.seqs_in(group) == all, "member " << i << " on node "
                                                       << node_of(i));
    }
  }
  CHECK(complete == members - 1);
  for (int n = 1; n <= nodes; ++n)
    MESSAGE("node " << n << ": " << complete_on[n]
                    << " devices got all 7; fan-out pushes "
                    << metric(d.port(n), "parley_fanout_pushes_total")
                    << ", delivered "
                    << metric(d.port(n), "parley_messages_delivered_total"));
  // The creator's device: its group's creation only, not its own sends.
  devs[0].drain(1);
  CHECK(devs[0].seqs_in(group) == seqs{1});
}

} // namespace

TEST_CASE("cluster_control_1000_member_group_on_one_node") {
  lone_node n{{"--partitions=6", "--parley.no-rate-limits",
               "--parley.heartbeat-ms=300000"}};
  thousand_member_group(of(n), 1, [](uint64_t) { return node_id{1}; });
}

TEST_CASE("cluster_a_1000_member_group_reaches_devices_on_every_node_once") {
  cluster_options opts;
  opts.extra = {"--parley.no-rate-limits", "--parley.heartbeat-ms=300000"};
  test_cluster c{opts};
  auto map = c.map();
  thousand_member_group(of(c), c.size(), [&](uint64_t user) {
    return map.owner(partition_of(placement_key::user(user), c.partitions()));
  });
}
