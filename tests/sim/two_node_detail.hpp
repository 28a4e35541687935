#pragma once

// Small helpers shared by the two-node world's files.

#include <chrono>
#include <cstdint>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/directory.hpp"
#include "actors/store_writer.hpp"

namespace parley::sim {

inline caf::scheduler::test_coordinator& coordinator(caf::actor_system& sys) {
  return dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
}

inline void fnv(uint64_t& h, uint64_t x) {
  for (int i = 0; i < 8; ++i) {
    h ^= (x >> (i * 8)) & 0xFF;
    h *= 1099511628211ull;
  }
}

inline node_id other(node_id n) {
  return n == 1 ? 2 : 1;
}

/// Milliseconds since the clock's epoch (virtual time in traces).
inline int64_t ms_of(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           t.time_since_epoch())
    .count();
}

/// The store writer's state (the lease the sim reads at each write).
inline const store_writer_state& writer_state(const store_writer_actor& w) {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(w);
  return dynamic_cast<caf::stateful_actor<store_writer_state,
                                          store_writer_actor::base>&>(*ptr)
    .state;
}

inline directory_state& state_of(const directory_actor& dir) {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(dir);
  return dynamic_cast<caf::stateful_actor<directory_state,
                                          directory_actor::base>&>(*ptr)
    .state;
}

} // namespace parley::sim
