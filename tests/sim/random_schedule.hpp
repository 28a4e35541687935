#pragma once

// Seed-chosen interleavings under CAF's test coordinator (see
// shared/notes/simulation.md, "Harness"). The coordinator resumes an actor
// for one message and puts an actor with more at the front again, so every
// step picks anew: the runnable actors are sorted by actor id (their queue
// order can depend on addresses, e.g. a group broadcast), and the seed's
// generator picks one. Each actor's mailbox stays FIFO, as CAF guarantees;
// only which actor goes next is the seed's. The send-path swarm
// (sim_world.cpp) and the receipts and inbox sims schedule with this.
//
// Nothing here fires timers: virtual time moves only where a test says so.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>

#include <caf/abstract_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>

namespace parley::sim {

/// Runs one message of the runnable actor `rng` picks (in actor-id order);
/// returns that actor's id, or 0 (no actor has id 0) when none is runnable.
inline caf::actor_id run_one_random(caf::scheduler::test_coordinator& sched,
                                    std::mt19937_64& rng) {
  auto& jobs = sched.jobs;
  if (jobs.empty())
    return 0;
  auto id_of = [](caf::resumable* r) {
    return dynamic_cast<caf::abstract_actor*>(r)->id();
  };
  std::stable_sort(jobs.begin(), jobs.end(),
                   [&](auto* a, auto* b) { return id_of(a) < id_of(b); });
  auto i = rng() % jobs.size();
  std::rotate(jobs.begin(), jobs.begin() + i, jobs.begin() + i + 1);
  auto id = id_of(jobs.front());
  sched.run_once();
  return id;
}

/// True if the actor `id` has messages waiting (it is among the jobs).
inline bool runnable(const caf::scheduler::test_coordinator& sched,
                     caf::actor_id id) {
  return std::any_of(sched.jobs.begin(), sched.jobs.end(),
                     [id](caf::resumable* r) {
                       return dynamic_cast<caf::abstract_actor*>(r)->id()
                              == id;
                     });
}

/// A fixture's scheduling: FIFO (CAF's `run()`) without a seed, or one
/// seed-picked actor per step with one. It hashes the actors it picked
/// (FNV-1a), so tests can count the distinct interleavings of their seeds.
struct interleaver {
  caf::scheduler::test_coordinator* sched;
  std::optional<std::mt19937_64> rng; ///< empty: FIFO
  uint64_t trace = 1469598103934665603ull;
  uint64_t steps = 0;

  explicit interleaver(caf::scheduler::test_coordinator* s) : sched(s) {
  }

  /// A stream of its own for `seed` (apart from the workload's generator).
  void randomize(uint64_t seed) {
    rng.emplace(seed * 0x9E3779B97F4A7C15ull + 1);
  }

  /// Runs up to `max_steps` messages, fewer once no actor is runnable;
  /// returns how many ran.
  size_t run(size_t max_steps = std::numeric_limits<size_t>::max()) {
    size_t n = 0;
    for (; n < max_steps && sched->has_job(); ++n) {
      if (!rng) {
        sched->run_once();
        continue;
      }
      auto id = run_one_random(*sched, *rng);
      for (int i = 0; i < 8; ++i) {
        trace ^= (id >> (i * 8)) & 0xFF;
        trace *= 1099511628211ull;
      }
    }
    steps += n;
    return n;
  }
};

} // namespace parley::sim
