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

#include "actors/outbox_relay.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/partition_move.hpp"
#include "two_node_actors.hpp"
#include "two_node_world.hpp"

using namespace parley;
using namespace parley::sim;

namespace {

using records = std::map<std::string, std::string>;

/// What the mover does, drawn from the seed; two planted bugs.
struct move_plan {
  conversation_id conv = 0; ///< a conversation of the moving partition
  uint32_t partition = 0;
  node_id from = 0, to = 0;
  partition_map after;  ///< the map without the partition on `from`
  uint64_t delay = 0;   ///< mover turns before the stream starts
  size_t chunk = 1;     ///< keys per chunk
  bool writer_fence = true; ///< planted bug when false: directory only
  bool tail = true;         ///< planted bug when false: no tail pass
};

enum class phase { waiting, streaming, fencing, tailing, switching, done };

/// What the mover saw, for the checks.
struct move_log {
  phase at = phase::waiting;
  store::move_cursor cur;
  int pending = 0;   ///< map requests not answered yet
  bool fenced = false;
  records frozen;    ///< the old owner's range once the fence held
  uint64_t chunks = 0, tail_puts = 0, tail_erases = 0, failed_writes = 0;
  /// unavailable errors senders of the moved partition saw (retried).
  uint64_t unavailable = 0;
  uint64_t steps = 0, trace = 0; ///< the run's, for the replay check
  std::map<std::string, size_t> answers_at_switch; ///< moved, answered
  std::string error;
};

records read_range(kv_backend& kv, uint32_t p, uint32_t partitions) {
  records out;
  auto err = store::read_partition(kv, p, partitions,
                                   [&](std::string_view k, std::string_view v) {
                                     out.emplace(std::string(k),
                                                 std::string(v));
                                     return true;
                                   });
  REQUIRE(!err);
  return out;
}

/// One chunk of the current pass into the new owner's store (a failed
/// write is tried again on the next turn). True once the pass is done.
bool mirror_once(two_node_world& w, const move_plan& m, move_log& log,
                 bool tail) {
  auto chunk = store::mirror_chunk(*w.at(m.from).disk, *w.at(m.to).disk,
                                   log.cur, m.chunk);
  if (!chunk) {
    log.error = "mirror_chunk: " + caf::to_string(chunk.error());
    return true;
  }
  if (!chunk->batch.empty()) {
    if (auto err = w.at(m.to).disk->write(chunk->batch, true)) {
      ++log.failed_writes;
      return false;
    }
  }
  ++log.chunks;
  if (tail) {
    log.tail_puts += chunk->puts;
    log.tail_erases += chunk->erases;
  }
  log.cur = chunk->after;
  return log.cur.done;
}

/// Hands node `n`'s directory (and writer, if `writer`) the map `m.after`;
/// `then` runs once every answer is in.
void hand_map(caf::event_based_actor* self, two_node_world& w,
              const move_plan& m, std::shared_ptr<move_log> log, node_id n,
              bool writer, std::function<void()> then) {
  log->pending = writer ? 2 : 1;
  auto done = [log, then](uint64_t) {
    if (--log->pending == 0)
      then();
  };
  auto fail = [log](caf::error& err) {
    log->error = "map refused: " + caf::to_string(err);
  };
  self->request(w.at(n).directory, caf::infinite, caf::put_atom::value,
                m.after)
    .then(done, fail);
  if (writer)
    self->request(w.at(n).writer, caf::infinite, caf::put_atom::value, n,
                  m.after)
      .then(done, fail);
}

/// The mover: one action per turn (a message to itself), so the random
/// schedule interleaves the move with the traffic.
caf::behavior mover(caf::event_based_actor* self, two_node_world* w,
                    move_plan m, std::shared_ptr<move_log> log) {
  auto again = [self] { self->send(self, caf::tick_atom::value); };
  self->send(self, caf::tick_atom::value);
  return {
    [=](caf::tick_atom) mutable {
      auto parts = w->map.partitions();
      switch (log->at) {
        case phase::waiting:
          if (m.delay > 0) {
            --m.delay;
            break;
          }
          // The old owner's writer learns what it owns (the first map
          // fences nothing), then the stream starts.
          self->request(w->at(m.from).writer, caf::infinite,
                        caf::put_atom::value, m.from, w->map)
            .then([](uint64_t) {},
                  [log](caf::error& err) {
                    log->error = "first map refused: " + caf::to_string(err);
                  });
          log->cur = store::start_pass(m.partition, parts);
          log->at = phase::streaming;
          break;
        case phase::streaming:
          if (!mirror_once(*w, m, *log, false))
            break;
          log->at = phase::fencing;
          hand_map(self, *w, m, log, m.from, m.writer_fence, [=] {
            log->fenced = true;
            log->frozen = read_range(*w->at(m.from).disk, m.partition, parts);
            log->cur = store::start_pass(m.partition, parts);
            log->at = m.tail ? phase::tailing : phase::switching;
            self->send(self, caf::tick_atom::value);
          });
          return; // the answers go on
        case phase::tailing:
          if (!mirror_once(*w, m, *log, true))
            break;
          log->at = phase::switching;
          break;
        case phase::switching: {
          w->map = m.after;
          for (auto& [cmid, o] : w->outcomes)
            if (partition_of(placement_key::conversation(o.conv), parts)
                  == m.partition
                && !o.answers.empty())
              log->answers_at_switch[cmid] = o.answers.size();
          hand_map(self, *w, m, log, m.to, true, [=] {
            log->at = phase::done;
            // Sends accepted before the move, retried after it from
            // either node with the same clientMessageId.
            std::map<std::pair<conversation_id, user_id>, routed_plan> late;
            for (auto& [cmid, n] : log->answers_at_switch) {
              auto& o = w->outcomes[cmid];
              auto& plan = late[{o.conv, o.user}];
              plan.home = 1 + (o.user + cmid.size()) % 2;
              plan.conv = o.conv;
              plan.user = o.user;
              plan.cmids.push_back(cmid);
            }
            for (auto& [key, plan] : late)
              spawn_routed_client(self->system(), w, plan);
            // The new owner activates the partition's conversations whose
            // outbox is not drained (as at a node's start).
            self->system().spawn(outbox_relay_impl, w->at(m.to).reader,
                                 w->at(m.to).directory);
            self->quit();
          });
          return;
        }
        case phase::fencing:
        case phase::done:
          return;
      }
      if (!log->error.empty())
        return;
      again();
    },
  };
}

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
    sys.spawn(mover, &w, m, log);
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
  // later send). The inbox check is left out: a user's inbox rows live
  // with the conversation's node today, not in the user's partition.
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
