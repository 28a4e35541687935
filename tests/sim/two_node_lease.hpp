#pragma once

// The two-node swarm's leases (issue 22, ownership with fencing), modelled
// through the control plane's sim double. One memory_control_plane serves
// the world, on the test coordinator's virtual clock; each node reaches it
// through its own memory_cp_client (its own unreachable switch, kept across
// reboots: it is the node's network path). Each incarnation of a node has a
// lease_keeper (registration /parley/sim/nodes/<n>) ticked by a small actor
// of its own, at the times the keeper asks, through delayed messages: so
// the seed orders lease ticks among everything else. Each transition is
// forwarded to the node's store writer as (put_atom, lease_state) with a
// generation one higher, as parleyd's cluster_member does; a booting
// writer is told lease_state{false, 1} first, so it starts fenced and goes
// live when its keeper has registered. A crash kills the ticker (the lease
// runs out in the double after its TTL); a reboot grants a new lease.
// Seed-drawn outages cut one node off the control plane for longer than
// TTL - margin of virtual time, so that node fences itself.
//
// As parleyd's lease_runner, the ticker also publishes the keeper's fence
// deadline (virtual nanoseconds; 0 while fenced) after every tick and
// before each transition is forwarded. With k.lease_deadline the writer
// is given it and the virtual clock (store_writer_limits::lease_deadline,
// lease_clock), so it refuses at the deadline even when it runs before the
// fence message (a stall: virtual time jumped while work waited); off by
// default for now (two_node_world.hpp says why).
//
// Every write that reaches a node's disk through its writer is audited:
// a write into a partition the node owns must come from a live writer
// (the fence holds), and never at or after the keeper's last renewal sent
// + TTL (when the double could have let the lease lapse). After a stall
// such writes are counted (writes_past_lease, with the message the writer
// was handling) and, with k.lease_deadline, failed. With k.lease_deadline
// every step also checks that the writer accepted nothing into a partition
// its node owns at or past the published deadline. Writes after the
// keeper's fence deadline but before the lapse are counted, not refused.

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "runtime/cluster/lease_keeper.hpp"
#include "runtime/cluster/memory_control_plane.hpp"
#include "runtime/cluster/memory_cp_client.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::sim {

class two_node_world;

/// One node's lease, as the swarm models it.
struct node_lease {
  using time_point = std::chrono::steady_clock::time_point;
  /// The node's connection to the control plane (across reboots).
  std::unique_ptr<cluster::memory_cp_client> client;
  /// This incarnation's keeper; null while the node is down.
  std::unique_ptr<cluster::lease_keeper> keeper;
  caf::actor ticker;        ///< ticks `keeper`; dies with the node
  uint64_t generation = 0;  ///< of the last lease_state sent to the writer
  bool cut = false;         ///< cut off the control plane
  time_point cut_until{};   ///< when the outage ends (virtual time)
  /// The fence deadline the writer refuses at (virtual ns, as
  /// lease_runner::deadline()): the keeper's while it may write, 0 while
  /// fenced; a new one, at 0, for each incarnation.
  std::shared_ptr<std::atomic<int64_t>> deadline =
    std::make_shared<std::atomic<int64_t>>(0);
  /// Ops into partitions it owns that the writer holds unwritten (pending
  /// commits, lazy puts), as last seen after a step; more after a step =
  /// it accepted some then (two_node_world::lease_watch).
  size_t owned_pending = 0;
  bool fenced_window = false; ///< fenced after live, not live again yet
  uint64_t windows = 0;     ///< fenced windows in this run (every boot)
};

/// The world's control plane and the nodes' leases.
struct lease_model {
  explicit lease_model(cluster::cp_clock now);

  cluster::cp_clock now;
  cluster::memory_control_plane plane;
  std::array<node_lease, 2> nodes;
  std::set<caf::actor_id> tickers; ///< every ticker ever spawned
  std::string first_violation; ///< empty while the invariants hold
  uint64_t violations = 0;

  /// Records a violation of the lease invariants.
  void violate(std::string why) {
    if (violations++ == 0)
      first_violation = std::move(why);
  }
};

/// Publishes node `n`'s fence deadline from its keeper at `now`, as
/// lease_runner::publish_deadline (0 while fenced or without a keeper).
void publish_lease_deadline(node_lease& nl,
                            std::chrono::steady_clock::time_point now);

/// The registration key of node `n`.
std::string lease_key(node_id n);

/// Spawns node `n`'s ticker: it ticks the node's keeper after `first`,
/// then whenever the keeper asks (two_node_world::lease_tick).
caf::actor spawn_lease_ticker(caf::actor_system& sys, two_node_world* w,
                              node_id n, caf::timespan first);

/// Wraps node `n`'s store as its writer sees it, auditing every write
/// that lands (two_node_world::audit_write).
std::shared_ptr<kv_backend>
lease_audited(std::shared_ptr<kv_backend> inner, two_node_world* w,
              node_id n);

} // namespace parley::sim
