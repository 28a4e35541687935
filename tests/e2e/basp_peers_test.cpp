// Device registries of two nodes as peers over CAF's middleman (issue 22):
// two actor systems (two CAF node ids) in one process, BASP on loopback,
// each registry told the other's handle at run time with (put_atom,
// node_id, caf::actor) as the cluster member does. What the sims cannot
// show (all their actors share one CAF node id): a join through one node
// for a user of the other lands there and its device actor pushes to the
// connection across the link, as do a fan-out shard's batches once the
// fan-out is told node 2's registry; and when the two maps disagree about a
// partition, a request or a delivery that came from the other node is not
// handed back ("no ping-pong"): the request is refused at once, the
// delivery dropped and counted.

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/device_registry.hpp"
#include "actors/fanout.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/type_ids.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

struct node_config : caf::actor_system_config {
  node_config() {
    load<caf::io::middleman>();
    add_message_types<caf::id_block::parley>();
    set("scheduler.max-threads", 2);
    set("logger.verbosity", caf::atom("quiet"));
    set("middleman.enable-automatic-connections", false);
  }
};

constexpr uint32_t parts = 2;

/// The first user id placed in partition `p` (of `parts`).
user_id user_in(uint32_t p) {
  for (user_id u = 1;; ++u)
    if (partition_of(placement_key::user(u), parts) == p)
      return u;
}

device_registry_state& state_of(const device_registry_actor& reg) {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(reg);
  return dynamic_cast<caf::stateful_actor<device_registry_state,
                                          device_registry_actor::base>&>(*ptr)
    .state;
}

} // namespace

TEST_CASE("basp: device registries of two nodes serve each other's users "
          "across the link, and hand nothing back when their maps "
          "disagree") {
  node_config cfg1;
  node_config cfg2;
  caf::actor_system sys1{cfg1};
  caf::actor_system sys2{cfg2};
  // Partition 1: node 2's on both maps. Partition 0: node 1 thinks node
  // 2 owns it, node 2 thinks node 1 does (one of them is stale).
  partition_map map1;
  map1.map_epoch = 1;
  map1.owners = {2, 2};
  partition_map map2;
  map2.map_epoch = 1;
  map2.owners = {1, 2};
  device_registry_options o1;
  o1.where = placement{1, map1};
  device_registry_options o2;
  o2.where = placement{2, map2};
  auto reg1 = sys1.spawn(device_registry_impl, device_deps{}, o1);
  auto reg2 = sys2.spawn(device_registry_impl, device_deps{}, o2);
  auto port1 = sys1.middleman().publish(caf::actor_cast<caf::actor>(reg1), 0,
                                        "127.0.0.1");
  auto port2 = sys2.middleman().publish(caf::actor_cast<caf::actor>(reg2), 0,
                                        "127.0.0.1");
  REQUIRE(port1);
  REQUIRE(port2);
  auto to2 = sys1.middleman().remote_actor("127.0.0.1", *port2);
  auto to1 = sys2.middleman().remote_actor("127.0.0.1", *port1);
  REQUIRE(to2);
  REQUIRE(to1);
  CHECK(to2->node() == sys2.node());
  caf::scoped_actor conn{sys1}; // a connection on node 1's socket
  auto peers = [&](device_registry_actor reg, node_id n, caf::actor peer) {
    uint64_t known = 0;
    conn->request(reg, 10s, caf::put_atom::value, n, peer)
      .receive([&](uint64_t k) { known = k; },
               [&](caf::error& err) { FAIL(caf::to_string(err)); });
    return known;
  };
  CHECK_EQ(peers(reg1, 2, *to2), 1u);
  CHECK_EQ(peers(reg2, 1, *to1), 1u);
  auto agreed = user_in(1);
  auto disputed = user_in(0);

  // A join through node 1 for node 2's user: the device actor lives on
  // node 2 and answers the connection on node 1.
  device_actor dev;
  conn
    ->request(reg1, 10s, caf::join_atom::value, agreed, device_id{1},
              caf::actor{conn})
    .receive([&](device_actor& d) { dev = d; },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  REQUIRE(dev);
  CHECK(dev->node() == sys2.node());
  // A delivery handed to node 1's registry reaches it across the link.
  stored_message m;
  m.conversation = 9;
  m.seq = 1;
  m.sender_user = 999'999;
  m.sender_device = 1;
  caf::anon_send(reg1, deliver_atom::value, m, std::vector<user_id>{agreed});
  sequence pushed = 0;
  conn->receive([&](deliver_atom, const stored_message& x) { pushed = x.seq; },
                caf::after(30s) >> [] {});
  CHECK_EQ(pushed, 1u);

  // A fan-out of node 1 told node 2's registry at run time: a large-group
  // batch for node 2's user crosses the link and reaches its connection.
  fanout_deps fd;
  fd.where = placement{1, map1};
  fd.registries = {{1, reg1}};
  fd.receipts = caf::actor_cast<delivery_actor>(reg1);
  fanout_options fo;
  fo.shards = 1;
  fo.own_threads = false;
  auto fan = sys1.spawn(fanout_impl, fd, fo);
  uint64_t registries = 0;
  conn->request(fan, 10s, caf::put_atom::value, node_id{2}, *to2)
    .receive([&](uint64_t k) { registries = k; },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK_EQ(registries, 2u);
  m.seq = 2;
  caf::anon_send(fan, deliver_atom::value, m, std::vector<user_id>{agreed});
  sequence bulk = 0;
  conn->receive([&](fanout_atom, const stored_message& x) { bulk = x.seq; },
                caf::after(30s) >> [] {});
  CHECK_EQ(bulk, 2u);

  // The disputed partition: node 1 hands the join to node 2, which will
  // not hand a request from another node back: refused at once (not a
  // timeout of requests going round).
  caf::error refused;
  conn
    ->request(reg1, 30s, caf::join_atom::value, disputed, device_id{1},
              caf::actor{conn})
    .receive([&](device_actor&) { FAIL("a disputed user was joined"); },
             [&](caf::error& err) { refused = err; });
  CHECK(is(refused, errc::unavailable));
  CHECK_MESSAGE(caf::to_string(refused).find("another node")
                  != std::string::npos,
                caf::to_string(refused));
  // A delivery to the disputed user goes to node 2 once, which drops it.
  // Then a lookup through node 1 answered by node 2: it travels the same
  // link after the delivery, so node 2 has taken the delivery by then.
  m.seq = 3;
  caf::anon_send(reg1, deliver_atom::value, m, std::vector<user_id>{disputed});
  bool looked = false;
  conn->request(reg1, 10s, caf::get_atom::value, agreed, device_id{1})
    .receive(
      [&](device_actor& d) {
        looked = d.node() == dev.node() && d.id() == dev.id();
      },
             [&](caf::error& err) { FAIL(caf::to_string(err)); });
  CHECK(looked);
  // Both registries are idle now (nothing goes round): their counters
  // are read after the answer that followed the delivery.
  CHECK_EQ(state_of(reg2).dropped, 1u);
  CHECK_EQ(state_of(reg2).relayed, 0u);
  CHECK_EQ(state_of(reg1).relayed, 2u); // the agreed and the disputed one

  caf::anon_send_exit(fan, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(reg1, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(reg2, caf::exit_reason::user_shutdown);
}
