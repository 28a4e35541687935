// The seed-driven swarm over two simulated nodes (two_node_world.hpp):
// routed sends across a serializing link that delays, breaks and drops,
// node crashes that lose unsynced writes, and the one-node swarm's
// invariants over both stores. A failure prints the seed and the line that
// replays it.

#include <doctest/doctest.h>

#include <cstdlib>
#include <functional>
#include <utility>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "coordinated_system.hpp"
#include "two_node_world.hpp"

/// A message type that cannot cross a node: no type id, no inspect.
struct local_only {
  std::shared_ptr<int> p;
};
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(local_only)

using namespace parley;
using namespace parley::sim;

namespace {

/// A two-node run's knobs, drawn from the seed, about half the faults off
/// so that no fault mix drowns another.
two_node_knobs draw_knobs(uint64_t seed) {
  std::mt19937_64 knob_rng{seed ^ 0x2A0DE5EEDull};
  auto pick = [&](double p) { return (knob_rng() % 2) ? p : 0.0; };
  two_node_knobs k;
  k.conversations = 2 + knob_rng() % 3;
  k.clients = 1 + knob_rng() % 6;
  k.messages = 1 + knob_rng() % 12;
  k.window = 1 + knob_rng() % 4;
  k.p_duplicate = pick(0.2);
  k.p_read = pick(0.5);
  k.p_store_fail = pick(0.02 + (knob_rng() % 10) / 100.0);
  k.p_conv_crash = pick(0.002);
  k.p_time_jump = pick(0.01);
  k.p_fire_timer = std::vector<double>{0, 0.05, 0.3}[knob_rng() % 3];
  k.max_hop_delay_ms = std::vector<int64_t>{0, 5, 50}[knob_rng() % 3];
  k.link_breaks = knob_rng() % 3;
  k.node_crashes = knob_rng() % 3;
  k.power_loss = knob_rng() % 4 != 0;
  k.faulty_steps = 300 + knob_rng() % 2000;
  // Leases in three seeds of four (the fourth: a node without a cluster).
  k.leases = knob_rng() % 4 != 0;
  k.cp_outages = k.leases ? knob_rng() % 4 : 0;
  return k;
}

std::string two_node_swarm_run(uint64_t seed) {
  two_node_world w{seed, draw_knobs(seed)};
  return w.run_all();
}

/// Runs seeds [first, first + count) with `plant` applied to their knobs;
/// returns how many failed and the first three violations.
std::pair<int, std::string>
planted(uint64_t first, uint64_t count,
        const std::function<void(two_node_knobs&)>& plant) {
  int failed = 0;
  std::string first_why;
  for (auto seed = first; seed < first + count; ++seed) {
    auto k = draw_knobs(seed);
    plant(k);
    two_node_world w{seed, k};
    auto why = w.run_all();
    if (!why.empty() && failed++ < 3)
      first_why += "\n  seed=" + std::to_string(seed) + ": " + why;
  }
  return {failed, first_why};
}

} // namespace

TEST_CASE("sim: two-node swarm keeps sends exactly-once and gapless across a "
          "serializing link that delays, breaks and drops, and node crashes") {
  for_each_seed("sim: two-node swarm*", 50000, 1000, two_node_swarm_run);
  auto& t = two_node_grand_totals();
  MESSAGE("two-node: " << t.runs << " runs, " << t.steps << " steps, "
                       << t.answers << " answers (" << t.remote_answers
                       << " from the other node, " << t.tagged_answers
                       << " to tagged sends), " << t.errors
                       << " errors (" << t.timeouts << " timeouts), "
                       << t.node_crashes << " node crashes ("
                       << t.lost_unsynced << " unsynced writes lost), link: "
                       << t.hop_sent << " sent, " << t.hop_delivered
                       << " delivered, " << t.hop_dropped << " dropped, "
                       << t.hop_bytes << " bytes; syncs after heal: "
                       << t.synced_devices << " equal to the log ("
                       << t.synced_across << " across the link, "
                       << t.synced_apart
                       << " of a user placed apart from its conversation), "
                          "none skipped; "
                       << t.stale_inbox_rows
                       << " inbox rows behind the log at the end; leases in "
                       << t.lease_runs << " runs: " << t.cp_outages
                       << " control-plane outages, " << t.fenced_windows
                       << " fenced windows (all live again after heal), "
                       << t.lease_regrants << " leases granted again, "
                       << t.fence_refusals << " sends refused by the fence, "
                       << t.watermarks_fenced_off
                       << " idle outbox watermarks the fence dropped, "
                       << t.lease_writes << " writes into owned partitions ("
                       << t.writes_in_margin
                       << " after the fence deadline, within the margin), "
                          "none while fenced; "
                       << t.writes_past_lease
                       << " past the lease after a stall (counted here; "
                          "failed with lease_deadline; longest "
                       << t.max_past_lease_ms << " ms past; first: "
                       << t.first_past_lease << ")");
  if (std::getenv("PARLEY_SIM_SEEDS") == nullptr) { // not a replay
    CHECK(t.remote_answers > 0);
    CHECK(t.tagged_answers > 0);
    CHECK(t.timeouts > 0);
    CHECK(t.synced_across > 0);
    CHECK(t.synced_apart > 0);
    CHECK(t.hop_dropped > 0);
    CHECK(t.lost_unsynced > 0);
    CHECK(t.fenced_windows > 0);
    CHECK(t.fence_refusals > 0);
  }
}

TEST_CASE("sim: two-node swarm from a random start seed") {
  // A fixed range guards against regressions; a fresh range each run keeps
  // looking for new interleavings. The start is printed, and a failure
  // prints its own seed.
  auto start = (uint64_t{std::random_device{}()} << 20) + 2'000'000;
  MESSAGE("random start seed " << start);
  for_each_seed("sim: two-node swarm from*", start, 200, two_node_swarm_run);
}

TEST_CASE("sim: a two-node seed replays exactly") {
  // The same seed twice in one process, with heap churn between, must take
  // the same steps: a failing seed's replay line reproduces it.
  for_each_seed("sim: a two-node seed*", 70000, 40, [](uint64_t seed) {
    auto once = [seed](std::string& why) {
      two_node_world w{seed, draw_knobs(seed)};
      why = w.run_all();
      return std::make_tuple(w.trace_hash, w.steps, w.outcomes.size(),
                             w.deliveries.size());
    };
    std::string why1, why2;
    auto a = once(why1);
    std::vector<std::unique_ptr<std::string>> churn;
    for (int i = 0; i < 1000; ++i)
      churn.push_back(std::make_unique<std::string>(size_t(i % 97), 'x'));
    auto b = once(why2);
    if (a != b || why1 != why2)
      return "two runs differ: steps " + std::to_string(std::get<1>(a))
             + " vs " + std::to_string(std::get<1>(b));
    return why1;
  });
}

TEST_CASE("sim: the two-node swarm fails on planted bugs: a link that "
          "reorders, stores that acknowledge writes before they are synced") {
  auto [reordered, why1] = planted(80000, 300, [](two_node_knobs& k) {
    k.link_reorders = true;
    k.link_breaks = 0;
    k.heal_steps = 50'000;
  });
  MESSAGE("reordering link: " << reordered << " of 300 seeds failed; " << why1);
  CHECK(reordered > 0);
  auto [unsynced, why2] = planted(81000, 300, [](two_node_knobs& k) {
    k.disk_ignores_sync = true;
    k.power_loss = true;
    k.node_crashes = 2;
    k.heal_steps = 50'000; // lost acked writes can also wedge a run
  });
  MESSAGE("acks before sync: " << unsynced << " of 300 seeds failed; "
                               << why2);
  CHECK(unsynced > 0);
}

TEST_CASE("sim: two-node swarm with leases on every seed and three "
          "control-plane outages each, half of the seeds without stalls") {
  // Without stalls (no time jumps, no timers fired while work waits) the
  // lease fence must reach the writer before its lease could lapse,
  // always; with them, the writer may run before the fence message, and
  // the published deadline must stop it from accepting anything more.
  for_each_seed("sim: two-node swarm with leases*", 83000, 300,
                [](uint64_t seed) {
                  auto k = draw_knobs(seed);
                  k.leases = true;
                  k.cp_outages = 3;
                  if (seed % 2 == 0) {
                    k.p_time_jump = 0;
                    k.p_fire_timer = 0;
                  }
                  two_node_world w{seed, k};
                  return w.run_all();
                });
}

TEST_CASE("sim: the two-node swarm's lease checks fail on a planted bug: "
          "the lease forwarder never sends the fence") {
  // Strict runs: no stalls (no time jumps, no timers fired while work
  // waits), so a writer still live past its lease is a bug, never the
  // race of a stopped process.
  auto [unfenced, why] = planted(82000, 100, [](two_node_knobs& k) {
    k.leases = true;
    k.cp_outages = 3;
    k.lease_fence_never_sent = true;
    k.p_time_jump = 0;
    k.p_fire_timer = 0;
  });
  MESSAGE("fence never sent: " << unfenced << " of 100 seeds failed; "
                               << why);
  CHECK(unfenced > 0);
}

TEST_CASE("sim: two-node swarm with the lease deadline wired: nothing "
          "accepted past the published deadline, nothing lands past the "
          "lease after a stall") {
  // The writer checks the published deadline (as parleyd's lease thread
  // publishes it) at each commit and again at each write: a commit
  // accepted before the deadline but not written by then is refused with
  // its batch. Before that second check this failed on 49 of 300 seeds and
  // aborted 7 ("committed after roll-back": a commit written after a later
  // one of its conversation was refused).
  for_each_seed("sim: two-node swarm with the lease deadline*", 50000, 1000,
                [](uint64_t seed) {
                  auto k = draw_knobs(seed);
                  k.lease_deadline = true;
                  two_node_world w{seed, k};
                  return w.run_all();
                });
}

TEST_CASE("sim: the two-node swarm's lease checks fail on a planted bug: "
          "the writer is not given the lease deadline") {
  // Runs with stalls (time jumps, timers fired while work waits): a writer
  // that only the fence message stops accepts writes past its deadline
  // when virtual time jumps past it and the writer runs first.
  auto [outran, why] = planted(84000, 300, [](two_node_knobs& k) {
    k.leases = true;
    k.cp_outages = 3;
    k.lease_deadline = true;
    k.lease_deadline_not_given = true;
    k.p_time_jump = 0.05;
    k.p_fire_timer = 0.3;
  });
  MESSAGE("lease deadline not wired: " << outran << " of 300 seeds failed; "
                                       << why);
  CHECK(outran > 0);
  CHECK(why.find("past its published fence deadline") != std::string::npos);
}

TEST_CASE("sim: the link carries a request and its answer serialized, with "
          "ports for the senders, and refuses a type it cannot serialize") {
  coordinated_system cs;
  auto& sys = *cs.sys;
  std::mt19937_64 rng{1};
  hop_net net{sys, [&] { return std::uniform_real_distribution<double>{0, 1}(rng); }};
  net.max_delay_ms = 10;
  caf::actor_id asker_id = 0;
  caf::actor_id seen_sender = 0;
  auto target = sys.spawn([&](caf::event_based_actor* self) {
    return caf::behavior{[&, self](const std::string& s) {
      seen_sender = self->current_sender()->id();
      return s + " pong";
    }};
  });
  net.set_directory(2, caf::actor_cast<caf::strong_actor_ptr>(target));
  auto port = net.directory_port(1, 2);
  std::string answer;
  auto asker = sys.spawn([&](caf::event_based_actor* self) {
    asker_id = self->id();
    self->request(port, std::chrono::seconds(10), std::string("ping"))
      .then([&](std::string& s) { answer = s; });
  });
  auto drain = [&] {
    for (int i = 0; i < 1000; ++i) {
      cs.sched->run();
      if (!cs.sched->trigger_timeout())
        break;
    }
  };
  drain();
  CHECK_EQ(answer, "ping pong");
  CHECK(seen_sender != 0);
  CHECK(seen_sender != asker_id); // the target saw a port, not the asker
  CHECK_EQ(net.stats.delivered, 2u); // the request and the answer
  CHECK(net.violations.empty());
  caf::anon_send(port, local_only{std::make_shared<int>(1)});
  drain();
  REQUIRE_EQ(net.violations.size(), 1u);
  MESSAGE(net.violations.front());
  CHECK_EQ(net.stats.delivered, 2u);
  net.clear();
  caf::anon_send_exit(target, caf::exit_reason::kill);
  caf::anon_send_exit(asker, caf::exit_reason::kill);
  cs.sched->run();
}
