#pragma once

// user: the owner of one user's side (issue 21, item 4), on the user's
// partition. One per user, spawned by the directory on a user's first
// request and ended when idle, like conversations. It answers the user's
// sync pages (store::user_sync) and reads nothing itself: the user's own
// rows come from its partition's store reader, heads, receipt cursors,
// inbox probes and message runs from each conversation's partition, all
// through the directory by partition (`reads`), one request per partition
// and step, each with a timeout (an error or a timeout fails the page,
// retryably: the client asks again with the same cursors or continuation).

#include <chrono>
#include <cstdint>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/core/sync_reads.hpp"
#include "runtime/core/type_ids.hpp"

namespace parley {

/// Who answers reads by partition (the directory routes them to the
/// partition's store reader; the store reader answers them).
using partition_reads_actor = caf::typed_actor<
  caf::replies_to<fetch_atom, conv_reads>::with<conv_answers>,
  caf::replies_to<fetch_atom, user_reads>::with<user_answers>>;

using user_actor = caf::typed_actor<
  /// One page of the user's sync (store::user_sync). The user id
  /// must be this actor's (the directory routes by it).
  caf::replies_to<sync_atom, user_id, sync_request>::with<sync_page>,
  /// From the directory: it hands this actor nothing more; end once what
  /// is in flight is answered.
  caf::reacts_to<retire_atom>,
  /// Internal: every `idle` period; with nothing asked since the last,
  /// asks the directory to retire it.
  caf::reacts_to<caf::tick_atom>>;

/// What a user actor tells the directory when it has been idle.
using user_retire_actor
  = caf::typed_actor<caf::reacts_to<retire_atom, user_id>>;

struct user_deps {
  partition_reads_actor reads;
  user_retire_actor directory; ///< null: never retires on its own
  uint32_t partitions = 0;
  caf::timespan idle = std::chrono::seconds(60);
};

struct user_state {
  user_id user = 0;
  user_deps deps;
  uint64_t in_flight = 0; ///< pages being built
  bool touched = false;   ///< asked something since the last tick
  bool retiring = false;  ///< asked the directory to retire it
  bool closing = false;   ///< the directory retired it
  uint64_t pages = 0;     ///< pages answered (tests)

  static inline const char* name = "user";
};

user_actor::behavior_type
user_impl(user_actor::stateful_pointer<user_state> self, user_id user,
          user_deps deps);

} // namespace parley
