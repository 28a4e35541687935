// Peers set and forgotten at run time (issue 22): the cluster member tells
// a node's directory, device registry and fan-out about another node's
// actors with (put_atom, node_id, caf::actor), and forgets a node with the
// same message and a null handle. Two "nodes" with different views of one
// partition map (placement{1, ...} and placement{2, ...}) in one actor
// system under the test coordinator: a peer set at run time receives
// routed requests and deliveries, and once forgotten, requests answer
// UNAVAILABLE at once and deliveries to its users are skipped.
//
// (A join or lookup through a node that does not own the user is asked of
// the owner in a node-to-node form answered with a plain caf::actor: a
// device_actor handle has no type id and cannot cross BASP, which only
// tests/e2e/basp_peers_test.cpp can show.)
//
// All actors of one actor system share one CAF node id, so the guard
// against passing a message back and forth ("a message that came from
// another node is never handed on again") cannot be exercised here: every
// message counts as this node's. Each forward in these tests goes to the
// owner under maps that agree, so the owner serves it and nothing is
// handed on a second time (tests/e2e/basp_peers_test.cpp shows the guard
// with two actor systems over BASP).

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/device_registry.hpp"
#include "actors/directory.hpp"
#include "actors/fanout.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;

namespace {

constexpr uint32_t parts = 8;

/// Partitions alternate between nodes 1 and 2.
partition_map halves() {
  partition_map m;
  m.map_epoch = 1;
  for (uint32_t p = 0; p < parts; ++p)
    m.owners.push_back(1 + p % 2);
  return m;
}

/// The `k`-th user id (from 0) whose partition node `n` owns.
user_id user_of(node_id n, int k = 0) {
  for (user_id u = 1;; ++u)
    if (halves().owner(partition_of(placement_key::user(u), parts)) == n
        && k-- == 0)
      return u;
}

conversation_id conv_of(node_id n) {
  for (conversation_id c = 1;; ++c)
    if (halves().owner(partition_of(placement_key::conversation(c), parts))
        == n)
      return c;
}

/// What a connection got from its device actor, in order: "d<seq>" a
/// delivery, "f<seq>" a large-group one, "r<seq>" a receipt, "u<conv>"
/// an inbox update.
using pushes = std::vector<std::string>;

caf::behavior recording_connection(std::shared_ptr<pushes> got) {
  return {
    [got](deliver_atom, const stored_message& m) {
      got->push_back("d" + std::to_string(m.seq));
    },
    [got](fanout_atom, const stored_message& m) {
      got->push_back("f" + std::to_string(m.seq));
    },
    [got](receipt_atom, const receipt_event& ev) {
      got->push_back("r" + std::to_string(ev.seq));
    },
    [got](caf::update_atom, const inbox_entry& e) {
      got->push_back("u" + std::to_string(e.conversation));
    },
    [](caf::close_atom, uint32_t, const std::string&) {},
  };
}

delivery_actor::behavior_type quiet(delivery_actor::pointer) {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

template <class T>
struct reply {
  std::optional<T> ok;
  caf::error err;
  bool waited = false; ///< a timer had to fire before the answer came
};

struct fixture : sim::coordinated_system {
  std::vector<caf::actor> to_stop;

  ~fixture() {
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched->run();
  }

  template <class Handle>
  Handle keep(Handle h) {
    to_stop.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  /// Asks and runs the scheduler until the answer is in, firing timers
  /// (store batching) only while nothing else is left to run; `waited`
  /// says whether one had to fire. The request itself never times out.
  template <class T, class Handle, class... Ts>
  reply<T> ask(Handle hdl, Ts... args) {
    auto slot = std::make_shared<reply<T>>();
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, caf::infinite, args...)
        .then([=](T& x) { slot->ok = std::move(x); },
              [=](caf::error& e) { slot->err = e; });
    });
    sched->run();
    for (int i = 0; i < 100 && !slot->ok && !slot->err; ++i) {
      slot->waited = true;
      sched->trigger_timeout();
      sched->run();
    }
    return *slot;
  }

  /// A device registry of node `n` under halves().
  device_registry_actor registry(node_id n) {
    device_registry_options ro;
    ro.where = placement{n, halves()};
    return keep(sys->spawn(device_registry_impl, device_deps{}, ro));
  }

  /// A recording connection.
  std::pair<caf::actor, std::shared_ptr<pushes>> connection() {
    auto got = std::make_shared<pushes>();
    return {keep(sys->spawn(recording_connection, got)), got};
  }

  /// Tells `hdl` that node `n`'s actor is `peer` (null: forget node n);
  /// returns how many peers it knows.
  template <class Handle>
  uint64_t put_peer(Handle hdl, node_id n, caf::actor peer) {
    auto r = ask<uint64_t>(hdl, caf::put_atom::value, n, std::move(peer));
    REQUIRE_MESSAGE(r.ok, caf::to_string(r.err));
    return *r.ok;
  }
};

device_registry_state& state_of(const device_registry_actor& reg) {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(reg);
  return dynamic_cast<caf::stateful_actor<device_registry_state,
                                          device_registry_actor::base>&>(*ptr)
    .state;
}

directory_state& state_of(const directory_actor& dir) {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(dir);
  return dynamic_cast<caf::stateful_actor<directory_state,
                                          directory_actor::base>&>(*ptr)
    .state;
}

stored_message message(sequence seq) {
  stored_message m;
  m.conversation = 9;
  m.seq = seq;
  m.sender_user = 999'999; // no member: every member device gets it
  m.sender_device = 1;
  return m;
}

} // namespace

TEST_CASE("sim: a directory peer set at run time gets the requests for its "
          "partitions, and once it is forgotten they answer UNAVAILABLE at "
          "once") {
  fixture f;
  struct node {
    std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
    directory_actor dir;
  } one, two;
  auto deps_of = [&](node& n) {
    auto writer = f.keep(f.sys->spawn(store_writer_impl,
                                      std::shared_ptr<kv_backend>(n.disk),
                                      store_writer_limits{}));
    auto reader = f.keep(f.sys->spawn(store_reader_impl,
                                      std::shared_ptr<kv_backend>(n.disk),
                                      uint64_t{50}));
    auto delivery = f.keep(f.sys->spawn(quiet));
    return conversation_deps{writer, reader, delivery,
                             [] { return int64_t{1'700'000'000'000}; },
                             conversation_limits{}, nullptr};
  };
  // Spawned knowing no peer, as parleyd spawns them.
  one.dir = f.keep(f.sys->spawn(routing_directory_impl, deps_of(one),
                                placement{1, halves()}, directory_peers{}));
  two.dir = f.keep(f.sys->spawn(routing_directory_impl, deps_of(two),
                                placement{2, halves()}, directory_peers{}));
  f.sched->run();
  auto conv = conv_of(2);
  auto member = user_of(2);
  auto before = f.ask<sequence>(one.dir, caf::join_atom::value, conv, member);
  REQUIRE(before.err);
  CHECK(is(before.err, errc::unavailable));
  // Node 2's directory as the cluster member hands it: a plain actor.
  CHECK_EQ(f.put_peer(one.dir, 2, caf::actor_cast<caf::actor>(two.dir)), 1u);
  auto joined = f.ask<sequence>(one.dir, caf::join_atom::value, conv, member);
  REQUIRE_MESSAGE(joined.ok, caf::to_string(joined.err));
  CHECK(state_of(one.dir).conversations.empty());
  CHECK_EQ(state_of(two.dir).conversations.count(conv), 1u);
  // Set again (a reconnect gives a new handle): replaced, still one peer.
  CHECK_EQ(f.put_peer(one.dir, 2, caf::actor_cast<caf::actor>(two.dir)), 1u);
  // Forgotten: answered at once (no timer fired), nothing spawned.
  CHECK_EQ(f.put_peer(one.dir, 2, caf::actor{}), 0u);
  auto after = f.ask<sequence>(one.dir, caf::join_atom::value, conv, member);
  REQUIRE(after.err);
  CHECK(is(after.err, errc::unavailable));
  CHECK_FALSE(after.waited);
  auto page = f.ask<sync_page>(one.dir, sync_atom::value, user_of(2),
                               sync_request{});
  REQUIRE(page.err);
  CHECK(is(page.err, errc::unavailable));
  CHECK_FALSE(page.waited);
  CHECK(state_of(one.dir).conversations.empty());
  CHECK(state_of(one.dir).users.empty());
  // Forgetting an unknown node changes nothing.
  CHECK_EQ(f.put_peer(one.dir, 3, caf::actor{}), 0u);
}

TEST_CASE("sim: device registries with peers set at run time: a join for "
          "the other node's user lands there, and deliveries to users of "
          "two nodes reach each device once") {
  fixture f;
  auto reg1 = f.registry(1);
  auto reg2 = f.registry(2);
  f.sched->run();
  auto a = user_of(1);
  auto b = user_of(2);
  auto [conn_a, got_a] = f.connection();
  auto [conn_b1, got_b1] = f.connection();
  auto [conn_b2, got_b2] = f.connection();
  // No peer yet: node 1 refuses node 2's user, spawning nothing.
  auto refused = f.ask<device_actor>(reg1, caf::join_atom::value, b,
                                     device_id{1}, conn_b1);
  REQUIRE(refused.err);
  CHECK(is(refused.err, errc::unavailable));
  CHECK(state_of(reg2).devices.empty());
  CHECK_EQ(f.put_peer(reg1, 2, caf::actor_cast<caf::actor>(reg2)), 1u);
  CHECK_EQ(f.put_peer(reg2, 1, caf::actor_cast<caf::actor>(reg1)), 1u);
  // b's device 1 joins through node 1 (its socket's node): the device
  // actor lives on node 2 and answers the joiner.
  auto dev_b1 = f.ask<device_actor>(reg1, caf::join_atom::value, b,
                                    device_id{1}, conn_b1);
  REQUIRE_MESSAGE(dev_b1.ok, caf::to_string(dev_b1.err));
  CHECK(state_of(reg1).devices.empty());
  REQUIRE_EQ(state_of(reg2).devices.count(b), 1u);
  CHECK(state_of(reg2).devices.at(b).at(1).actor == *dev_b1.ok);
  CHECK_EQ(state_of(reg2).by_conn.count(conn_b1.address()), 1u);
  // A lookup through node 1 is answered by node 2 as well.
  auto looked = f.ask<device_actor>(reg1, caf::get_atom::value, b,
                                    device_id{1});
  REQUIRE_MESSAGE(looked.ok, caf::to_string(looked.err));
  CHECK(*looked.ok == *dev_b1.ok);
  // The node-to-node form (which the join through node 1 used) is never
  // handed on: node 2 refuses it for node 1's user though it knows node 1.
  auto [conn_x, got_x] = f.connection();
  auto bounced = f.ask<caf::actor>(reg2, caf::join_atom::value, node_id{1},
                                   a, device_id{5}, conn_x);
  REQUIRE(bounced.err);
  CHECK(is(bounced.err, errc::unavailable));
  CHECK_FALSE(bounced.waited);
  CHECK(state_of(reg1).devices.empty());
  REQUIRE(f.ask<device_actor>(reg2, caf::join_atom::value, b, device_id{2},
                              conn_b2)
            .ok);
  REQUIRE(f.ask<device_actor>(reg1, caf::join_atom::value, a, device_id{1},
                              conn_a)
            .ok);
  // A conversation on node 1 delivers to its registry, one on node 2 to
  // its own: each device gets each message once.
  std::vector<user_id> members{a, b};
  caf::anon_send(reg1, deliver_atom::value, message(1), members);
  f.sched->run();
  caf::anon_send(reg2, deliver_atom::value, message(2), members);
  f.sched->run();
  CHECK_EQ(state_of(reg1).relayed, 1u);
  CHECK_EQ(state_of(reg2).relayed, 1u);
  // A receipt the same way.
  receipt_event ev;
  ev.conversation = 9;
  ev.user = 999'999;
  ev.kind = 2;
  ev.seq = 2;
  caf::anon_send(reg1, receipt_atom::value, ev, members);
  f.sched->run();
  // b changed an inbox entry on device 2, on a connection of node 1: b's
  // other device hears of it, from node 2.
  inbox_entry changed;
  changed.conversation = 9;
  caf::anon_send(reg1, caf::update_atom::value, b, device_id{2}, changed);
  f.sched->run();
  CHECK(*got_a == pushes{"d1", "d2", "r2"});
  CHECK(*got_b1 == pushes{"d1", "d2", "r2", "u9"});
  CHECK(*got_b2 == pushes{"d1", "d2", "r2"});
  CHECK_EQ(state_of(reg1).unrouted, 0u);
  CHECK_EQ(state_of(reg2).unrouted, 0u);
  // Node 2 forgotten on node 1: its users are skipped (they sync), its
  // requests answer UNAVAILABLE at once; node 1's own users are served.
  CHECK_EQ(f.put_peer(reg1, 2, caf::actor{}), 0u);
  caf::anon_send(reg1, deliver_atom::value, message(3), members);
  f.sched->run();
  CHECK(*got_a == pushes{"d1", "d2", "r2", "d3"});
  CHECK(*got_b1 == pushes{"d1", "d2", "r2", "u9"});
  CHECK(*got_b2 == pushes{"d1", "d2", "r2"});
  CHECK_EQ(state_of(reg1).unrouted, 1u);
  auto [conn_b3, got_b3] = f.connection();
  auto late = f.ask<device_actor>(reg1, caf::join_atom::value, b,
                                  device_id{3}, conn_b3);
  REQUIRE(late.err);
  CHECK(is(late.err, errc::unavailable));
  CHECK_FALSE(late.waited);
  CHECK_EQ(state_of(reg2).devices.at(b).count(3), 0u);
  CHECK(is(f.ask<device_actor>(reg1, caf::get_atom::value, b, device_id{1})
             .err,
           errc::unavailable));
  // Node 2 still knows node 1.
  caf::anon_send(reg2, deliver_atom::value, message(4), members);
  f.sched->run();
  CHECK(*got_a == pushes{"d1", "d2", "r2", "d3", "d4"});
  CHECK(*got_b1 == pushes{"d1", "d2", "r2", "u9", "d4"});
  CHECK(*got_b2 == pushes{"d1", "d2", "r2", "d4"});
}

TEST_CASE("sim: a fan-out told another node's registry at run time sends "
          "it the batches of its users, and once it is forgotten they are "
          "skipped") {
  fixture f;
  auto reg1 = f.registry(1);
  auto reg2 = f.registry(2);
  f.sched->run();
  // Two users of each node, one device each, joined on the owner.
  std::vector<user_id> members{user_of(1, 0), user_of(1, 1), user_of(2, 0),
                               user_of(2, 1)};
  std::vector<std::shared_ptr<pushes>> got;
  for (auto u : members) {
    auto [conn, g] = f.connection();
    got.push_back(g);
    auto reg = u == members[0] || u == members[1] ? reg1 : reg2;
    REQUIRE(f.ask<device_actor>(reg, caf::join_atom::value, u, device_id{1},
                                conn)
              .ok);
  }
  fanout_deps deps;
  deps.where = placement{1, halves()};
  deps.registries = {{1, reg1}}; // as parleyd spawns it: its own node's
  deps.receipts = f.keep(f.sys->spawn(quiet));
  fanout_options opts;
  opts.shards = 2;
  opts.batch_users = 1;
  opts.own_threads = false;
  auto fan = f.keep(f.sys->spawn(fanout_impl, deps, opts));
  f.sched->run();
  auto unrouted = [&] {
    auto shards = f.ask<std::vector<caf::actor>>(fan, caf::get_atom::value);
    REQUIRE(shards.ok);
    uint64_t n = 0;
    for (auto& s : *shards.ok) {
      auto ptr = caf::actor_cast<caf::abstract_actor*>(s);
      n += dynamic_cast<caf::stateful_actor<fanout_shard_state,
                                            fanout_shard_actor::base>&>(*ptr)
             .state.unrouted;
    }
    return n;
  };
  auto deliver = [&](sequence seq) {
    caf::anon_send(fan, deliver_atom::value, message(seq), members);
    f.sched->run();
  };
  deliver(1); // node 2 unknown: its users skipped (they sync)
  CHECK_EQ(unrouted(), 2u);
  CHECK_EQ(f.put_peer(fan, 2, caf::actor_cast<caf::actor>(reg2)), 2u);
  deliver(2);
  // A shard that fails is replaced, and the new one knows node 2 too.
  auto shards = f.ask<std::vector<caf::actor>>(fan, caf::get_atom::value);
  REQUIRE(shards.ok);
  for (auto& s : *shards.ok)
    caf::anon_send_exit(s, caf::exit_reason::unhandled_exception);
  f.sched->run();
  deliver(3);
  CHECK_EQ(unrouted(), 0u); // the new shards skipped nothing
  CHECK_EQ(f.put_peer(fan, 2, caf::actor{}), 1u);
  deliver(4);
  CHECK_EQ(unrouted(), 2u);
  CHECK(*got[0] == pushes{"f1", "f2", "f3", "f4"});
  CHECK(*got[1] == pushes{"f1", "f2", "f3", "f4"});
  CHECK(*got[2] == pushes{"f2", "f3"});
  CHECK(*got[3] == pushes{"f2", "f3"});
}

TEST_CASE("sim: a fan-out shard gives up at once the batches in flight to a "
          "node that is forgotten, so they do not hold its window") {
  fixture f;
  auto reg1 = f.registry(1);
  // Node 2's registry as the proxy of a node that went away: it takes
  // batches and never answers (CAF 0.17 answers nothing for a message to
  // a remote actor that is gone: only the request's timeout would).
  auto held = std::make_shared<std::vector<caf::response_promise>>();
  auto hole = f.keep(f.sys->spawn(
    [held](caf::event_based_actor* self) -> caf::behavior {
      return {
        [=](fanout_atom, const stored_message&, const std::vector<user_id>&) {
          held->push_back(self->make_response_promise());
        },
      };
    }));
  auto a = user_of(1);
  auto b = user_of(2);
  auto [conn, got] = f.connection();
  REQUIRE(f.ask<device_actor>(reg1, caf::join_atom::value, a, device_id{1},
                              conn)
            .ok);
  fanout_deps deps;
  deps.where = placement{1, halves()};
  deps.registries = {{1, reg1}};
  deps.receipts = f.keep(f.sys->spawn(quiet));
  fanout_options opts;
  opts.shards = 1;
  opts.window = 1;
  opts.own_threads = false;
  auto fan = f.keep(f.sys->spawn(fanout_impl, deps, opts));
  f.sched->run();
  CHECK_EQ(f.put_peer(fan, 2, hole), 2u);
  // A batch for node 2 fills the window; one for node 1 waits behind it.
  caf::anon_send(fan, deliver_atom::value, message(1), std::vector<user_id>{b});
  f.sched->run();
  caf::anon_send(fan, deliver_atom::value, message(2), std::vector<user_id>{a});
  f.sched->run();
  CHECK_EQ(held->size(), 1u);
  CHECK(got->empty());
  // Node 2 forgotten: its batch is settled at once (no timer fired), and
  // the one for node 1 goes out.
  CHECK_EQ(f.put_peer(fan, 2, caf::actor{}), 1u);
  f.sched->run();
  CHECK(*got == pushes{"f2"});
  auto shards = f.ask<std::vector<caf::actor>>(fan, caf::get_atom::value);
  REQUIRE(shards.ok);
  REQUIRE_EQ(shards.ok->size(), 1u);
  auto ptr = caf::actor_cast<caf::abstract_actor*>(shards.ok->front());
  auto& st = dynamic_cast<caf::stateful_actor<fanout_shard_state,
                                              fanout_shard_actor::base>&>(*ptr)
               .state;
  CHECK_EQ(st.given_up, 1u);
  CHECK(st.sent.empty());
  CHECK_EQ(st.in_flight, 0u);
}
