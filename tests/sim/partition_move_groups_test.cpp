// Group changes after a partition move (issue 21, item 7; the mover of
// partition_move_test.cpp). A group on one node has members whose users'
// partition, also on that node, moves to the other node while the swarm
// runs; afterwards the group, which stays, adds and removes users of the
// moved partition. Its membership index rows ('y') belong to the users'
// side (runtime/core/membership_events.hpp), so the changes succeed (a
// conversation batch writing 'y' itself would be refused by the fenced
// writer, retryably, forever), the moved users' rows on the new owner equal
// the group's member records, and the old owner's moved range did not
// change after its fence.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/membership_store.hpp"
#include "partition_mover.hpp"
#include "sim_world.hpp"
#include "two_node_world.hpp"

using namespace parley;
using namespace parley::sim;
using namespace std::chrono_literals;

namespace {

/// The group's plan and what its driver saw.
struct group_run {
  conversation_id group = 0;
  user_id creator = 0;
  std::vector<user_id> first, added, removed; ///< moved users
  int attempts = 0, unavailable = 0;
  int stale_owed = 0; ///< applied events whose erase failed
  node_id entry = 0; ///< the node whose directory the changes go through
  int stage = 0; ///< 0 create, 1 wait for the move, 2 add, 3 remove, 4 done
  std::string error;
};

constexpr int max_attempts = 60;

/// Creates the group, starts the mover, waits for it, then adds and
/// removes moved users, each change retried (same request id) on errors.
caf::behavior group_driver(caf::event_based_actor* self, two_node_world* w,
                           move_plan m, std::shared_ptr<move_log> log,
                           std::shared_ptr<group_run> g) {
  self->send(self, caf::tick_atom::value);
  return {
    [=](caf::tick_atom) {
      auto tick = [self] { self->send(self, caf::tick_atom::value); };
      if (g->stage == 1) {
        if (!log->error.empty() || log->at == phase::done) {
          g->stage = 2;
          g->attempts = 0;
        }
        tick();
        return;
      }
      if (g->stage >= 4 || !g->error.empty())
        return self->quit();
      group_change c;
      c.actor = g->creator;
      c.device = 1;
      c.name = "g";
      if (g->stage == 0) {
        c.change = membership_change::created;
        c.targets = g->first;
        c.request_id = "create";
      } else if (g->stage == 2) {
        c.change = membership_change::added;
        c.targets = g->added;
        c.request_id = "add";
      } else {
        c.change = membership_change::removed;
        c.targets = g->removed;
        c.request_id = "remove";
      }
      // Through either node; the group's node routes the events.
      self->request(w->at(g->entry).directory, 30s, group_atom::value,
                    g->group, c)
        .then(
          [=](send_result&) {
            if (g->stage == 0)
              spawn_mover(self->system(), w, m, log);
            ++g->stage;
            g->attempts = 0;
            self->send(self, caf::tick_atom::value);
          },
          [=](caf::error& err) {
            g->unavailable += is(err, errc::unavailable) ? 1 : 0;
            if (++g->attempts >= max_attempts) {
              g->error = "group change " + std::to_string(g->stage)
                         + " refused " + std::to_string(max_attempts)
                         + " times, last: " + caf::to_string(err);
              return self->quit();
            }
            self->send(self, caf::tick_atom::value);
          });
    },
  };
}

std::string run_groups(uint64_t seed, group_run* out = nullptr) {
  std::mt19937_64 rng{seed ^ 0x6E0B5ull};
  two_node_knobs k;
  k.conversations = 2;
  k.clients = 2 + rng() % 3;
  k.messages = 2 + rng() % 5;
  k.window = 1 + rng() % 3;
  k.p_duplicate = (rng() % 2) ? 0.2 : 0.0;
  k.p_store_fail = (rng() % 2) ? 0.02 : 0.0;
  k.p_fire_timer = (rng() % 2) ? 0.05 : 0.0;
  k.max_hop_delay_ms = std::vector<int64_t>{0, 5, 50}[rng() % 3];
  k.link_breaks = rng() % 2;
  k.node_crashes = 0;
  k.faulty_steps = 300 + rng() % 1000;
  two_node_world w{seed, k};
  auto parts = w.map.partitions();
  auto g = std::make_shared<group_run>();
  // The group: a conversation none of the clients uses.
  g->group = 1000 + rng() % 1000;
  auto gp = partition_of(placement_key::conversation(g->group), parts);
  move_plan m;
  m.conv = g->group;
  m.from = w.map.owner(gp);
  m.to = m.from == 1 ? 2 : 1;
  std::vector<uint32_t> same; // other partitions of the group's node
  for (uint32_t p = 0; p < parts; ++p)
    if (p != gp && w.map.owner(p) == m.from)
      same.push_back(p);
  REQUIRE(!same.empty());
  m.partition = same[rng() % same.size()];
  m.after = w.map;
  m.after.map_epoch += 1;
  m.after.owners[m.partition] = m.to;
  m.delay = rng() % 100;
  m.chunk = 1 + rng() % 12;
  std::vector<user_id> moved;
  for (user_id u = 5000; moved.size() < 5; ++u) {
    auto p = partition_of(placement_key::user(u), parts);
    if (p == m.partition)
      moved.push_back(u);
    else if (g->creator == 0 && p != m.partition)
      g->creator = u;
  }
  g->first = {moved[0], moved[1], moved[2]};
  g->added = {moved[3], moved[4]};
  g->removed = {moved[rng() % 2], moved[3 + rng() % 2]};
  g->entry = 1 + rng() % 2;
  auto log = std::make_shared<move_log>();
  w.on_step = [&w, m, log, g, started = false](caf::actor_system& sys) mutable {
    if (started || !w.faults_on)
      return;
    started = true;
    sys.spawn(group_driver, &w, m, log, g);
  };
  w.k.check_at_end = false;
  auto why = w.run_all();
  if (out)
    *out = *g;
  if (!why.empty())
    return why;
  if (!g->error.empty())
    return g->error;
  if (!log->error.empty())
    return "mover: " + log->error;
  if (g->stage != 4 || log->at != phase::done)
    return "unfinished: group stage " + std::to_string(g->stage)
           + ", move phase " + std::to_string(static_cast<int>(log->at));
  auto& old_disk = *w.at(m.from).disk;
  auto& new_disk = *w.at(m.to).disk;
  for (auto u : moved) {
    auto b = old_disk.get(keys::member(g->group, u));
    auto y = new_disk.get(keys::membership(u, g->group));
    REQUIRE(b);
    REQUIRE(y);
    if (!*b)
      return "user " + std::to_string(u) + " has no member record";
    if (!*y)
      return "moved user " + std::to_string(u)
             + " has no index row on the new owner";
    if (**y != **b)
      return "moved user " + std::to_string(u)
             + "'s index row on the new owner differs from the member record";
  }
  // An event still on disk (its erase commit failed: it stays until the
  // group is next activated) must be one its user's side applied.
  auto owed = store::member_events(old_disk, g->group);
  REQUIRE(owed);
  for (auto& ev : *owed) {
    auto n = w.map.owner(partition_of(placement_key::user(ev.user), parts));
    auto v = store::member_version(*w.at(n).disk, ev.user, g->group);
    REQUIRE(v);
    if (*v < ev.version)
      return "user " + std::to_string(ev.user) + "'s event of version "
             + std::to_string(ev.version) + " is owed, not applied (row at "
             + std::to_string(*v) + ")";
    ++g->stale_owed;
  }
  if (out)
    out->stale_owed = g->stale_owed;
  if (read_range(old_disk, m.partition, parts) != log->frozen)
    return "the old owner's moved range changed after the fence";
  return {};
}

} // namespace

TEST_CASE("sim: after a partition move, a group on the old node adds and "
          "removes users of the moved partition") {
  int unavailable = 0, runs = 0, stale_owed = 0;
  for_each_seed("sim: after a partition move, a group*", 320000, 400,
                [&](uint64_t seed) {
                  group_run g;
                  auto why = run_groups(seed, &g);
                  ++runs;
                  unavailable += g.unavailable;
                  stale_owed += g.stale_owed;
                  return why;
                });
  MESSAGE("group changes after moves: " << runs << " runs, " << unavailable
                                        << " retryable refusals, "
                                        << stale_owed
                                        << " applied events left owed");
}
