#pragma once

// A node of one conversation for the timeout sims (timeouts_test.cpp), under
// CAF's test coordinator: the real store writer and reader over one memory
// disk, with stand-ins in front of them that hold or drop what they get, a
// directory of conversations, a delivery recorder, and clients that retry
// with the same key until answered. The clock moves only by the
// coordinator's timers; nothing sleeps.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/timespan.hpp>

#include "actors/directory.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

namespace parley::sim {

/// A test actor's own timer (a client's retry, an ack).
using again_atom = caf::atom_constant<caf::atom("again")>;

/// What the stand-in writer does: from a commit on (once armed, after
/// `pass_commits`), nothing reaches the real writer until the release,
/// `hold_for` later, which passes it all on in order (a batch that lands
/// late) or drops it (one that never lands). Both forms of commit are held
/// alike: CAF requests (devices) and tagged commits (conversations, whose
/// deadline table times them out between timeouts::commit and 1.2 times
/// that). Set by the test, updated by the stand-in.
struct gate_plan {
  bool armed = false;    ///< hold from a commit on (after `pass_commits`)
  int pass_commits = 0;  ///< commits passed on once armed, before the hold
  bool drop = false;     ///< at the release, drop what was held
  caf::timespan hold_for{}; ///< the release comes this long after the hold
  int held_commits = 0;  ///< observed: commits that were held
  int tagged_commits = 0; ///< observed: tagged commits (the hot path's)
  bool released = false;
};

/// What the clients and the delivery recorder saw.
struct client_log {
  std::map<std::string, std::vector<send_result>> answers;
  std::map<std::string, std::vector<caf::error>> errors;
  std::set<sequence> emitted;
};

/// The one conversation of the rig.
inline constexpr conversation_id conv_id = 1;

/// The rig; its stand-ins answer through the real actors (delegation).
struct timeout_rig : coordinated_system {
  std::mt19937_64 rng;
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  std::shared_ptr<gate_plan> plan = std::make_shared<gate_plan>();
  /// Idempotency lookups the stand-in reader drops (never answers).
  std::shared_ptr<int> lookup_drops = std::make_shared<int>(0);
  std::shared_ptr<client_log> seen = std::make_shared<client_log>();
  store_writer_actor writer; ///< the stand-in
  store_reader_actor reader; ///< the stand-in
  directory_actor directory;
  std::vector<caf::actor> others;

  explicit timeout_rig(uint64_t seed);
  ~timeout_rig();

  /// Virtual milliseconds since the Unix epoch (the coordinator's clock).
  std::function<int64_t()> clock();

  /// Virtual time since the start.
  caf::timespan now() const;

  /// Spawns the directory (conversations use the stand-ins) and the
  /// delivery recorder. Idempotency sweeps are off (no commits of their
  /// own).
  void start_directory();

  /// Runs one seed-picked runnable actor, or fires the next timer (which
  /// moves the clock to it). False once nothing is left.
  bool step();

  /// Steps until nothing is left, or until `done` once nothing is
  /// runnable; false if `cap` steps did not get there.
  bool run(std::function<bool()> done = nullptr, uint64_t cap = 1'000'000);

  /// Makes `user` a member of conversation `conv_id` (retrying until it is).
  void join(user_id user);

  /// A client of `user` that sends `cmids` (at most `window` at a time) and
  /// retries each error with the same key after a short backoff. It waits
  /// for answers without a deadline of its own: a send that the
  /// conversation forgot to answer stalls the run.
  void client(user_id user, std::vector<std::string> cmids, size_t window);

  /// Checks the conversation's log against what the clients saw (gapless,
  /// each message once, every answer naming the stored sequence, every
  /// stored message emitted, only retryable errors); returns the first
  /// violation, or empty. "old" may be stored without being expected.
  std::string check(const std::set<std::string>& expected) const;

  /// Errors of code `x` the clients saw.
  size_t errors_of(errc x) const;
};

} // namespace parley::sim
