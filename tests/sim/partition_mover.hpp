#pragma once

// The partition move test's mover (partition_move_test.cpp): an actor in
// the two-node world that moves one partition to the other node step by
// step (runtime/store/partition_move.hpp), one action per turn, so the
// random schedule interleaves the move with the traffic; and what it saw.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "runtime/core/placement.hpp"
#include "runtime/store/kv_backend.hpp"
#include "runtime/store/partition_move.hpp"
#include "two_node_world.hpp"

namespace parley::sim {

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

/// The records of partition `p` of `partitions` in `kv`.
records read_range(kv_backend& kv, uint32_t p, uint32_t partitions);

/// Spawns the mover of `m` in `w`; it reports to `log`.
caf::actor spawn_mover(caf::actor_system& sys, two_node_world* w,
                       move_plan m, std::shared_ptr<move_log> log);

} // namespace parley::sim
