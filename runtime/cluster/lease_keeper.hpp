#pragma once

// A node's registration in the control plane and its self-fencing, as
// plain logic: no thread, no timer. The caller drives it with tick(now) at
// (or before) the time tick() asked for, from a thread that may block on
// the control plane (never a CAF scheduler thread).
//
// It grants a lease of TTL T, puts the node's registration key under it,
// and renews it every T/3 (failed renewals are retried every
// `retry_interval`). The node may write for its partitions only while
//
//     now < last_renewed + T - margin
//
// where last_renewed is the time the last successful grant or renewal
// REQUEST WAS SENT (the `now` of the tick that sent it), not the time its
// answer arrived: etcd measures the TTL from when it processed the request,
// which is at or after the send, so the lease cannot lapse before
// last_renewed + T; `margin` covers the difference between the node's and
// etcd's clock rates. A renewal answered with lease_gone (the lease expired
// or was revoked) fences at once; the keeper then grants a new lease and
// registers again, and may_write stays false until both succeeded.
//
// This is a lease, not an epoch: nothing here is ordered across leases or
// nodes. The partition map's epoch and the store writer's epoch are
// separate things that the caller keeps.

#include "runtime/cluster/control_plane.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace parley::cluster {

/// What the keeper registers and how it times its lease.
struct lease_keeper_options {
  std::string key;   ///< the node's registration key
  std::string value; ///< its value (the node's address, ...)
  std::chrono::seconds ttl{5};
  /// Stop writing this long before the lease could lapse. Must be < ttl.
  std::chrono::milliseconds margin{1000};
  /// Pause before retrying a failed call.
  std::chrono::milliseconds retry_interval{250};
};

/// Keeps a node's lease and registration alive and tells when it may write.
class lease_keeper {
public:
  using time_point = std::chrono::steady_clock::time_point;
  /// Called from tick() on each transition: false = fenced (stop writing),
  /// true = resumed (a live lease and registration again).
  using fence_callback = std::function<void(bool may_write)>;

  /// `cp` must outlive the keeper. Nothing is sent before the first tick.
  lease_keeper(control_plane& cp, lease_keeper_options opts,
               fence_callback on_change = {});

  /// Does what is due at `now` (grant, register, renew, retry) and reports
  /// a transition if there is one. Returns when to tick next: the next
  /// renewal or retry, or the fence deadline if that comes first.
  time_point tick(time_point now);

  /// Whether the node may write at `now`: registered under a lease and
  /// now < last_renewed() + ttl - margin. Pure; valid between ticks.
  bool may_write(time_point now) const;

  /// Revokes the lease (a clean leave: the registration goes at once) and
  /// fences. Until the next tick, which registers again.
  cp_result<cp_done> release();

  /// When the last successful grant or renewal was sent.
  time_point last_renewed() const {
    return last_renewed_;
  }
  /// last_renewed() + ttl - margin: writes stop at this instant.
  time_point fence_deadline() const {
    return last_renewed_ + opts_.ttl - opts_.margin;
  }
  /// The current lease id; 0 when there is none.
  int64_t lease() const {
    return lease_;
  }
  /// Whether the registration key is written under the current lease.
  bool registered() const {
    return registered_;
  }
  /// The state last reported to the callback.
  bool reported() const {
    return reported_;
  }

private:
  /// Renews, grants and registers as due; false if a call failed.
  bool step(time_point now);
  void report(time_point now);

  control_plane& cp_;
  lease_keeper_options opts_;
  fence_callback on_change_;
  int64_t lease_ = 0;
  bool registered_ = false;
  time_point last_renewed_{};
  time_point next_renew_{}; ///< when the lease is due for renewal
  time_point next_due_{};   ///< when step() runs next (renewal or retry)
  bool reported_ = false;
};

} // namespace parley::cluster
