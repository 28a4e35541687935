// A partition move and the membership events its conversations owe (issue
// 21, item 7): a group change commits its member records ('b') with the
// events owed to the members' indexes ('g'); every event is lost, so the
// old owner (node 1) still owes them when the partition moves. The range
// is copied as a move does (runtime/store/partition_move.hpp: mirror_chunk
// after the old owner stopped), and the new owner (node 2) gets the map
// that gives it the partition. With no further traffic its directory
// activates the moved conversation (directory_memberships::activate_taken)
// and the users' index rows ('y') are written on node 2, the owed events
// erased. Before, nothing activated it until it was used or the node
// restarted: the rows lagged indefinitely.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/directory.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/partition_move.hpp"
#include "coordinated_system.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t parts = 8;

partition_map all_on(node_id n, uint64_t epoch) {
  partition_map m;
  m.map_epoch = epoch;
  m.owners.assign(parts, n);
  return m;
}

delivery_actor::behavior_type quiet(delivery_actor::pointer) {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

/// A membership sink that loses every event (never answered).
membership_sink_actor::behavior_type lossy(membership_sink_actor::pointer,
                                           std::shared_ptr<uint64_t> lost) {
  return {
    [lost](caf::put_atom, membership_event&) -> caf::result<uint64_t> {
      ++*lost;
      return caf::delegated<uint64_t>{};
    },
  };
}

struct node {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  directory_actor dir;

  std::vector<caf::actor> actors() const {
    return {caf::actor_cast<caf::actor>(dir),
            caf::actor_cast<caf::actor>(delivery),
            caf::actor_cast<caf::actor>(reader),
            caf::actor_cast<caf::actor>(writer)};
  }
};

struct fixture : sim::coordinated_system {
  node one, two;
  membership_sink_actor sink;
  std::shared_ptr<uint64_t> lost = std::make_shared<uint64_t>(0);

  void boot(node& n, node_id id, membership_sink_actor memberships) {
    n.writer = sys->spawn(store_writer_impl,
                          std::shared_ptr<kv_backend>(n.disk),
                          store_writer_limits{});
    n.reader = sys->spawn(store_reader_impl,
                          std::shared_ptr<kv_backend>(n.disk), uint64_t{50});
    n.delivery = sys->spawn(quiet);
    conversation_deps deps{n.writer, n.reader, n.delivery,
                           [] { return int64_t{1'700'000'000'000}; },
                           conversation_limits{}, nullptr};
    deps.memberships = memberships; // null: the directory itself
    n.dir = sys->spawn(routing_directory_impl, deps,
                       placement{id, all_on(1, 1)}, directory_peers{});
    sched->run();
  }

  ~fixture() {
    for (auto* n : {&one, &two})
      for (auto& hdl : n->actors())
        caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
    for (int i = 0; i < 100000; ++i) {
      sched->run();
      if (!sched->trigger_timeout())
        break;
    }
  }

  /// Runs (time jumping to the next timeout) until `done` or no work is
  /// left, at most `bound` rounds.
  template <class F>
  bool run_until(F done, int bound = 10000) {
    for (int i = 0; i < bound; ++i) {
      sched->run();
      if (done())
        return true;
      if (!sched->trigger_timeout())
        return done();
    }
    return done();
  }

  template <class T, class... Ts>
  std::optional<caf::expected<T>> ask(directory_actor hdl, Ts... args) {
    auto slot = std::make_shared<std::optional<caf::expected<T>>>();
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, 60s, args...)
        .then([slot](T& x) { *slot = std::move(x); },
              [slot](caf::error& e) { *slot = std::move(e); });
    });
    run_until([&] { return slot->has_value(); });
    return *slot;
  }
};

bool has(kv_backend& kv, const std::string& key) {
  auto v = kv.get(key);
  return v && v->has_value();
}

/// The membership events owed in `kv` ('g' rows; only the group owes any).
size_t owed(kv_backend& kv) {
  size_t n = 0;
  store::scan_table(kv, keys::member_events_tag,
                    [&](std::string_view, std::string_view) {
                      ++n;
                      return true;
                    });
  return n;
}

} // namespace

TEST_CASE("sim move relay: the new owner of a moved partition relays the "
          "membership events its conversations owe, with no further "
          "traffic") {
  fixture f;
  // A group and its three members, all of one partition.
  conversation_id g = 1;
  auto pg = partition_of(placement_key::conversation(g), parts);
  std::vector<user_id> users;
  for (user_id u = 1; users.size() < 3; ++u)
    if (partition_of(placement_key::user(u), parts) == pg)
      users.push_back(u);
  f.sink = f.sys->spawn(lossy, f.lost);
  f.boot(f.one, 1, f.sink);
  group_change c{membership_change::created, users[0], 1,
                 {users[1], users[2]}, "g", "", "create-1"};
  auto first = f.ask<send_result>(f.one.dir, group_atom::value, g, c);
  REQUIRE(first);
  // Committed on the conversation's side; every event lost (retryable).
  CHECK_FALSE(*first);
  CHECK(*f.lost > 0);
  for (auto u : users) {
    CHECK(has(*f.one.disk, keys::member(g, u)));
    CHECK_FALSE(has(*f.one.disk, keys::membership(u, g)));
  }
  REQUIRE(owed(*f.one.disk) == users.size());
  // The old owner stops (its range no longer changes); the range is
  // copied to node 2 chunk by chunk.
  for (auto& hdl : f.one.actors())
    caf::anon_send_exit(hdl, caf::exit_reason::kill);
  f.sched->run();
  auto cur = store::start_pass(pg, parts);
  while (!cur.done) {
    auto chunk = store::mirror_chunk(*f.one.disk, *f.two.disk, cur, 7);
    REQUIRE(chunk);
    REQUIRE_FALSE(f.two.disk->write(chunk->batch, true));
    cur = chunk->after;
  }
  REQUIRE(owed(*f.two.disk) == users.size());
  // Node 2 (its own sink: the directory) takes the partition.
  f.boot(f.two, 2, {});
  auto next = all_on(1, 2);
  next.owners[pg] = 2;
  auto taken = f.ask<uint64_t>(f.two.dir, caf::put_atom::value, next);
  REQUIRE(taken);
  REQUIRE(*taken);
  CHECK(**taken == 2u);
  auto written = [&] {
    for (auto u : users)
      if (!has(*f.two.disk, keys::membership(u, g)))
        return false;
    return owed(*f.two.disk) == 0;
  };
  CHECK_MESSAGE(f.run_until(written),
                "index rows on node 2: "
                  << has(*f.two.disk, keys::membership(users[0], g))
                  << has(*f.two.disk, keys::membership(users[1], g))
                  << has(*f.two.disk, keys::membership(users[2], g))
                  << ", owed: " << owed(*f.two.disk));
  // The index row equals the member record.
  for (auto u : users)
    CHECK(f.two.disk->get(keys::membership(u, g))->value_or("")
          == f.one.disk->get(keys::member(g, u))->value_or("x"));
}
