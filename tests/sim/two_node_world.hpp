#pragma once

// The seed-driven swarm over two simulated nodes in one test coordinator
// (issue 21). Each node has its own memory_backend store, writer, reader,
// delivery recorder, outbox relay and directory; the partition map gives
// half the partitions to each, and each directory hands requests for the
// other node's partitions to that node's directory through the serializing
// link (two_node_hop.hpp). Clients connect to either node and send to
// conversations of both, by id, through their node's directory. The seed
// picks which actor runs next, the link's delays and broken windows, store
// write failures, conversation crashes, and node crashes: a crashed node's
// actors die, its unsynced writes are lost (power_loss), in-flight traffic
// to and from it is dropped, and it reboots on its store after a
// seed-chosen downtime while the other node keeps running (its requests
// to the dead node time out and its clients retry with the same
// clientMessageId). After the faulty phase everything heals and must reach
// quiescence; then the one-node swarm's invariants are checked over both
// stores (check_send_log), plus the link's (every message crossed it
// serialized and read back) and the inbox's: the unread count each member
// is shown equals a recount from the log (others' messages after the read
// cursor). Clients send read receipts across the link too.
// Each node's inbox projects the conversations it owns (it reads their
// log), reconciling at every boot as parleyd does. After heal every device
// syncs through its own node (across the link to the user's node if that
// is the other) from sequence 0 and must get its conversation's log
// exactly, in order; only users placed on their conversation's node are
// checked, as a user's membership index is still written on the
// conversation's node (the others' syncs answer not_member).
// Leases (issue 22; k.leases, three seeds of four): one control-plane
// double on the virtual clock, a lease keeper per node incarnation ticked
// by an actor, its transitions forwarded to the writer, and seed-drawn
// outages that cut one node off long enough to fence itself; the writes
// into each node's partitions are audited against its lease
// (two_node_lease.hpp).

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/directory.hpp"
#include "actors/inbox.hpp"
#include "actors/map_keeper.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/memory_backend.hpp"
#include "sim_world.hpp"
#include "two_node_actors.hpp"
#include "two_node_hop.hpp"
#include "two_node_lease.hpp"

namespace parley::sim {

/// What one two-node run does; drawn per seed by the swarm.
struct two_node_knobs {
  uint32_t partitions = 8;
  int conversations = 2;    ///< at least one on each node
  int clients = 3;          ///< client c sends to conversation c % n
  int messages = 10;        ///< per client
  size_t window = 4;        ///< sends in flight per client
  double p_duplicate = 0;   ///< a send goes out twice
  double p_read = 0;        ///< an answered send is followed by a read receipt
  /// A client sends tagged messages, as the gateway does (else requests).
  double p_tagged_client = 0.5;
  double p_store_fail = 0;  ///< per write, while faults are on
  double p_conv_crash = 0;  ///< per step, kill a random conversation
  double p_time_jump = 0;   ///< per step, advance virtual time
  /// Per step, let virtual time reach the next timer (a link landing, a
  /// timeout) although work is waiting.
  double p_fire_timer = 0;
  int64_t max_hop_delay_ms = 20;
  int link_breaks = 0;      ///< broken windows of the link
  uint64_t max_break_steps = 1000;
  int node_crashes = 0;
  uint64_t max_down_steps = 2000;
  bool power_loss = true;   ///< a crash loses unsynced writes
  uint64_t faulty_steps = 3000;
  uint64_t heal_steps = 2'000'000; ///< cap: past it, a liveness failure
  // Planted bugs, for the test that shows the swarm catches them:
  bool link_reorders = false;     ///< the link lands newest first
  /// The stores ack synced writes unsynced while faults are on.
  bool disk_ignores_sync = false;
  /// run_all ends with check() (a test with checks of its own may not).
  bool check_at_end = true;
  /// After heal, every device syncs from sequence 0 (through its node).
  bool sync_at_end = true;
  // Leases and self-fencing through the control plane's sim double
  // (issue 22, two_node_lease.hpp):
  bool leases = false;
  int cp_outages = 0; ///< windows in which one node cannot reach etcd
  int64_t lease_ttl_s = 5;
  int64_t fence_margin_ms = 1500;
  /// A planted bug: the lease forwarder never sends the fence.
  bool lease_fence_never_sent = false;
  /// The writer refuses at the published lease deadline, on the virtual
  /// clock (as parleyd's; two_node_lease.hpp), and the swarm checks that
  /// it accepts nothing past it and lands nothing past the lease even
  /// after a stall. Off by default: with it, store_writer refuses a commit
  /// at the deadline while an earlier commit of the same epoch waits for
  /// its tick, then lands and acknowledges that one, and the conversation
  /// aborts ("committed after roll-back"; e.g. seeds 50050, 50079, 50150).
  bool lease_deadline = false;
  /// A planted bug (with lease_deadline): the writer is not given the
  /// deadline (only the fence message stops it; a stall outruns it).
  bool lease_deadline_not_given = false;
};

/// Counters over all two-node runs in this process.
struct two_node_totals {
  uint64_t runs = 0, steps = 0, answers = 0, errors = 0, node_crashes = 0,
           lost_unsynced = 0, hop_sent = 0, hop_delivered = 0,
           hop_dropped = 0, hop_bytes = 0, remote_answers = 0,
           stale_inbox_rows = 0, ///< inbox rows behind the log at the end
           tagged_answers = 0,   ///< answers to tagged sends
           timeouts = 0,         ///< sends that saw request_timeout
           synced_devices = 0,   ///< syncs after heal checked against the log
           synced_apart = 0, ///< checked syncs of a user placed apart
                             ///< from its conversation (index from events)
           synced_across = 0,    ///< checked syncs that crossed the link
           lease_runs = 0,       ///< runs with leases modelled
           cp_outages = 0,       ///< windows cut off the control plane
           fenced_windows = 0,   ///< a live lease fenced, by its keeper
           fence_refusals = 0,   ///< sends refused by the lease fence
           lease_writes = 0,     ///< audited writes into owned partitions
           writes_in_margin = 0, ///< of them after the fence deadline, with
                                 ///< the fence on its way (within margin)
           lease_regrants = 0,   ///< leases granted again after lapsing
           /// Writes past the lease (at or after the last renewal sent +
           /// TTL) after a stall (see stalled_until_): accepted before the
           /// published deadline, landed (on the writer's tick or the late
           /// fence) after it (two_node_lease.hpp).
           writes_past_lease = 0,
           max_past_lease_ms = 0; ///< the longest such overrun
  /// Conversations whose idle outbox watermark the lease fence dropped
  /// (the writer drops lazy puts while fenced; nothing sends it again).
  uint64_t watermarks_fenced_off = 0;
  std::string first_past_lease; ///< the first of them, with its seed
};
two_node_totals& two_node_grand_totals();

class two_node_world {
public:
  two_node_world(uint64_t seed, two_node_knobs k);
  ~two_node_world();

  /// Setup, faulty phase, heal, quiescence, check; returns a violation.
  std::string run_all();

  /// The invariants; the first violation, or empty.
  std::string check() const;

  /// Each member's stored inbox entry against a recount from the log.
  std::string check_unread() const;

  /// Each device's sync after heal against the log.
  std::string check_syncs() const;

  // -- state the tests read ---------------------------------------------------

  struct node {
    node_id id = 0;
    std::shared_ptr<memory_backend> disk;
    uint64_t incarnation = 0;
    bool up = false;
    store_writer_actor writer;
    store_reader_actor reader;
    delivery_actor delivery;
    inbox_supervisor_actor inbox; ///< the projection of its conversations
    directory_actor directory;
    /// The node's map keeper (writer, then directory), as parleyd's.
    map_keeper_actor keeper;
    std::vector<caf::actor> others; ///< relay and clients
  };

  uint64_t seed;
  two_node_knobs k;
  std::mt19937_64 sched_rng;
  std::mt19937_64 fault_rng;
  bool faults_on = false;
  uint64_t steps = 0;
  uint64_t trace_hash = 1469598103934665603ull;
  partition_map map;
  std::vector<conversation_id> convs; ///< the conversations clients use
  std::vector<node_id> homes;         ///< client c's node
  std::vector<bool> tagged;           ///< client c sends tagged messages
  std::array<node, 2> nodes;
  std::map<std::string, outcome> outcomes;
  std::vector<delivery> deliveries;
  fresh_answer_log fresh_answers;
  /// Client c's sync after heal (sync_at_end).
  std::map<int, synced> syncs;
  /// Called at the start of every step, with the world's actor system (the
  /// partition move test starts its mover from here).
  std::function<void(caf::actor_system&)> on_step;
  /// The control plane and the nodes' leases (k.leases; else null).
  std::unique_ptr<lease_model> leases;

  // Internal: used by the sim actors.
  double uniform();
  node& at(node_id n) {
    return nodes[n - 1];
  }
  const node& at(node_id n) const {
    return nodes[n - 1];
  }
  node_id owner_of(conversation_id conv) const;
  void record(const std::string& cmid, const send_result& r);
  void record(const std::string& cmid, const caf::error& e);
  /// Ticks node n's lease keeper (from its ticker) and re-arms the ticker.
  void lease_tick(node_id n, caf::event_based_actor* self);
  /// Audits a write that landed on node n's disk through its writer.
  void audit_write(node_id n, const write_batch& batch);
  /// The lease invariants at the end (two_node_lease.hpp); empty if held.
  std::string check_leases() const;

private:
  void boot(node_id n);
  void crash(node_id n);
  void stop_all();
  bool step();
  bool run(uint64_t max_steps);
  void spawn_clients(node_id n);
  // Leases (two_node_lease.cpp):
  void lease_boot(node_id n);
  void lease_crash(node_id n);
  void on_lease_change(node_id n, bool live);
  /// Cuts off and reconnects nodes as drawn (faulty phase step s).
  void lease_faults(uint64_t s);
  void lease_heal();
  /// No writer live past its lease without a stall, none accepting a write
  /// at or past its published deadline (every step).
  void lease_watch();
  /// Ops into partitions node n owns that its writer holds unwritten.
  size_t owned_pending(node_id n) const;
  /// Outbox watermarks the lease fence dropped (two_node_lease.cpp).
  void lease_watermarks();
  /// Nothing left but lease ticks, and every node's lease is live.
  bool leases_quiet() const;
  std::chrono::steady_clock::time_point now() const;
  /// The end of the last stall: virtual time that passed while work was
  /// waiting (a time jump, or a timer fired with jobs queued), as when a
  /// whole process stops and resumes.
  std::chrono::steady_clock::time_point stalled_until_{};
  /// Outages drawn by run_all: step -> (node, virtual duration in ms).
  std::map<uint64_t, std::pair<node_id, int64_t>> outage_at_;

  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<hop_net> net_;
  int64_t virtual_epoch_ms_ = 1'700'000'000'000;
  bool stopping_ = false; ///< the final stop is no crash of the run
};

} // namespace parley::sim
