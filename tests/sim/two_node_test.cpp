// The seed-driven swarm over two simulated nodes (two_node_world.hpp):
// routed sends across a serializing link that delays, breaks and drops,
// node crashes that lose unsynced writes, and the one-node swarm's
// invariants over both stores. A failure prints the seed and the line that
// replays it.

#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "two_node_world.hpp"

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
  k.p_store_fail = pick(0.02 + (knob_rng() % 10) / 100.0);
  k.p_conv_crash = pick(0.002);
  k.p_time_jump = pick(0.01);
  k.p_fire_timer = std::vector<double>{0, 0.05, 0.3}[knob_rng() % 3];
  k.max_hop_delay_ms = std::vector<int64_t>{0, 5, 50}[knob_rng() % 3];
  k.link_breaks = knob_rng() % 3;
  k.node_crashes = knob_rng() % 3;
  k.power_loss = knob_rng() % 4 != 0;
  k.faulty_steps = 300 + knob_rng() % 2000;
  return k;
}

std::string two_node_swarm_run(uint64_t seed) {
  two_node_world w{seed, draw_knobs(seed)};
  return w.run_all();
}

} // namespace

TEST_CASE("sim: two-node swarm keeps sends exactly-once and gapless across a "
          "serializing link that delays, breaks and drops, and node crashes") {
  for_each_seed("sim: two-node swarm*", 50000, 1000, two_node_swarm_run);
  auto& t = two_node_grand_totals();
  MESSAGE("two-node: " << t.runs << " runs, " << t.steps << " steps, "
                       << t.answers << " answers (" << t.remote_answers
                       << " from the other node), " << t.errors
                       << " errors, " << t.node_crashes << " node crashes ("
                       << t.lost_unsynced << " unsynced writes lost), link: "
                       << t.hop_sent << " sent, " << t.hop_delivered
                       << " delivered, " << t.hop_dropped << " dropped, "
                       << t.hop_bytes << " bytes");
  if (std::getenv("PARLEY_SIM_SEEDS") == nullptr) { // not a replay
    CHECK(t.remote_answers > 0);
    CHECK(t.hop_dropped > 0);
    CHECK(t.lost_unsynced > 0);
  }
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
