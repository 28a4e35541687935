#pragma once

// Large-group fan-out, apart from 1:1 and small-group traffic (a bulkhead).
//
// A conversation whose group has more members than
// `parley.large-group-members` emits its messages to the `fanout` actor
// instead of the device registry. `fanout` splits the members at its
// sequence into slices by user (user % shards: each `fanout_shard` owns a
// fixed slice of every group's membership) and hands each slice to its
// shard. A shard groups its slice by the node owning each user's partition
// (partition_of(placement_key::user(u), P), then the partition map, as the
// directory routes conversations) and sends that node's device registry one
// plain message per batch of at most batch_users users (of any of the
// node's partitions): (fanout_atom, stored_message, user ids). The registry
// hands the message to each connected device actor of those users except
// the sending device; a batch with a user of a partition it does not own
// (a stale map) is refused whole (unavailable): those members sync.
// Nothing is shared between threads: shards and registries only exchange
// messages, so a shard may address a registry on another node.
//
// Bulkhead: a shard keeps at most `window` batches in flight, so the
// registry, which also serves 1:1 and small groups, never has more than
// shards * window large-group batches queued ahead of them; shards run on
// threads of their own at a lower CPU priority. Device actors pass a
// large-group message on to their connection's bulk lane.
//
// A shard that fails is replaced and its unfinished slices handed to the
// new one; a device actor passes each large-group message to a connection
// at most once, so every online member device gets each message once.
// Offline devices (and members whose partition has no reachable registry)
// catch up by sync as always.
//
// A newer partition map (put_atom, from the node's map keeper,
// actors/map_keeper.hpp) reaches every shard: batches from then on, and
// those of queued work not sent yet, go to the new owners' registries.

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/delivery.hpp"
#include "actors/device_registry.hpp"
#include "actors/node_metrics.hpp"
#include "runtime/core/placement.hpp"

namespace parley {

using fanout_shard_actor = caf::typed_actor<
  /// Delivers `msg` to the online devices of `users`; replies the
  /// deliveries made once every registry has answered.
  caf::replies_to<fanout_atom, stored_message, std::vector<user_id>>::with<
    uint64_t>,
  /// A newer partition map: batches not sent yet are split again by it,
  /// and every later one follows it. Replies the map's epoch (the current
  /// one again for the same epoch). Errors: conflict (an older epoch),
  /// bad_request.
  caf::replies_to<caf::put_atom, partition_map>::with<uint64_t>,
  /// Sets (null: forgets) the registry of node `n`: batches sent from now
  /// on, queued ones included, for users of that node go to it (none: they
  /// are skipped, and those members sync). Forgetting a node also settles
  /// the batches in flight to it at once (its answers may never come).
  caf::reacts_to<caf::put_atom, node_id, caf::actor>>;

/// Large-group delivery; receipts pass on to `receipts` unchanged.
using fanout_actor = delivery_actor::extend<
  /// The current shards (tests crash them).
  caf::replies_to<caf::get_atom>::with<std::vector<caf::actor>>,
  /// A newer partition map for every shard (and the shards that replace
  /// failed ones); replies its epoch once each shard has taken it. Errors:
  /// unavailable (a shard did not answer in time: ask again, the shards
  /// that took it keep it), conflict (an older epoch), bad_request.
  caf::replies_to<caf::put_atom, partition_map>::with<uint64_t>,
  /// Sets (or, with a null handle, forgets) the device registry of node
  /// `n` (cast to device_registry_actor) for every shard, and the shards
  /// that replace failed ones (the cluster member, from CAF's middleman);
  /// handed to each shard ahead of any later slice. Replies how many
  /// registries are known.
  caf::replies_to<caf::put_atom, node_id, caf::actor>::with<uint64_t>>;

struct fanout_options {
  size_t shards = 2;         ///< threads (or actors) fanning out
  size_t batch_users = 512;  ///< most users in one message to a registry
  size_t window = 4;         ///< batches a shard has in flight at most
  bool own_threads = true;   ///< detached shards (false in simulations)
  int nice = 5;              ///< CPU priority of shard threads (+: lower)
};

struct fanout_deps {
  /// The partition map: which node's registry serves a user.
  placement where = placement::single_node();
  /// The device registry of each node (this node's at spawn; the others
  /// set at run time: put_atom, node_id, actor).
  std::map<node_id, device_registry_actor> registries;
  delivery_actor receipts;               ///< where receipt events go
  std::shared_ptr<node_metrics> metrics; ///< may be null
};

struct fanout_shard_state {
  /// Users of partitions one node owns, for that node's registry.
  struct batch {
    node_id owner = no_node;
    std::vector<user_id> users;
  };
  struct work {
    stored_message msg;
    std::vector<batch> batches;
    size_t next = 0;  ///< batches sent
    size_t open = 0;  ///< sent, not answered
    uint64_t pushed = 0;
    caf::typed_response_promise<uint64_t> rp;
  };
  fanout_deps deps;
  fanout_options opts;
  std::map<uint64_t, work> queue; ///< by arrival
  uint64_t next_work = 1;
  size_t in_flight = 0;
  bool prioritized = false;
  /// A batch sent and not answered yet: its work and its users' node.
  struct sent_batch {
    uint64_t work = 0;
    node_id owner = no_node;
  };
  std::map<uint64_t, sent_batch> sent; ///< by token
  uint64_t next_token = 1;
  /// Users of batches skipped: their node had no known registry.
  uint64_t unrouted = 0;
  /// Batches in flight given up when their node was forgotten.
  uint64_t given_up = 0;

  static inline const char* name = "fanout_shard";
};

/// Sets (or, with a null handle, forgets) the registry of node `n` in
/// `deps`; returns how many are known (actors/fanout_shard.cpp).
uint64_t set_registry(fanout_deps& deps, node_id n, caf::actor reg);

fanout_shard_actor::behavior_type fanout_shard_impl(
  fanout_shard_actor::stateful_pointer<fanout_shard_state> self,
  fanout_deps deps, fanout_options opts);

struct fanout_state {
  struct job {
    size_t shard = 0;
    stored_message msg;
    std::vector<user_id> users;
  };
  fanout_deps deps;
  fanout_options opts;
  std::vector<fanout_shard_actor> shards;
  /// The same handles, for the exit hook (which runs after the state is
  /// gone).
  std::shared_ptr<std::vector<caf::actor>> to_stop
    = std::make_shared<std::vector<caf::actor>>();
  std::map<uint64_t, job> jobs; ///< handed to a shard, not yet done
  uint64_t next_job = 1;

  ~fanout_state();

  static inline const char* name = "fanout";
};

fanout_actor::behavior_type
fanout_impl(fanout_actor::stateful_pointer<fanout_state> self,
            fanout_deps deps, fanout_options opts);

} // namespace parley
