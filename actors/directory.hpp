#pragma once

// directory: placement, the router. Holds the partition map
// (runtime/core/placement.hpp) and answers which actor hosts a conversation,
// spawning it on first use if this node owns the conversation's partition.
// A request for a conversation owned elsewhere is handed to the owner's
// directory if this one knows a handle for that node (`directory_peers`,
// filled by the cluster from CAF's middleman; the asker gets the owner's
// answer, or its own request timeout), else it answers errc::unavailable
// (retryable); such a conversation is never spawned here. Callers reach
// conversations only through it, so the same code runs on one node now and
// on partitioned nodes later. It monitors what it spawned: a conversation
// that fails is respawned after `respawn_delay` (it recovers from the
// store and re-emits its outbox), or sooner by the next lookup. A newer
// map that moves a partition away stops handing out its conversations at
// once and stops each of them once nothing of it is in flight (polled
// every `drain_poll`, at most `max_drain_polls` times, then stopped
// regardless).

#include <cstdint>
#include <chrono>
#include <map>
#include <set>
#include <vector>

#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_actor.hpp>

#include "actors/conversation.hpp"
#include "actors/user.hpp"
#include "runtime/core/placement.hpp"

namespace parley {

using directory_actor = caf::typed_actor<
  /// Returns the actor of conversation `conv` (spawned if not running).
  /// Error: unavailable if another node owns its partition (retryable:
  /// the map may change, or the caller may ask the owner).
  caf::replies_to<caf::get_atom, conversation_id>::with<conversation_actor>,
  /// Routed requests to conversation `conv` (the send's own conversation
  /// for a send): handed to its actor, spawned if needed, which answers the
  /// asker directly. Error: unavailable if another node owns it. This is how
  /// callers address conversations: by id, keeping no handle that a
  /// re-route would leave stale.
  caf::replies_to<send_atom, send_request>::with<send_result>,
  caf::replies_to<caf::join_atom, conversation_id, user_id>::with<sequence>,
  caf::replies_to<group_atom, conversation_id, group_change>::with<
    send_result>,
  caf::replies_to<group_atom, conversation_id, user_id, user_id,
                  uint32_t>::with<group_info>,
  caf::replies_to<receipt_atom, conversation_id, user_id, device_id, int32_t,
                  sequence, bool>::with<sequence>,
  /// The operator's view of conversation `conv` (conversation_actor's
  /// load_atom), routed as the requests above.
  caf::replies_to<load_atom, conversation_id>::with<conversation_snapshot>,
  /// The same for the client's hot path as ordinary messages (no CAF
  /// request): handed on with the asker kept as their sender, and answered
  /// to it by the conversation (send_answer_actor, receipt_answer_actor),
  /// or at once by the directory if it cannot route them (unavailable).
  caf::reacts_to<send_atom, tagged_send>,
  caf::reacts_to<receipt_atom, tagged_receipt>,
  /// Where `key` (a conversation or a user) lives under the current map.
  caf::replies_to<caf::get_atom, placement_key>::with<route>,
  /// Replaces the partition map with `next` (same partition count, higher
  /// map_epoch); replies the new epoch. Conversations whose partition left
  /// this node are no longer handed out and stop once drained; those of a
  /// partition it took that owe events are activated (one store scan per
  /// taken partition, directory_memberships::activate_taken). Errors:
  /// conflict (an epoch not above the current one), bad_request.
  caf::replies_to<caf::put_atom, partition_map>::with<uint64_t>,
  /// Lists the running conversations, draining ones included (for an
  /// orderly shutdown).
  caf::replies_to<caf::get_atom>::with<std::vector<conversation_actor>>,
  /// Internal: restart conversation `conv` if it is not running (and this
  /// node owns it).
  caf::reacts_to<caf::spawn_atom, conversation_id>,
  /// Internal: stop the actors of `conv` that moved away once drained.
  caf::reacts_to<caf::leave_atom, conversation_id>,
  /// Routed to user `user`'s actor (actors/user.hpp, spawned if not
  /// running; actors/directory_users.cpp); another node's user to that
  /// node's directory if known. Error: unavailable if another node owns the
  /// user's partition and no handle for it is known.
  caf::replies_to<sync_atom, user_id, sync_request>::with<sync_page>,
  /// Reads by partition (runtime/core/sync_reads.hpp), handed to the
  /// partition's store reader (another node's partition: to that node's
  /// directory if known). Errors: unavailable (another node owns the
  /// partition, no handle for it), bad_request (an id outside it).
  caf::replies_to<fetch_atom, conv_reads>::with<conv_answers>,
  caf::replies_to<fetch_atom, user_reads>::with<user_answers>,
  /// A device's delivered-cursor limit (ack_limit_actor, actors/device.hpp):
  /// the highest sequence `user` may acknowledge in `conv`, routed by the
  /// conversation's partition to its store reader (another node's: to that
  /// node's directory if known). Errors: unavailable (no handle for the
  /// owner), forbidden (not a member).
  caf::replies_to<ack_atom, user_id, conversation_id>::with<sequence>,
  /// Inbox rows for users of one partition (runtime/core/inbox_rows.hpp),
  /// handed to the inbox of the partition's owner (this node's, or to the
  /// owner's directory if known; actors/directory_inbox.cpp), which
  /// replies how many it wrote. A request about a user's inbox, handed to
  /// the inbox of the owner of the user's partition. Errors: unavailable
  /// (another node's partition and no handle for it, or no inbox here),
  /// bad_request (a user outside the partition).
  caf::replies_to<caf::put_atom, inbox_rows>::with<uint64_t>,
  caf::replies_to<fetch_atom, inbox_query>::with<std::vector<inbox_entry>>,
  /// From an idle user actor: it is handed nothing more and told to end.
  caf::reacts_to<retire_atom, user_id>,
  /// A membership event for its user's index (membership_sink_actor;
  /// actors/directory_memberships.hpp), routed by the user's partition.
  caf::replies_to<caf::put_atom, membership_event>::with<uint64_t>,
  /// Sets (or, with a null handle, forgets) the directory of node `n`
  /// (cast to directory_actor) that requests for that node's partitions
  /// are handed to from now on (the cluster member, from CAF's
  /// middleman); replies how many peers are known. Requests for a
  /// forgotten node's partitions answer unavailable at once (those already
  /// handed on are answered by that node, or time out at the asker). A
  /// plain value, as the accounts actor's: no type of its own.
  caf::replies_to<caf::put_atom, node_id, caf::actor>::with<uint64_t>>;

/// Directories of other nodes, by node id (a plain value: given at spawn
/// by the two-node sim with its serializing hop; set and forgotten at run
/// time by the cluster from CAF's middleman, put_atom, node_id, actor).
using directory_peers = std::map<node_id, directory_actor>;

struct directory_state {
  /// An actor of a conversation whose partition left this node.
  struct draining {
    conversation_id conv = 0;
    conversation_actor actor;
    int polls = 0;       ///< status requests made so far
    bool asking = false; ///< a status request is under way
  };

  conversation_deps deps;
  placement where = placement::single_node();
  directory_peers peers; ///< where requests for other nodes' partitions go
  std::map<conversation_id, conversation_actor> conversations;
  std::map<caf::actor_addr, conversation_id> by_addr;
  std::map<caf::actor_addr, draining> leaving; ///< not handed out any more
  std::set<caf::actor_addr> linked; ///< children whose exit_msg is pending
  uint64_t spawned = 0;
  caf::timespan respawn_delay = std::chrono::seconds(1);
  caf::timespan drain_poll = std::chrono::milliseconds(50);
  int max_drain_polls = 200;
  /// User actors by user, and back (actors/directory_users.cpp).
  std::map<user_id, user_actor> users;
  std::map<caf::actor_addr, user_id> users_by_addr;
  caf::timespan user_idle = std::chrono::seconds(60);
  /// Epoch of this node's membership index writes (next_epoch).
  uint64_t membership_epoch = 0;
  /// Partitions taken by a map whose scan for conversations owing events
  /// failed: scanned again with the next map (directory_memberships).
  std::set<uint32_t> unscanned;

  static inline const char* name = "directory";
};

/// Hands the request being handled, as received, to the directory of node
/// `owner` (its answer goes to the asker) and returns true, if a handle for
/// that node is known and the request did not come from another node (no
/// ping-pong between two maps that disagree); else returns false and the
/// caller answers unavailable.
bool forward_to_owner(directory_actor::stateful_pointer<directory_state> self,
                      node_id owner);

/// Sets the directory of node `n` in `peers`, or forgets it if `peer` is
/// null; returns how many peers are known (actors/directory_peers.cpp).
uint64_t set_peer(directory_actor::stateful_pointer<directory_state> self,
                  node_id n, caf::actor peer);

/// A directory of a single node: it owns every partition.
directory_actor::behavior_type
directory_impl(directory_actor::stateful_pointer<directory_state> self,
               conversation_deps deps);

/// A directory routing by `where` (this node and the partition map).
directory_actor::behavior_type
placed_directory_impl(directory_actor::stateful_pointer<directory_state> self,
                      conversation_deps deps, placement where);

/// A directory routing by `where` that hands requests for partitions of
/// other nodes to their directories in `peers`.
directory_actor::behavior_type
routing_directory_impl(
  directory_actor::stateful_pointer<directory_state> self,
  conversation_deps deps, placement where, directory_peers peers);

} // namespace parley
