// The three-node fixture's operations, as the nodes report them in GET
// /healthz (issue 22 contract): the first map (partition p owned by
// initial[p % 3]) in etcd and in each node's "owned"; a node killed with
// -9 leaves the others' peers and rejoins on its data; a node frozen past
// its lease leaves the others' peers and, thawed, gets a live lease again;
// with etcd stopped every node says etcd "unreachable" and fences itself,
// and with etcd back every lease is live again.

#include <doctest/doctest.h>

#include <set>
#include <string>

#include "cluster_clients.hpp"
#include "cluster_fixture.hpp"

using namespace parley;
using namespace parley::e2e;

namespace {

/// Polls node `n`'s /healthz until `pred` holds (bounded); prints the
/// last answer if it never does.
bool health_until(test_cluster& c, node_id n,
                  const std::function<bool(const node_health&)>& pred) {
  node_health h;
  bool ok = eventually([&] {
    h = c.health(n);
    return pred(h);
  }, 60000);
  if (!ok)
    MESSAGE("node " << n << " /healthz: " << h.body);
  return ok;
}

} // namespace

TEST_CASE("cluster_fixture_kill_freeze_and_etcd_stop_show_in_healthz") {
  cluster_options opts;
  opts.extra = {"--cluster.lease-ttl-s=4", "--cluster.fence-margin-ms=1000"};
  test_cluster c{opts};
  // The first map: partition p owned by node p % 3 + 1, at epoch >= 1.
  auto map = c.map();
  CHECK(map.map_epoch >= 1);
  for (uint32_t p = 0; p < c.partitions(); ++p)
    CHECK(map.owner(p) == p % 3 + 1);
  for (node_id n = 1; n <= 3; ++n) {
    auto h = c.health(n);
    std::set<uint32_t> want;
    for (uint32_t p = 0; p < c.partitions(); ++p)
      if (map.owner(p) == n)
        want.insert(p);
    CHECK(h.owned == want);
    CHECK(h.map_epoch == map.map_epoch);
    CHECK(h.etcd == "ok");
  }

  // kill -9 of node 3: the others forget it; restarted on its data, it is
  // everyone's peer again.
  c.kill9(3);
  for (node_id n : {1, 2})
    CHECK(health_until(c, n, [](auto& h) { return h.peers.count(3) == 0; }));
  REQUIRE(c.restart(3));
  REQUIRE(c.wait_ready());

  // Node 2 frozen past its lease: the others forget it; thawed, its lease
  // is live again and it is everyone's peer.
  c.freeze(2);
  CHECK(health_until(c, 1, [](auto& h) { return h.peers.count(2) == 0; }));
  c.thaw(2);
  REQUIRE(c.wait_ready());

  // etcd stopped: every node notices and fences; etcd back: live again.
  c.stop_etcd();
  for (node_id n : {1, 2, 3})
    CHECK(health_until(c, n, [](auto& h) {
      return h.etcd == "unreachable" && h.lease == "fenced";
    }));
  REQUIRE(c.start_etcd());
  REQUIRE(c.wait_ready());
  // etcd reachability is re-checked every 2 s (and set by a renewal): poll.
  for (node_id n : {1, 2, 3})
    CHECK(health_until(c, n, [](auto& h) { return h.etcd == "ok"; }));
}
