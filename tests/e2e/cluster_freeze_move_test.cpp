// An owner frozen past its lease while its partition is moved (issue 22):
// members on all three nodes keep sending to a group owned by node 1 (one
// of them connected to node 1 itself), retrying retryable errors with the
// same clientMessageId. Node 1 is frozen (SIGSTOP) until the others see its
// lease lapse, then the group's partition is moved to node 2: the move
// fences first and waits in phase "fencing" for the frozen owner, the map
// in etcd giving the partition to nobody (0). Node 1 thawed (SIGCONT): the
// move completes; from the first poll that found it fencing to the last
// that found it fencing or in its tail pass no send is accepted (node 1
// accepts nothing for the partition after it wakes); the sends succeed on
// node 2; every accepted message is in the history once, gapless, in
// order, on every member's device.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster_load.hpp"

using namespace parley;
using namespace parley::e2e;

TEST_CASE("cluster_owner_frozen_past_its_lease_during_a_move_accepts_nothing") {
  using clock = std::chrono::steady_clock;
  cluster_options opts;
  opts.extra = admin_flags();
  for (auto f : {"--parley.no-rate-limits", "--cluster.lease-ttl-s=4",
                 "--cluster.fence-margin-ms=1000"})
    opts.extra.push_back(f);
  test_cluster c{opts};
  const node_id owner = 1, to = 2, via = 2;
  auto users = users_on(c, {1, 2, 2, 3}, "member", owner);
  auto conv = group_on(c, c.port(2), users[1], {users[0].id, users[2].id, users[3].id},
                       owner);
  auto p = partition_of(placement_key::conversation(conv), c.partitions());
  MESSAGE("group " << conv << " in partition " << p << " owned by node " << owner);
  const std::vector<node_id> on{1, 2, 2, 3};

  auto senders = start_senders(c, users, conv, [&](size_t i) { return on[i]; });
  auto every = [&](const std::vector<int>& base, int more) {
    return each_sent(senders, base, more);
  };
  CHECK(eventually([&] { return every({0, 0, 0, 0}, 10); }));

  c.freeze(owner);
  MESSAGE("node " << owner << " frozen");
  // Past its lease: node 2 no longer has it among its peers.
  node_health h;
  CHECK_MESSAGE(eventually([&] {
                  h = c.health(to);
                  return h.peers.count(owner) == 0;
                }, 60000),
                "node " << to << " /healthz: " << h.body);
  // The move fences first and waits for the frozen owner.
  start_move(c, via, p, to);
  std::string move;
  CHECK(eventually([&] {
    move = move_of(c, via, p);
    return !json_text_field(move, "waiting").empty();
  }));
  clock::time_point fencing_seen{}, before_switch{};
  if (json_text_field(move, "phase") == "fencing")
    fencing_seen = before_switch = clock::now();
  MESSAGE("move while node " << owner << " is frozen: " << move);
  CHECK(json_text_field(move, "phase") == "fencing");
  CHECK(c.map().owner(p) == 0);

  c.thaw(owner);
  MESSAGE("node " << owner << " thawed");
  // Poll the move to its end: from the first poll that finds it fencing
  // (the map gives the partition to nobody) to the last that finds it
  // fencing or in its tail pass, nobody may accept a send for it.
  CHECK(eventually([&] {
    auto asked = clock::now();
    move = move_of(c, via, p);
    auto phase = json_text_field(move, "phase");
    if (phase == "fencing" && fencing_seen == clock::time_point{})
      fencing_seen = clock::now();
    if (phase == "fencing" || phase == "tail")
      before_switch = asked;
    return phase == "done" || phase == "failed";
  }, 120000));
  MESSAGE("move: " << move);
  CHECK(json_text_field(move, "phase") == "done");
  MESSAGE("the move's unavailable_ms: " << json_number_field(move, "unavailable_ms"));
  auto after = accepted_counts(senders);
  CHECK(eventually([&] { return every(after, 10); }, 60000));
  for (auto& s : senders)
    s->stop();
  CHECK(c.map().owner(p) == to);

  for (auto& s : senders) {
    print_stats(*s);
    CHECK(s->stats().problems.empty());
    for (auto& a : s->stats().accept_times)
      CHECK_MESSAGE(!(fencing_seen != clock::time_point{} && a.sent > fencing_seen
                      && a.answered < before_switch),
                    a.cmid << " accepted while the partition was owned by nobody");
  }
  std::vector<const sender*> all;
  for (auto& s : senders)
    all.push_back(s.get());
  uint64_t head = 0;
  for (size_t i = 0; i < users.size(); ++i) {
    auto problems = check_history(c.port(on[i]), users[i].token, conv, all, &head);
    for (auto& pr : problems)
      MESSAGE(users[i].name << "'s device: " << pr);
    CHECK(problems.empty());
  }
  MESSAGE("history head " << head);
  senders.clear();
}
