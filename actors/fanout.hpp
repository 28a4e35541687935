#pragma once

// Large-group fan-out, apart from 1:1 and small-group traffic (a bulkhead).
//
// A conversation whose group has more members than
// `parley.large-group-members` emits its messages to the `fanout` actor
// instead of the device registry. `fanout` splits the members at its
// sequence into slices by user (user % shards: each `fanout_shard` owns a
// fixed slice of every group's membership) and hands each slice to its
// shard. Shards find the connected devices of a batch of users at a time in
// the presence table and send each device actor the message (one shared
// message per batch), on threads of their own at a lower CPU priority:
// large groups queue among themselves, apart from the registry that serves
// 1:1 and small groups. Device actors pass it on to their connection on
// its bulk lane.
//
// A shard that fails is replaced and its unfinished slices handed to the
// new one; a device actor passes each large-group message to a connection
// at most once, so every online member device gets each message once.
// Offline devices catch up by sync as always.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/delivery.hpp"
#include "actors/node_metrics.hpp"
#include "actors/presence.hpp"

namespace parley {

using fanout_shard_actor = caf::typed_actor<
  /// Delivers `msg` to the online devices of `users`; replies the
  /// deliveries made once all are sent.
  caf::replies_to<fanout_atom, stored_message, std::vector<user_id>>::with<
    uint64_t>,
  /// Internal: work on the next batch.
  caf::reacts_to<caf::tick_atom>>;

/// Large-group delivery; receipts pass on to `receipts` unchanged.
using fanout_actor = delivery_actor::extend<
  /// The current shards (tests crash them).
  caf::replies_to<caf::get_atom>::with<std::vector<caf::actor>>>;

struct fanout_options {
  size_t shards = 2;         ///< threads (or actors) fanning out
  size_t batch_users = 512;  ///< users a shard serves before it looks up
  bool own_threads = true;   ///< detached shards (false in simulations)
  int nice = 5;              ///< CPU priority of shard threads (+: lower)
};

struct fanout_deps {
  std::shared_ptr<presence> online;
  delivery_actor receipts;               ///< where receipt events go
  std::shared_ptr<node_metrics> metrics; ///< may be null
};

struct fanout_shard_state {
  struct work {
    stored_message msg;
    std::vector<user_id> users;
    size_t next = 0;
    uint64_t pushed = 0;
    caf::typed_response_promise<uint64_t> rp;
  };
  fanout_deps deps;
  fanout_options opts;
  std::deque<work> queue;
  bool scheduled = false;
  bool prioritized = false;

  static inline const char* name = "fanout_shard";
};

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
