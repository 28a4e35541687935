#pragma once

// The network between the two simulated nodes of the two-node swarm
// (two_node_world.hpp), all in one actor system under CAF's test
// coordinator. A node holds, for an actor of the other node, a *port*: an
// actor whose `enqueue` takes every message sent to it, serializes it with
// CAF's binary_serializer (the type-id/inspect path the middleman uses: a
// type that cannot be serialized, or does not come back as the same
// element types, is a violation; CAF 0.17 itself only logs an unregistered
// type and sends an empty message) and
// hands the bytes to the link; after a seed-chosen delay the link reads
// them back with binary_deserializer and enqueues the copy at the real
// target, keeping order per direction as CAF's middleman keeps it over its
// one connection between two nodes (so per sender and receiver too). The sender is replaced by a port on the receiving
// node for the original sender, so answers (and anything else sent back
// to it) cross the link too, with the same message id: a request across
// the link is answered across it, or times out at the asker.
//
// Drops: while the link is broken, and everything in flight to or from a
// node that crashes (its connections reset). Nothing is reordered.
//
// What still bypasses the link: actor handles *inside* a message's
// content. binary_serializer writes a handle as (actor id, node id), and
// as both nodes are one actor system (one CAF node id), reading it back
// finds the real actor in the registry, not a port. Routed requests carry
// no handles (callers address conversations by id), and the two-node
// swarm uses only those; a message that carries a reply-to handle would
// be answered around the link. Forwarding stages (`mailbox_element::
// stages`) likewise pass through unchanged (the directory's `delegate`
// leaves them empty).

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/fwd.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/rtti_pair.hpp>

#include "runtime/core/placement.hpp"

namespace parley::sim {

class hop_net;

/// A stand-in, on node `side`, for an actor of the other node.
class hop_port : public caf::event_based_actor {
public:
  hop_port(caf::actor_config& cfg, hop_net* net, node_id side, node_id far,
           caf::strong_actor_ptr target);

  /// Everything sent here goes to the link (never to a mailbox).
  void enqueue(caf::mailbox_element_ptr x, caf::execution_unit* eu) override;

  caf::behavior make_behavior() override;

  node_id side; ///< the node holding this port
  node_id far;  ///< the node of the real target
  /// The real target; empty: the current directory of `far`.
  caf::strong_actor_ptr target;

private:
  hop_net* net_;
};

/// Counters of the link over a run.
struct hop_stats {
  uint64_t sent = 0, delivered = 0, dropped = 0, bytes = 0;
};

/// The link between nodes 1 and 2, and its ports.
class hop_net {
public:
  /// `uniform` draws in [0, 1) from the seed's fault stream.
  hop_net(caf::actor_system& sys, std::function<double()> uniform);
  ~hop_net();

  /// A handle, valid on node `side`, for whatever directory node `far`
  /// runs at delivery time (none while it is down: dropped).
  caf::actor directory_port(node_id side, node_id far);

  /// Node `n` runs `dir` as its directory (null: it is down). A node going
  /// down or coming back resets the link: what is in flight to or from it
  /// is dropped.
  void set_directory(node_id n, caf::strong_actor_ptr dir);

  /// Drops every port and packet (before the actor system goes).
  void clear();

  bool broken = false;        ///< drop what is delivered now
  int64_t max_delay_ms = 0;   ///< a delay is drawn in [0, max]
  bool reorder = false;       ///< a planted bug: land newest first
  hop_stats stats;
  /// Serialization failures: each one fails the run.
  std::vector<std::string> violations;
  uint64_t trace = 0; ///< mixes in the ids of packets as they land

  // Internal: used by ports and the link's timer actor.
  void transmit(hop_port* via, caf::mailbox_element_ptr x);
  void land(node_id from, node_id to);

private:
  struct packet {
    caf::strong_actor_ptr via; ///< the port it was sent to
    caf::strong_actor_ptr sender;
    caf::message_id mid;
    std::vector<char> bytes;
    std::vector<caf::rtti_pair> shape; ///< the element types sent
    node_id from = 0, to = 0;
    uint64_t epoch = 0; ///< the link's epoch when it was sent
  };

  caf::strong_actor_ptr port_for(node_id side, caf::strong_actor_ptr real);
  caf::strong_actor_ptr resolve(const hop_port& p) const;

  caf::actor_system& sys_;
  std::function<double()> uniform_;
  caf::actor timer_; ///< receives the link's delayed landings
  std::map<std::pair<node_id, caf::actor_id>, caf::strong_actor_ptr> ports_;
  std::map<node_id, caf::strong_actor_ptr> directories_;
  std::map<std::pair<node_id, node_id>, caf::strong_actor_ptr> dir_ports_;
  std::map<std::pair<node_id, node_id>, std::deque<packet>> queues_;
  uint64_t epoch_ = 1;
};

} // namespace parley::sim
