// Moving a partition to the other simulated node in the middle of traffic
// (issue 21; runtime/store/partition_move.hpp). The two-node swarm
// (two_node_world.hpp) runs its clients; at a seed-chosen point a mover
// actor, scheduled among the others, moves the partition of one of the
// clients' conversations from its owner to the other node: stream (chunks
// of the range mirrored into the new owner's store), fence (the old owner's
// directory and store writer get a map of a higher epoch without the
// partition), tail (the range mirrored again), switch (the new owner gets
// the map). Afterwards the swarm's invariants hold over the new owner's
// store (every accepted message exactly once and gapless, every answer
// equal to the stored sequence, only retryable errors), the old owner's
// range did not change after the fence, and sends accepted before the move
// and retried after it answer their original sequence (the idempotency
// keys moved with the range).

#include <doctest/doctest.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/partition_move.hpp"
#include "partition_mover.hpp"
#include "two_node_world.hpp"

using namespace parley;
using namespace parley::sim;

namespace {

two_node_knobs draw_knobs(uint64_t seed) {
  std::mt19937_64 rng{seed ^ 0x30FE5EEDull};
  auto pick = [&](double p) { return (rng() % 2) ? p : 0.0; };
  two_node_knobs k;
  k.conversations = 2 + rng() % 3;
  k.clients = 2 + rng() % 5;
  k.messages = 3 + rng() % 10;
  k.window = 1 + rng() % 4;
  k.p_duplicate = pick(0.2);
  k.p_store_fail = pick(0.02 + (rng() % 5) / 100.0);
  k.p_conv_crash = pick(0.002);
  k.p_fire_timer = std::vector<double>{0, 0.05}[rng() % 2];
  k.max_hop_delay_ms = std::vector<int64_t>{0, 5, 50}[rng() % 3];
  k.link_breaks = rng() % 2;
  k.node_crashes = 0; // a move across node crashes is the next issue's
  k.faulty_steps = 300 + rng() % 1500;
  return k;
}

/// Runs one seed; `bugs` plants one (1: no writer fence, 2: no tail).
std::string move_run(uint64_t seed, int bugs = 0, move_log* out = nullptr) {
  auto k = draw_knobs(seed);
  two_node_world w{seed, k};
  std::mt19937_64 rng{seed ^ 0x4D0FEull};
  move_plan m;
  auto used = std::min<size_t>(w.convs.size(), size_t(k.clients));
  m.conv = w.convs[rng() % used];
  m.partition = partition_of(placement_key::conversation(m.conv),
                             w.map.partitions());
  m.from = w.map.owner(m.partition);
  m.to = m.from == 1 ? 2 : 1;
  m.after = w.map;
  m.after.map_epoch += 1;
  m.after.owners[m.partition] = m.to;
  m.delay = rng() % 150;
  m.chunk = 1 + rng() % 12;
  m.writer_fence = bugs != 1;
  m.tail = bugs != 2;
  auto log = std::make_shared<move_log>();
  w.on_step = [&w, m, log, started = false](caf::actor_system& sys) mutable {
    if (started || !w.faults_on)
      return;
    started = true;
    spawn_mover(sys, &w, m, log);
  };
  w.k.check_at_end = false; // the checks below
  auto why = w.run_all();
  log->steps = w.steps;
  log->trace = w.trace_hash;
  if (out)
    *out = *log;
  if (!why.empty())
    return why;
  // The swarm's invariants over each conversation's owner's store (the new
  // owner's for the moved ones), with one exception: the order of fresh
  // answers is one actor's, and a moved conversation had two (an answer of
  // the old owner may still cross the link when the new one answers a
  // later send). Every member's inbox row, on the owner of the user's
  // partition (the new owner for moved users), equals a recount from the
  // log (two_node_world::check_unread).
  std::set<std::string> expected;
  for (int c = 0; c < k.clients; ++c)
    for (int i = 0; i < k.messages; ++i)
      expected.insert("c" + std::to_string(c) + "-m" + std::to_string(i));
  std::map<conversation_id, kv_backend*> disks;
  for (auto conv : w.convs)
    disks[conv] = w.at(w.owner_of(conv)).disk.get();
  auto fresh = w.fresh_answers;
  for (auto i = fresh.begin(); i != fresh.end();)
    if (partition_of(placement_key::conversation(std::get<2>(i->first)),
                     w.map.partitions())
        == m.partition)
      i = fresh.erase(i);
    else
      ++i;
  why = check_send_log(expected, disks, w.outcomes, fresh, w.deliveries);
  if (!why.empty())
    return why;
  why = w.check_unread();
  if (!why.empty())
    return why;
  for (auto& [cmid, o] : w.outcomes)
    if (partition_of(placement_key::conversation(o.conv), w.map.partitions())
        == m.partition)
      for (auto& e : o.errors)
        log->unavailable += is(e, errc::unavailable) ? 1 : 0;
  if (out)
    out->unavailable = log->unavailable;
  if (!log->error.empty())
    return log->error;
  if (log->at != phase::done)
    return "the move did not finish (phase "
           + std::to_string(static_cast<int>(log->at)) + ")";
  auto now = read_range(*w.at(m.from).disk, m.partition, w.map.partitions());
  if (now != log->frozen) {
    std::string tables; // of the keys that changed
    auto note = [&](const std::string& key) {
      auto t = keys::table_of(key);
      if (tables.find(t) == std::string::npos)
        tables.push_back(t);
    };
    for (auto& [key, v] : now)
      if (auto i = log->frozen.find(key);
          i == log->frozen.end() || i->second != v)
        note(key);
    for (auto& [key, v] : log->frozen)
      if (now.count(key) == 0)
        note(key);
    return "the old owner's range changed after the fence ("
           + std::to_string(log->frozen.size()) + " keys then, "
           + std::to_string(now.size()) + " now; tables '" + tables + "')";
  }
  for (auto& [cmid, n] : log->answers_at_switch) {
    auto& o = w.outcomes[cmid];
    if (o.answers.size() <= n)
      return cmid + ": its retry after the move was never answered";
    for (auto i = n; i < o.answers.size(); ++i)
      if (!o.answers[i].deduplicated)
        return cmid + ": a retry after the move was sent anew (seq "
               + std::to_string(o.answers[i].server_sequence) + ")";
  }
  return {};
}

struct move_totals {
  uint64_t runs = 0, chunks = 0, tail_puts = 0, tail_erases = 0,
           failed_writes = 0, late_retries = 0, unavailable = 0;
};

} // namespace

TEST_CASE("sim: a partition moves to the other node in the middle of "
          "traffic without a loss or a duplicate") {
  move_totals t;
  for_each_seed("sim: a partition moves*", 300000, 400, [&](uint64_t seed) {
    move_log log;
    auto why = move_run(seed, 0, &log);
    ++t.runs;
    t.chunks += log.chunks;
    t.tail_puts += log.tail_puts;
    t.tail_erases += log.tail_erases;
    t.failed_writes += log.failed_writes;
    t.late_retries += log.answers_at_switch.size();
    t.unavailable += log.unavailable;
    return why;
  });
  MESSAGE("partition moves: " << t.runs << " runs, " << t.chunks
                              << " chunks, tail passes wrote "
                              << t.tail_puts << " puts and " << t.tail_erases
                              << " erases, " << t.failed_writes
                              << " chunk writes failed and retried, "
                              << t.late_retries
                              << " sends retried after the move, "
                              << t.unavailable
                              << " unavailable errors on the moved "
                                 "partition");
  if (std::getenv("PARLEY_SIM_SEEDS") == nullptr) {
    CHECK(t.tail_puts > 0); // traffic happened between stream and fence
    CHECK(t.late_retries > 0);
    CHECK(t.unavailable > 0); // the move was felt, retryably
  }
}

TEST_CASE("sim: a partition move from a random start seed") {
  auto start = (uint64_t{std::random_device{}()} << 20) + 5'000'000;
  MESSAGE("random start seed " << start);
  for_each_seed("sim: a partition move from*", start, 200,
                [](uint64_t seed) { return move_run(seed); });
}

TEST_CASE("sim: a partition move seed replays exactly") {
  for_each_seed("sim: a partition move seed*", 310000, 30, [](uint64_t seed) {
    move_log a, b;
    auto why_a = move_run(seed, 0, &a);
    std::vector<std::string> churn(1000, std::string(64, 'x'));
    auto why_b = move_run(seed, 0, &b);
    if (why_a != why_b || a.steps != b.steps || a.trace != b.trace
        || a.chunks != b.chunks)
      return "two runs differ: " + std::to_string(a.steps) + " / "
             + std::to_string(b.steps) + " steps";
    return why_a;
  });
}

TEST_CASE("sim: a partition move without the writer fence or without the "
          "tail pass fails") {
  for (int bug : {1, 2}) {
    int failed = 0, lost = 0;
    std::string first;
    uint64_t n = 200;
    if (auto e = std::getenv("PARLEY_MOVE_PLANTED_SEEDS"))
      n = std::strtoull(e, nullptr, 10);
    for (uint64_t seed = 300000; seed < 300000 + n; ++seed) {
      auto why = move_run(seed, bug);
      if (!why.empty() && why.find("range changed") == std::string::npos
          && lost++ == 0) // a send-log violation, not only the range's
        first += "\n  first on the send log: seed=" + std::to_string(seed)
                 + ": " + why;
      if (!why.empty() && failed++ < 3)
        first += "\n  seed=" + std::to_string(seed) + ": " + why;
    }
    MESSAGE("planted bug " << bug << ": " << failed << " of " << n
                           << " seeds fail, " << lost
                           << " of them on the send log:" << first);
    CHECK(failed > 0);
    CHECK(lost > 0); // a loss or a duplicate, not only the range's check
  }
}
