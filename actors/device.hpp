#pragma once

// device: the mailbox of one (user, device) on this node. It is the
// device's connection registry entry (which connection holds it, kept alive
// by that connection's heartbeats and dropped when they stop for `ttl`),
// passes each delivery on to the current connection actor as an ordinary
// message (which may live on another node), tracks what was
// pushed and not yet acknowledged, and records the device's per-conversation
// delivered cursor when the client acknowledges (a burst of acks becomes one
// cursor write per conversation; cursors never move backwards). A second
// connection replaces the first, which is told to close. Without a
// connection nothing is pushed: the device catches up by sync.
//
// The device_registry spawns these on a device's first connection and
// retires them when they have been without one for a while.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/node_metrics.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"

namespace parley {

/// Who answers a device's delivered-cursor limit: the highest sequence
/// `user` may acknowledge in `conv` (store::ack_limit, read on the
/// conversation's partition). On a node, the directory, which routes it
/// to that partition's store reader (another node's partition: to that
/// node's directory); a store reader answers it too (tests).
using ack_limit_actor = caf::typed_actor<
  caf::replies_to<ack_atom, user_id, conversation_id>::with<sequence>>;

using device_actor = caf::typed_actor<
  /// A committed message for this device: pushed if a connection holds it.
  caf::reacts_to<deliver_atom, stored_message>,
  /// The same from a large group's fan-out shard: pushed on the
  /// connection's bulk lane, at most once per connection (a shard that
  /// repeats a slice after a restart doubles nothing).
  caf::reacts_to<fanout_atom, stored_message>,
  /// A receipt cursor of a conversation member moved: pushed if a
  /// connection holds the device, unless it is someone else's unshared read.
  caf::reacts_to<receipt_atom, receipt_event>,
  /// Attaches connection `conn`, an earlier one is closed (cause
  /// `replaced`). Replies true. `conn` must handle (caf::close_atom,
  /// uint32_t cause, std::string reason), see actors/disconnect.hpp, and the
  /// pushes: (deliver_atom, stored_message), (fanout_atom, stored_message)
  /// for the bulk lane, (receipt_atom, receipt_event) and
  /// (caf::update_atom, inbox_entry).
  caf::replies_to<caf::join_atom, caf::actor>::with<bool>,
  /// The user's read-receipt setting changed (off: others' reads in 1:1
  /// conversations are not pushed).
  caf::reacts_to<caf::update_atom, bool>,
  /// The user changed an inbox entry on another device: pushed.
  caf::reacts_to<caf::update_atom, inbox_entry>,
  /// The device acknowledges every message of `conv` up to `seq`. Replies
  /// the cursor accepted (`seq`); errors: forbidden (not a member),
  /// cursor_ahead (past what the device can have seen).
  /// Not covered by what was pushed, the limit is asked of
  /// `device_deps::limits` (at most timeouts::ask; an error or a timeout
  /// refuses this ack, retryably: nothing is accepted, the client's next
  /// ack asks again, and the device serves everything else meanwhile).
  caf::replies_to<ack_atom, conversation_id, sequence>::with<sequence>,
  /// Who answers delivered-cursor limits from now on (the registry hands
  /// it on: the node's directory is spawned after the registry).
  caf::reacts_to<caf::put_atom, ack_limit_actor>,
  /// The attached connection is alive (sent on its heartbeat ticks).
  caf::reacts_to<refresh_atom>,
  /// Counters and connection state.
  caf::replies_to<stats_atom>::with<device_status>,
  /// Internal: the TTL check of the attached connection.
  caf::reacts_to<caf::tick_atom>,
  /// Internal: write the acks gathered during `ack_delay`.
  caf::reacts_to<caf::flush_atom>>;

struct device_options {
  /// A connection that has not refreshed for this long is dropped (and told
  /// to close): it is wedged or gone without its close reaching us.
  std::chrono::milliseconds ttl = std::chrono::seconds(75);
  /// Unacknowledged deliveries tracked per conversation; older ones are
  /// forgotten (still recoverable by sync).
  size_t max_unacked_per_conversation = 4096;
  /// Acks gather this long before their cursor write (0: write at once).
  std::chrono::milliseconds ack_delay{0};
  /// Wall clock (epoch ms) for the device's last seen, written (max-merged,
  /// with the cursors) when a connection attaches and when it goes; empty:
  /// not recorded (simulations).
  std::function<int64_t()> wall_clock;
};

struct device_deps {
  /// Delivered-cursor limits (empty: none yet; an ack that needs one is
  /// refused as unavailable).
  ack_limit_actor limits;
  store_writer_actor writer;
  std::shared_ptr<node_metrics> metrics{}; ///< may be null
  device_options opts;
};

struct device_state {
  device_deps deps;
  user_id user = 0;
  device_id device = 0;
  caf::actor conn; ///< the connection holding the device
  /// Highest large-group sequence passed to `conn`, per conversation.
  std::map<conversation_id, sequence> bulk_pushed;
  caf::actor_clock::time_point refreshed;
  /// Sequences pushed on this connection and not yet acknowledged.
  std::map<conversation_id, std::deque<sequence>> unacked;
  uint64_t unacked_total = 0;
  /// The highest sequence known to be acknowledgeable per conversation
  /// (from pushes, which imply membership, and from the store).
  std::map<conversation_id, sequence> ack_limit;
  /// Acks not yet written (max-merged), and whether a write is under way.
  std::map<conversation_id, sequence> acks_pending;
  bool writing = false;
  bool flush_scheduled = false;
  int64_t seen_pending = 0; ///< a last-seen time not yet written (0: none)
  uint64_t write_epoch = 1;
  uint64_t pushed = 0;
  uint64_t cursor_writes = 0;
  bool read_receipts = true;

  ~device_state(); ///< takes this device out of the node's gauges

  static inline const char* name = "device";
};

device_actor::behavior_type
device_impl(device_actor::stateful_pointer<device_state> self,
            device_deps deps, user_id user, device_id device);

} // namespace parley
