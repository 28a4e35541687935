// A partition moved under load (issue 22): four members on nodes 2 and 3
// keep sending to a group owned by node 1, retrying retryable errors with
// the same clientMessageId, while the group's partition is moved to node 2
// through node 3's admin port (POST /v1/admin/partitions/P/move, then GET
// /v1/admin/partitions polled until its move is done). The move completes; node 2 serves
// the partition afterwards (/healthz "owned", the map in etcd); every
// accepted message is in the group's history exactly once, gapless, in
// order, on every member's device; an accepted clientMessageId sent again
// returns its original sequence (the idempotency records moved too). The
// move's unavailable_ms and the clients' longest retry streak are printed.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "cluster_load.hpp"

using namespace parley;
using namespace parley::e2e;

TEST_CASE("cluster_partition_moved_under_load_loses_and_duplicates_nothing") {
  cluster_options opts;
  opts.extra = admin_flags();
  opts.extra.push_back("--parley.no-rate-limits");
  test_cluster c{opts};
  const node_id from = 1, to = 2, via = 3;
  auto users = users_on(c, {2, 2, 3, 3}, "member", from);
  std::vector<uint64_t> ids;
  for (size_t i = 1; i < users.size(); ++i)
    ids.push_back(users[i].id);
  auto conv = group_on(c, c.port(2), users[0], ids, from);
  auto p = partition_of(placement_key::conversation(conv), c.partitions());
  MESSAGE("group " << conv << " in partition " << p << " owned by node " << from);
  auto port_of = [](size_t i) -> node_id { return i < 2 ? 2 : 3; };

  auto senders = start_senders(c, users, conv, port_of);
  auto every = [&](const std::vector<int>& base, int more) {
    return each_sent(senders, base, more);
  };
  CHECK(eventually([&] { return every({0, 0, 0, 0}, 20); }));

  start_move(c, via, p, to);
  auto move = wait_move(c, via, p, [](const std::string& phase) {
    return phase == "done" || phase == "failed";
  });
  MESSAGE("move: " << move);
  CHECK(json_text_field(move, "phase") == "done");
  MESSAGE("the move's unavailable_ms: " << json_number_field(move, "unavailable_ms"));
  // The senders keep going on the new owner: ten more each.
  auto after = accepted_counts(senders);
  CHECK(eventually([&] { return every(after, 10); }, 60000));
  for (auto& s : senders)
    s->stop();

  // Node 2 serves the partition; node 1 no longer does.
  CHECK(c.map().owner(p) == to);
  node_health h;
  CHECK_MESSAGE(eventually([&] {
                  h = c.health(to);
                  return h.owned.count(p) == 1;
                }),
                "node " << to << " /healthz: " << h.body);
  CHECK(c.health(from).owned.count(p) == 0);

  int longest_streak = 0;
  int64_t longest_streak_ms = 0;
  for (auto& s : senders) {
    print_stats(*s);
    CHECK(s->stats().problems.empty());
    longest_streak = std::max(longest_streak, s->stats().longest_streak);
    longest_streak_ms = std::max(longest_streak_ms, s->stats().longest_streak_ms);
  }
  MESSAGE("clients' longest retry streak: " << longest_streak << " errors, "
                                            << longest_streak_ms << " ms");

  // Accepted clientMessageIds sent again (to the new owner): their
  // original sequences.
  for (auto& s : senders) {
    auto& st = s->stats();
    REQUIRE_FALSE(st.order.empty());
    std::vector<std::string> probe{st.order.front(), st.order.back()};
    for (auto& [cmid, n] : st.retried)
      probe.push_back(cmid);
    for (auto& cmid : probe) {
      auto f = s->resend(cmid);
      REQUIRE(f);
      REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
      CHECK(f->accepted().server_sequence() == st.accepted.at(cmid));
      CHECK(f->accepted().deduplicated());
    }
  }

  std::vector<const sender*> all;
  for (auto& s : senders)
    all.push_back(s.get());
  uint64_t head = 0;
  for (size_t i = 0; i < users.size(); ++i) {
    auto problems = check_history(c.port(port_of(i)), users[i].token, conv,
                                  all, &head);
    for (auto& pr : problems)
      MESSAGE(users[i].name << "'s device: " << pr);
    CHECK(problems.empty());
  }
  MESSAGE("history head " << head);
  senders.clear();
}
