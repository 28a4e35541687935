#pragma once

// A seed-driven simulation of one Parley node under CAF's test coordinator
// (see shared/notes/simulation.md). One seed = one run: the seed decides
// which runnable actor goes next, when virtual time jumps, and where faults
// land (failed store writes, duplicated sends, conversation crashes, node
// crashes that lose unsynced writes). The "disk" is a memory_backend that
// outlives the actor systems, so a crash and reboot reopens the same data.
//
// Nothing here sleeps or reads the wall clock: time is the coordinator's.

#include <cstdint>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/directory.hpp"
#include "runtime/core/messages.hpp"
#include "runtime/store/memory_backend.hpp"

namespace parley::sim {

/// What one run does; drawn per seed by the swarm, set by scenarios.
struct knobs {
  int conversations = 1;
  int clients = 3;           ///< client c sends to conversation 1 + c % n
  int messages = 10;         ///< per client
  int copies = 1;            ///< concurrent copies of every send
  size_t window = 4;         ///< sends in flight per client
  double p_store_fail = 0;   ///< per write, while faults are on
  double p_duplicate = 0;    ///< a send goes out twice
  double p_conv_crash = 0;   ///< per step, kill a random conversation
  double p_time_jump = 0;    ///< per step, advance virtual time
  double p_replay = 0;       ///< after a reboot, resend an acked message
  /// Conversations emit to a projection (inbox) actor that is gone: what
  /// they send it is lost, and nothing may wait for it.
  bool dead_projection = false;
  int node_crashes = 0;      ///< node crashes during the faulty phase
  /// A node crash is a power loss (unsynced writes are lost); false: a
  /// process crash, after which LevelDB still has them.
  bool power_loss = true;
  uint64_t faulty_steps = 4000;
  int64_t watermark_delay_ms = 100;
  uint64_t watermark_every = 64;
  int64_t idempotency_window_ms = 24 * 3600 * 1000;
  int64_t sweep_interval_ms = 10 * 60 * 1000;
};

/// Everything clients saw for one client_message_id.
struct outcome {
  conversation_id conv = 0;
  user_id user = 0;
  std::vector<send_result> answers;
  std::vector<caf::error> errors;
};

/// One delivery event as the delivery actor saw it.
struct delivery {
  uint64_t incarnation; ///< node boot count
  caf::actor_id from;   ///< conversation actor that emitted it
  conversation_id conv;
  sequence seq;
};

/// Fresh (not deduplicated) answers in the order clients received them:
/// (incarnation, user, conversation) -> sequences.
using fresh_answer_log
  = std::map<std::tuple<uint64_t, user_id, conversation_id>,
             std::vector<sequence>>;

/// The send path's invariants over conversations `disks` (each with the
/// store holding it): every message of `expected` (cmids) acknowledged and
/// stored exactly once, sequences gapless, every answer equal to the store,
/// only retryable errors, fresh answers in sequence order, outboxes
/// drained, every stored message emitted once per incarnation. Returns the
/// first violation, or empty.
std::string check_send_log(const std::set<std::string>& expected,
                           const std::map<conversation_id, kv_backend*>& disks,
                           const std::map<std::string, outcome>& outcomes,
                           const fresh_answer_log& fresh_answers,
                           const std::vector<delivery>& deliveries);

class world {
public:
  world(uint64_t seed, knobs k);
  ~world();

  /// Starts a fresh actor system over the same disk, with clients for every
  /// message not yet acknowledged.
  void boot();

  /// Kills every actor of the node; writes not yet made are lost.
  void crash();

  /// Runs one job or fires one timer. Returns false once nothing is left.
  bool step();

  /// Steps until quiescent or `max_steps`; false if the cap was hit.
  bool run(uint64_t max_steps);

  /// The whole run: setup, faulty phase (with crashes), heal, quiescence.
  /// Returns a violation, or empty.
  std::string run_all();

  /// Checks the invariants; returns the first violation, or empty.
  std::string check() const;

  /// Spawns a client that sends every acked message once more.
  void replay_acked();

  /// Moves virtual time forward, firing the timers that fall due.
  void advance(std::chrono::milliseconds dt);

  /// Spawns client `c` (user 100 + c) sending exactly `cmids`.
  void send(int c, std::vector<std::string> cmids);

  /// True when every planned message has an answer.
  bool all_acked() const;

  /// Called by the store before each write: return true to fail it.
  std::function<bool(const write_batch&)> write_hook;

  /// Called after every step; may crash/boot the node.
  std::function<void()> step_hook;

  // -- state the tests read --------------------------------------------------

  uint64_t seed;
  knobs k;
  std::mt19937_64 sched_rng;
  std::mt19937_64 fault_rng;
  bool faults_on = false;
  uint64_t steps = 0;
  uint64_t incarnation = 0;
  uint64_t trace_hash = 1469598103934665603ull;
  std::shared_ptr<memory_backend> disk;
  std::map<std::string, outcome> outcomes;
  std::vector<delivery> deliveries;
  fresh_answer_log fresh_answers;

  // Internal: used by the sim actors.
  double uniform();
  caf::actor_system& system();
  directory_actor directory() const;
  void record(const std::string& cmid, const send_result& r);
  void record(const std::string& cmid, const caf::error& e);
  std::vector<conversation_id> live_conversations() const;

private:
  void spawn_clients(bool replay_some);
  void join_members();

  struct node_actors;
  std::unique_ptr<caf::actor_system_config> cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  std::unique_ptr<node_actors> node_;
  int64_t virtual_epoch_ms_ = 1'700'000'000'000;
};

/// Totals over all runs in this process (to show a suite is not vacuous).
struct totals {
  uint64_t runs = 0, steps = 0, failed_writes = 0, node_crashes = 0,
           conv_crashes = 0, answers = 0, errors = 0, deliveries = 0,
           lost_unsynced = 0; ///< unsynced writes lost in node crashes
};
totals& grand_totals();

/// Runs `body` for every seed of the suite (PARLEY_SIM_SEED and
/// PARLEY_SIM_SEEDS override the range) and fails with a replay line.
void for_each_seed(const char* test, uint64_t first, uint64_t count,
                   const std::function<std::string(uint64_t)>& body);

} // namespace parley::sim
