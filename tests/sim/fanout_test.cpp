// Large-group fan-out under the test coordinator: shards crash at random
// points between batches and are replaced; every online member device
// still gets every message exactly once and in order, the sending device
// none, and offline members nothing. Members' users fall in several
// partitions (P > 1), owned by one or two nodes' device registries: shards
// reach devices only through the registry owning each user's partition.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/device.hpp"
#include "actors/device_registry.hpp"
#include "actors/fanout.hpp"
#include "runtime/core/errors.hpp"
#include "coordinated_system.hpp"
#include "sim_world.hpp"

using namespace parley;

namespace {

/// A connection that records the large-group messages its device actor
/// passes on (the bulk lane).
caf::behavior recording_connection(std::shared_ptr<std::vector<sequence>> got) {
  return {
    [got](fanout_atom, const stored_message& m) { got->push_back(m.seq); },
    [](caf::close_atom, uint32_t, const std::string&) {},
  };
}

/// Joins `conn` to (user, device) at `registry`; the device actor lands in
/// `out` once the scheduler has run the join.
void join(caf::actor_system& sys, device_registry_actor registry, user_id u,
          device_id d, caf::actor conn, std::shared_ptr<caf::actor> out) {
  sys.spawn([=](caf::event_based_actor* self) {
    self->request(registry, caf::infinite, caf::join_atom::value, u, d, conn)
      .then([out](device_actor& dev) {
        *out = caf::actor_cast<caf::actor>(dev);
      });
  });
}

delivery_actor::behavior_type ignore_all() {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

} // namespace

TEST_CASE("sim: fan-out shards crashing and restarting deliver every "
          "message to every online member device once, in order") {
  sim::for_each_seed("sim: fan-out shards crashing*", 11000, 120,
                     [](uint64_t seed) -> std::string {
    std::mt19937_64 rng{seed};
    sim::coordinated_system w;
    const user_id users = 25;
    // Placement: P partitions over one or two nodes, each node's registry
    // serving the users of its partitions.
    const uint32_t parts_choice[] = {1, 2, 5, 64};
    const size_t nodes = 1 + rng() % 2;
    const uint32_t partitions = parts_choice[(nodes == 2 ? 1 : 0)
                                             + rng() % (nodes == 2 ? 3 : 4)];
    partition_map map;
    map.map_epoch = 1;
    for (uint32_t p = 0; p < partitions; ++p)
      map.owners.push_back(static_cast<node_id>(1 + (p + seed) % nodes));
    std::map<node_id, device_registry_actor> registries;
    for (size_t n = 1; n <= nodes; ++n) {
      device_registry_options ro;
      ro.where = placement{static_cast<node_id>(n), map};
      registries[static_cast<node_id>(n)]
        = w.sys->spawn(device_registry_impl, device_deps{}, ro);
    }
    auto owner_of = [&](user_id u) {
      return map.owner(partition_of(placement_key::user(u), partitions));
    };
    // Real device actors (they pass each large-group message on at most
    // once per connection), each holding a recording connection, joined
    // through the registry that owns the user.
    std::map<std::pair<user_id, device_id>,
             std::shared_ptr<std::vector<sequence>>>
      sinks;
    std::vector<caf::actor> to_stop;
    std::vector<std::shared_ptr<caf::actor>> devices;
    std::set<caf::actor_id> edge; ///< devices and connections
    std::set<uint32_t> online_partitions;
    std::set<node_id> online_nodes;
    for (user_id u = 1; u <= users; ++u)
      for (device_id d = 1; d <= 2; ++d) {
        if (rng() % 5 == 0)
          continue; // offline: catches up by sync, nothing pushed
        auto got = std::make_shared<std::vector<sequence>>();
        sinks[{u, d}] = got;
        auto conn = w.sys->spawn(recording_connection, got);
        auto dev = std::make_shared<caf::actor>();
        join(*w.sys, registries.at(owner_of(u)), u, d, conn, dev);
        devices.push_back(dev);
        to_stop.push_back(conn);
        edge.insert(conn.id());
        online_partitions.insert(
          partition_of(placement_key::user(u), partitions));
        online_nodes.insert(owner_of(u));
      }
    w.sched->run();
    for (auto& dev : devices) {
      if (!*dev)
        return "a device join was not answered";
      edge.insert(dev->id());
    }
    if (partitions > 1 && online_partitions.size() < 2)
      return "online members all in one partition of "
             + std::to_string(partitions);
    if (online_nodes.size() != nodes)
      return "online members not on every node";
    fanout_deps deps;
    deps.where = placement{1, map};
    deps.registries = registries;
    fanout_options opts;
    opts.shards = 1 + rng() % 4;
    opts.batch_users = 1 + rng() % 4;
    opts.window = 1 + rng() % 3;
    opts.own_threads = false;
    auto receipts = w.sys->spawn(ignore_all);
    deps.receipts = receipts;
    auto fan = w.sys->spawn(fanout_impl, deps, opts);
    w.sched->run();
    const conversation_id conv = 9;
    const int messages = 5 + static_cast<int>(rng() % 20);
    std::vector<user_id> members;
    for (user_id u = 1; u <= users; ++u)
      members.push_back(u);
    int crashes = 0;
    int sent = 0;
    auto known = std::make_shared<std::vector<caf::actor>>();
    auto& jobs = w.sched->jobs;
    // Devices and connections are not what is under test: they run as their
    // messages come, so that the seed's picks (and the crashes) fall among
    // the fan-out and its shards as before.
    auto run_edges = [&] {
      for (;;) {
        auto i = std::find_if(jobs.begin(), jobs.end(), [&](caf::resumable* r) {
          auto* a = dynamic_cast<caf::abstract_actor*>(r);
          return a != nullptr && edge.count(a->id()) > 0;
        });
        if (i == jobs.end())
          return;
        std::rotate(jobs.begin(), i, i + 1);
        w.sched->run_once();
      }
    };
    for (int guard = 0; guard < 200000; ++guard) {
      run_edges();
      if (sent < messages && rng() % 3 == 0) {
        stored_message m;
        m.conversation = conv;
        m.seq = static_cast<sequence>(++sent);
        m.sender_user = 1;
        m.sender_device = 1;
        caf::anon_send(fan, deliver_atom::value, m, members);
      }
      if (rng() % 10 == 0) {
        // Learn the current shards (answered whenever the scheduler gets
        // to it: no extra steps run here).
        auto hdl = fan;
        auto out = known;
        w.sys->spawn([=](caf::event_based_actor* self) {
          self->request(hdl, caf::infinite, caf::get_atom::value)
            .then([=](std::vector<caf::actor>& xs) { *out = xs; });
        });
      }
      if (!known->empty() && rng() % 8 == 0) {
        // Crash a shard, whatever it is doing (possibly between batches).
        caf::anon_send_exit((*known)[rng() % known->size()],
                            caf::exit_reason::unhandled_exception);
        ++crashes;
      }
      if (jobs.empty()) {
        if (sent == messages)
          break;
        continue;
      }
      auto k = rng() % jobs.size();
      std::rotate(jobs.begin(), jobs.begin() + k, jobs.begin() + k + 1);
      w.sched->run_once();
    }
    w.sched->run();
    caf::anon_send_exit(fan, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(receipts, caf::exit_reason::user_shutdown);
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& [n, r] : registries)
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
    w.sched->run();
    std::vector<sequence> all;
    for (int i = 1; i <= messages; ++i)
      all.push_back(static_cast<sequence>(i));
    for (auto& [key, sink] : sinks) {
      auto want = key == std::make_pair(user_id{1}, device_id{1})
                    ? std::vector<sequence>{}
                    : all;
      if (*sink != want) {
        std::string got;
        for (auto s : *sink)
          got += std::to_string(s) + " ";
        return "user " + std::to_string(key.first) + " device "
               + std::to_string(key.second) + " got [" + got + "] of "
               + std::to_string(messages) + " after "
               + std::to_string(crashes) + " shard crashes";
      }
    }
    return {};
  });
}

TEST_CASE("sim: a device registry refuses a fan-out batch of a partition "
          "another node owns, and serves its own") {
  sim::coordinated_system w;
  partition_map map;
  map.map_epoch = 1;
  map.owners = {1, 2};
  device_registry_options ro;
  ro.where = placement{1, map};
  auto registry = w.sys->spawn(device_registry_impl, device_deps{}, ro);
  user_id mine = 0;
  user_id theirs = 0;
  for (user_id u = 1; (mine == 0 || theirs == 0) && u < 1000; ++u)
    (partition_of(placement_key::user(u), 2) == 0 ? mine : theirs) = u;
  REQUIRE(mine != 0);
  REQUIRE(theirs != 0);
  auto got = std::make_shared<std::vector<sequence>>();
  auto conn = w.sys->spawn(recording_connection, got);
  auto dev = std::make_shared<caf::actor>();
  join(*w.sys, registry, mine, 1, conn, dev);
  w.sched->run();
  REQUIRE(*dev);
  stored_message m;
  m.conversation = 9;
  m.seq = 1;
  m.sender_user = mine;
  m.sender_device = 2;
  auto answer = [&](std::vector<user_id> to) {
    auto out = std::make_shared<caf::expected<uint64_t>>(uint64_t{0});
    w.sys->spawn([=](caf::event_based_actor* self) {
      self->request(registry, caf::infinite, fanout_atom::value, m, to)
        .then([out](uint64_t n) { *out = n; },
              [out](caf::error& err) { *out = std::move(err); });
    });
    w.sched->run();
    return *out;
  };
  auto refused = answer({theirs});
  REQUIRE_FALSE(refused);
  CHECK(refused.error() == errc::unavailable);
  CHECK(got->empty());
  auto served = answer({mine});
  REQUIRE(served);
  CHECK(*served == 1);
  CHECK(*got == std::vector<sequence>{1});
  m.sender_device = 1; // the sending device gets nothing
  m.seq = 2;
  auto skipped = answer({mine});
  REQUIRE(skipped);
  CHECK(*skipped == 0);
  CHECK(*got == std::vector<sequence>{1});
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
  w.sched->run();
}

TEST_CASE("sim: a device registry serves a fan-out batch mixing its own "
          "partitions, and refuses whole a batch with a user of another "
          "node's partition") {
  // Shards batch by owner node: one batch may hold users of several of the
  // registry's partitions. A user whose partition the registry does not own
  // (the shard's map is stale) refuses the batch before anything is sent,
  // so its members sync and none gets the message twice.
  sim::coordinated_system w;
  partition_map map;
  map.map_epoch = 1;
  map.owners = {1, 1, 2, 2};
  device_registry_options ro;
  ro.where = placement{1, map};
  auto registry = w.sys->spawn(device_registry_impl, device_deps{}, ro);
  user_id in_p[4] = {0, 0, 0, 0};
  for (user_id u = 1; u < 1000; ++u)
    if (auto p = partition_of(placement_key::user(u), 4); in_p[p] == 0)
      in_p[p] = u;
  for (auto u : in_p)
    REQUIRE(u != 0);
  const user_id a = in_p[0], b = in_p[1], theirs = in_p[2];
  auto got_a = std::make_shared<std::vector<sequence>>();
  auto got_b = std::make_shared<std::vector<sequence>>();
  auto conn_a = w.sys->spawn(recording_connection, got_a);
  auto conn_b = w.sys->spawn(recording_connection, got_b);
  auto dev_a = std::make_shared<caf::actor>();
  auto dev_b = std::make_shared<caf::actor>();
  join(*w.sys, registry, a, 1, conn_a, dev_a);
  join(*w.sys, registry, b, 1, conn_b, dev_b);
  w.sched->run();
  REQUIRE(*dev_a);
  REQUIRE(*dev_b);
  stored_message m;
  m.conversation = 9;
  m.sender_user = theirs;
  m.sender_device = 1;
  auto answer = [&](sequence seq, std::vector<user_id> to) {
    m.seq = seq;
    auto out = std::make_shared<caf::expected<uint64_t>>(uint64_t{0});
    w.sys->spawn([=](caf::event_based_actor* self) {
      self->request(registry, caf::infinite, fanout_atom::value, m, to)
        .then([out](uint64_t n) { *out = n; },
              [out](caf::error& err) { *out = std::move(err); });
    });
    w.sched->run();
    return *out;
  };
  auto both = answer(1, {a, b});
  REQUIRE(both);
  CHECK(*both == 2);
  CHECK(*got_a == std::vector<sequence>{1});
  CHECK(*got_b == std::vector<sequence>{1});
  for (auto to : {std::vector<user_id>{a, theirs, b},
                  std::vector<user_id>{theirs, a}}) {
    auto refused = answer(2, to);
    CHECK_FALSE(refused); // CHECK: a failure still shuts the actors down
    if (!refused)
      CHECK(refused.error() == errc::unavailable);
  }
  CHECK(*got_a == std::vector<sequence>{1});
  CHECK(*got_b == std::vector<sequence>{1});
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(conn_a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(conn_b, caf::exit_reason::user_shutdown);
  w.sched->run();
}
