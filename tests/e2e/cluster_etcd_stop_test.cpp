// etcd stopped for longer than the lease (issue 22): three members, one on
// each node, keep sending to three groups, one owned by each node (each
// sender on another node than its group's owner), retrying retryable
// errors with the same clientMessageId. With etcd stopped every node's
// /healthz turns "lease":"fenced", and the sends get retryable errors: no
// request sent after every node showed "fenced" is accepted before etcd
// runs again. etcd started again on its ports and data: the leases go live
// again, the retries go through, and every member's device syncs every
// accepted message of each group once, gapless, in order.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cluster_load.hpp"

using namespace parley;
using namespace parley::e2e;

TEST_CASE("cluster_etcd_stopped_past_the_lease_fences_writes_and_loses_nothing") {
  cluster_options opts;
  opts.extra = {"--parley.no-rate-limits", "--cluster.lease-ttl-s=4",
                "--cluster.fence-margin-ms=1000"};
  test_cluster c{opts};
  auto users = users_on(c, {1, 2, 3}, "member", 0);
  // Group g[k] is owned by node k + 1; member k (on node k + 1) sends to
  // the next node's group.
  std::vector<uint64_t> groups;
  for (node_id owner = 1; owner <= 3; ++owner)
    groups.push_back(group_on(c, c.port(1), users[0], {users[1].id, users[2].id},
                              owner));
  std::vector<std::unique_ptr<sender>> senders;
  for (size_t k = 0; k < 3; ++k)
    senders.push_back(std::make_unique<sender>(
      c.port(k + 1), users[k].token, groups[(k + 1) % 3],
      "s" + std::to_string(k) + "-"));
  auto every = [&](const std::vector<int>& base, auto count, int more) {
    for (size_t i = 0; i < senders.size(); ++i)
      if (count(*senders[i]) < base[i] + more && !senders[i]->failed())
        return false;
    return true;
  };
  auto accepted = [](const sender& s) { return s.accepted(); };
  auto errors = [](const sender& s) { return s.retryable_errors(); };
  auto snapshot = [&](auto count) {
    std::vector<int> out;
    for (auto& s : senders)
      out.push_back(count(*s));
    return out;
  };
  CHECK(eventually([&] { return every({0, 0, 0}, accepted, 10); }));

  c.stop_etcd();
  MESSAGE("etcd stopped");
  // Every node fences itself (polled, bounded).
  for (node_id n = 1; n <= 3; ++n) {
    node_health h;
    CHECK_MESSAGE(eventually([&] {
                    h = c.health(n);
                    return h.lease == "fenced";
                  }, 60000),
                  "node " << n << " /healthz: " << h.body);
  }
  auto fenced_seen = std::chrono::steady_clock::now();
  // The sends get retryable errors.
  auto errs = snapshot(errors);
  CHECK(eventually([&] { return every(errs, errors, 3); }, 60000));
  auto etcd_back = std::chrono::steady_clock::now();
  REQUIRE(c.start_etcd());
  MESSAGE("etcd started again");
  CHECK(c.wait_ready());
  for (node_id n = 1; n <= 3; ++n)
    CHECK(c.health(n).lease == "live");
  // The retries go through; ten more each.
  auto acc = snapshot(accepted);
  CHECK(eventually([&] { return every(acc, accepted, 10); }, 60000));
  for (auto& s : senders)
    s->stop();

  for (auto& s : senders) {
    print_stats(*s);
    CHECK(s->stats().problems.empty());
    CHECK(s->stats().retried.size() >= 1);
    // Nothing sent after every node showed "fenced" was accepted before
    // etcd was started again.
    for (auto& a : s->stats().accept_times)
      CHECK_MESSAGE(!(a.sent > fenced_seen && a.answered < etcd_back),
                    a.cmid << " accepted while every node was fenced");
  }
  std::vector<const sender*> all;
  for (auto& s : senders)
    all.push_back(s.get());
  for (size_t g = 0; g < groups.size(); ++g)
    for (size_t i = 0; i < users.size(); ++i) {
      uint64_t head = 0;
      auto problems = check_history(c.port(i + 1), users[i].token, groups[g],
                                    {all[(g + 2) % 3]}, &head);
      for (auto& p : problems)
        MESSAGE(users[i].name << "'s device, group " << g << ": " << p);
      CHECK(problems.empty());
      if (i == 0)
        MESSAGE("group " << g << " (node " << g + 1 << ") head " << head);
    }
  senders.clear();
}
