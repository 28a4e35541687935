#pragma once

// lease_runner: a node's lease_keeper (lease_keeper.hpp) on a thread of
// its own, which may block on the control plane (never a CAF scheduler
// thread). It ticks the keeper when the keeper asks (the next renewal,
// retry or fence deadline) and passes each transition to the callback, on
// that thread: false = stop writing for this node's partitions, true =
// write again. stop() ends the thread and, by default, revokes the lease
// so the node's registration goes at once (a clean leave).

#include "runtime/cluster/lease_keeper.hpp"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace parley::cluster {

class lease_runner {
public:
  /// Starts the thread; the first tick runs at once. `cp` must outlive
  /// the runner.
  lease_runner(control_plane& cp, lease_keeper_options opts,
               lease_keeper::fence_callback on_change);
  ~lease_runner(); ///< stop(true)

  lease_runner(const lease_runner&) = delete;
  lease_runner& operator=(const lease_runner&) = delete;

  /// Ends the thread (idempotent); with `release`, revokes the lease
  /// (registration gone at once) and reports fenced if it was not.
  void stop(bool release = true);

  /// The state last reported (false before the first registration).
  bool may_write() const {
    return may_write_.load();
  }

  /// The instant (steady_clock nanoseconds since its epoch) at which writes
  /// must stop unless a renewal succeeds first: the keeper's fence deadline
  /// while it may write, 0 while fenced. Updated before each transition is
  /// reported, so a store writer that checks it refuses at the deadline
  /// itself, even before the fence message reaches it (a process resumed
  /// after SIGSTOP runs queued work before the lease thread's report).
  std::shared_ptr<const std::atomic<int64_t>> deadline() const {
    return deadline_;
  }

private:
  void run();

  lease_keeper keeper_;
  lease_keeper::fence_callback on_change_;
  std::atomic<bool> may_write_{false};
  std::shared_ptr<std::atomic<int64_t>> deadline_ =
    std::make_shared<std::atomic<int64_t>>(0);
  void publish_deadline(); ///< from keeper_, at the current time
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool release_ = true;
  std::thread thread_;
};

} // namespace parley::cluster
