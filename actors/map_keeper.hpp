#pragma once

// map_keeper: the node's map keeper, the one node-level call for a new
// partition map (runtime/core/placement.hpp). It holds the node's current
// map and hands a newer one to every actor of the node that routes or
// fences by it (its subscribers), one after the other in a fixed order,
// and answers once all of them have taken it.
//
// Order (node.cpp): the store writer first, then the actors that serve a
// partition's users and conversations (device registry, directory; the
// inbox and accounts actors once they take a map), then the fan-out, which
// only routes to other nodes. One rule for both directions of a move:
// - Giving a partition up: the writer fences it before anything on this
//   node believes another node owns it. Its answer comes after everything
//   accepted before it is written; from then on nothing of the partition
//   is written here. So by the time the directory forwards a
//   conversation's requests to the new owner, this node's old actor of it
//   can no longer commit (no two sequencers of one conversation, each
//   writing its own store), and a move's tail copy after this call sees
//   everything that was written here.
// - Taking a partition (back): the writer lifts its fence before the
//   directory spawns conversations there (their commits would be refused
//   otherwise), and the registry serves the partition's users before this
//   node's fan-out sends it their batches (they would be refused).
//
// Epochs: a map of an older or the same epoch changes nothing and is
// answered with the current epoch; the same epoch first hands the map to
// subscribers that have not confirmed it yet (a repeat of a call that
// failed). A subscriber answers with the epoch it holds; one that answers
// conflict holds this epoch or a newer one (the keeper is the node's only
// source of maps) and counts as having taken it.
//
// Failure: each hand-out waits at most `timeout`. A subscriber that does
// not answer (or fails) ends the call with errc::unavailable (retryable)
// naming it; those before it keep the new map, the later ones have not
// been handed it yet (the order holds across a failure). Repeating the
// call (same map) goes on where it stopped; a newer map supersedes it.
// Calls are served one at a time, in arrival order.
//
// At spawn the keeper hands its map to every subscriber not known to hold
// it (the store writer starts without one; its first map fences nothing,
// so it must learn what it owns before the first change).

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/store_writer.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley {

/// An actor that takes a partition map and replies the epoch it holds
/// (directory, device registry, fan-out, ...).
using map_taker_actor = caf::typed_actor<
  caf::replies_to<caf::put_atom, partition_map>::with<uint64_t>>;

using map_keeper_actor = caf::typed_actor<
  /// Hands `next` to every subscriber, in order; replies its epoch once
  /// all have taken it (see above). Errors: unavailable (a subscriber did
  /// not take it: ask again), bad_request (invalid map, another partition
  /// count).
  caf::replies_to<caf::put_atom, partition_map>::with<uint64_t>,
  /// The current map (the newest accepted, handed out or not).
  caf::replies_to<caf::get_atom>::with<partition_map>>;

/// One subscriber: a map taker, or the store writer (which takes the node
/// id with the map). `taken`: the epoch it is known to hold at spawn.
struct map_subscriber {
  std::string name;
  map_taker_actor taker;
  store_writer_actor writer;
  uint64_t taken = 0;

  static map_subscriber of(std::string name, map_taker_actor hdl,
                           uint64_t taken) {
    return {std::move(name), std::move(hdl), {}, taken};
  }
  static map_subscriber of_writer(store_writer_actor hdl, uint64_t taken = 0) {
    return {"store writer", {}, std::move(hdl), taken};
  }
};

struct map_keeper_deps {
  std::vector<map_subscriber> subscribers; ///< in hand-out order
  caf::timespan timeout = timeouts::commit; ///< per subscriber
};

struct map_keeper_state {
  struct call {
    partition_map next;
    std::optional<caf::typed_response_promise<uint64_t>> rp; ///< none: spawn
  };

  placement where;
  map_keeper_deps deps;
  std::deque<call> calls; ///< waiting, oldest first
  bool busy = false;      ///< a hand-out is under way
  uint64_t handed = 0;    ///< hand-outs answered (tests)

  static inline const char* name = "map_keeper";
};

/// The keeper of node `where.self`, holding `where.map`.
map_keeper_actor::behavior_type
map_keeper_impl(map_keeper_actor::stateful_pointer<map_keeper_state> self,
                placement where, map_keeper_deps deps);

} // namespace parley
