#include "runtime/cluster/lease_keeper.hpp"

#include <algorithm>

namespace parley::cluster {

lease_keeper::lease_keeper(control_plane& cp, lease_keeper_options opts,
                           fence_callback on_change)
  : cp_(cp), opts_(std::move(opts)), on_change_(std::move(on_change)) {
}

lease_keeper::time_point lease_keeper::tick(time_point now) {
  if (now >= next_due_)
    next_due_ = step(now) ? next_renew_ : now + opts_.retry_interval;
  report(now);
  auto next = next_due_;
  if (may_write(now))
    next = std::min(next, fence_deadline());
  return next;
}

bool lease_keeper::may_write(time_point now) const {
  return lease_ != 0 && registered_ && now < fence_deadline();
}

cp_result<cp_done> lease_keeper::release() {
  cp_result<cp_done> r = cp_done{};
  if (lease_ != 0)
    r = cp_.revoke(lease_);
  // Whatever the answer, this lease is no longer ours to write under.
  lease_ = 0;
  registered_ = false;
  next_due_ = time_point{};
  if (reported_) {
    reported_ = false;
    if (on_change_)
      on_change_(false);
  }
  return r;
}

bool lease_keeper::step(time_point now) {
  // Every deadline counts from `now`, the moment the request is sent: etcd
  // starts the TTL when it processes it, never earlier.
  const auto renew_every = std::chrono::milliseconds(opts_.ttl) / 3;
  if (lease_ != 0 && now >= next_renew_) {
    auto r = cp_.keep_alive(lease_);
    if (r) {
      last_renewed_ = now;
      next_renew_ = now + renew_every;
    } else if (r.error().code == cp_errc::lease_gone) {
      lease_ = 0; // expired or revoked: fence at once, grant a new one
      registered_ = false;
      report(now); // the fence is reported even if a new lease follows
    } else {
      return false;
    }
  }
  if (lease_ == 0) {
    auto g = cp_.grant(opts_.ttl.count());
    if (!g)
      return false;
    lease_ = g.value();
    registered_ = false;
    last_renewed_ = now;
    next_renew_ = now + renew_every;
  }
  if (!registered_) {
    auto p = cp_.put(opts_.key, opts_.value, lease_);
    if (!p) {
      if (p.error().code == cp_errc::lease_gone)
        lease_ = 0; // lapsed before it was used: grant again next time
      return false;
    }
    registered_ = true;
  }
  return true;
}

void lease_keeper::report(time_point now) {
  const bool w = may_write(now);
  if (w == reported_)
    return;
  reported_ = w;
  if (on_change_)
    on_change_(w);
}

} // namespace parley::cluster
