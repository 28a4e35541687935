#include "runtime/cluster/memory_control_plane.hpp"

namespace parley::cluster {

namespace {

bool has_prefix(const std::string& key, const std::string& prefix) {
  return key.compare(0, prefix.size(), prefix) == 0;
}

cp_error lease_not_found(int64_t lease) {
  return {cp_errc::lease_gone,
          "etcdserver: requested lease not found (" + std::to_string(lease)
            + ")"};
}

} // namespace

// -- construction -------------------------------------------------------------

memory_control_plane::memory_control_plane(cp_clock now, delivery mode)
  : now_(std::move(now)), mode_(mode) {
}

memory_control_plane::~memory_control_plane() = default;

// -- control_plane ------------------------------------------------------------

cp_result<int64_t> memory_control_plane::grant(int64_t ttl_s) {
  auto r = [&]() -> cp_result<int64_t> {
    lock guard(mtx_);
    if (auto err = enter(guard))
      return *err;
    if (ttl_s <= 0)
      return cp_error{cp_errc::server, "lease TTL must be positive"};
    auto id = next_lease_++;
    leases_[id] = lease_rec{ttl_s, now_(), {}};
    return id;
  }();
  settle(); // enter() may have expired leases: deliver their deletes
  return r;
}

cp_result<int64_t> memory_control_plane::keep_alive(int64_t lease) {
  auto r = [&]() -> cp_result<int64_t> {
    lock guard(mtx_);
    if (auto err = enter(guard))
      return *err;
    auto i = leases_.find(lease);
    if (i == leases_.end())
      return lease_not_found(lease);
    i->second.renewed = now_();
    return i->second.ttl_s;
  }();
  settle();
  return r;
}

cp_result<cp_done> memory_control_plane::revoke(int64_t lease) {
  auto r = [&]() -> cp_result<cp_done> {
    lock guard(mtx_);
    if (auto err = enter(guard))
      return *err;
    if (leases_.count(lease) == 0)
      return lease_not_found(lease);
    drop_lease_locked(lease);
    return cp_done{};
  }();
  settle();
  return r;
}

cp_result<int64_t> memory_control_plane::put(const std::string& key,
                                             const std::string& value,
                                             int64_t lease) {
  txn_request req;
  req.success.push_back({txn_op::kind::put, key, value, lease});
  auto r = txn(req);
  if (!r)
    return r.error();
  return r->revision;
}

cp_result<range_result> memory_control_plane::range(const std::string& prefix) {
  auto r = [&]() -> cp_result<range_result> {
    lock guard(mtx_);
    if (auto err = enter(guard))
      return *err;
    return range_locked(prefix);
  }();
  settle();
  return r;
}

cp_result<txn_result> memory_control_plane::txn(const txn_request& req) {
  auto r = [&]() -> cp_result<txn_result> {
    txn_result out;
    lock guard(mtx_);
    if (auto err = enter(guard))
      return *err;
    out.succeeded = true;
    for (auto& c : req.compares)
      out.succeeded = out.succeeded && compare_locked(c);
    auto& ops = out.succeeded ? req.success : req.failure;
    // Refuse the whole transaction before changing anything, as etcd does.
    for (auto& op : ops)
      if (op.op == txn_op::kind::put && op.lease != 0
          && leases_.count(op.lease) == 0)
        return lease_not_found(op.lease);
    const auto rev = revision_ + 1;
    bool changed = false;
    std::vector<size_t> range_slots;
    for (auto& op : ops) {
      switch (op.op) {
        case txn_op::kind::put:
          put_locked(op.key, op.value, op.lease, rev);
          changed = true;
          break;
        case txn_op::kind::del:
          changed = del_locked(op.key, rev) || changed;
          break;
        case txn_op::kind::range:
          out.ranges.push_back(range_locked(op.key));
          break;
      }
    }
    if (changed)
      revision_ = rev;
    out.revision = revision_;
    for (auto& x : out.ranges)
      x.revision = revision_;
    return out;
  }();
  settle();
  return r;
}

// -- simulation controls ------------------------------------------------------

void memory_control_plane::set_unreachable(bool on, cp_errc code) {
  {
    lock guard(mtx_);
    unreachable_ = on;
    unreachable_code_ = code;
  }
  settle();
}

void memory_control_plane::expire_due() {
  {
    lock guard(mtx_);
    expire_locked(now_());
  }
  settle();
}

cp_result<cp_done> memory_control_plane::compact(int64_t rev) {
  {
    lock guard(mtx_);
    if (rev > revision_)
      return cp_error{cp_errc::server,
                      "etcdserver: mvcc: required revision is a future "
                      "revision"};
    if (rev <= compact_revision_)
      return cp_error{cp_errc::compacted,
                      "etcdserver: mvcc: required revision has been "
                      "compacted"};
    compact_revision_ = rev;
    while (!history_.empty() && history_.front().mod_revision < rev) {
      history_.pop_front();
      ++history_base_;
    }
  }
  settle();
  return cp_done{};
}

int64_t memory_control_plane::revision() const {
  lock guard(mtx_);
  return revision_;
}

std::optional<memory_control_plane::time_point>
memory_control_plane::lease_renewed_at(int64_t lease) const {
  lock guard(mtx_);
  auto i = leases_.find(lease);
  if (i == leases_.end())
    return std::nullopt;
  return i->second.renewed;
}

// -- internals ----------------------------------------------------------------

std::optional<cp_error> memory_control_plane::enter(const lock&) {
  expire_locked(now_());
  if (unreachable_)
    return cp_error{unreachable_code_,
                    "control plane unreachable (simulated fault)"};
  return std::nullopt;
}

void memory_control_plane::expire_locked(time_point now) {
  std::vector<int64_t> due;
  for (auto& [id, l] : leases_)
    if (now > l.renewed + std::chrono::seconds(l.ttl_s))
      due.push_back(id);
  for (auto id : due)
    drop_lease_locked(id);
}

void memory_control_plane::drop_lease_locked(int64_t lease) {
  auto i = leases_.find(lease);
  if (i == leases_.end())
    return;
  auto keys = std::move(i->second.keys);
  leases_.erase(i);
  const auto rev = revision_ + 1;
  bool changed = false;
  for (auto& k : keys)
    changed = del_locked(k, rev) || changed;
  if (changed)
    revision_ = rev;
}

void memory_control_plane::put_locked(const std::string& key,
                                      const std::string& value, int64_t lease,
                                      int64_t rev) {
  auto [it, fresh] = kvs_.try_emplace(key);
  auto& e = it->second;
  if (fresh) {
    e.key = key;
    e.create_revision = rev;
  }
  if (e.lease != 0 && e.lease != lease) {
    auto old = leases_.find(e.lease);
    if (old != leases_.end())
      old->second.keys.erase(key);
  }
  e.value = value;
  e.mod_revision = rev;
  e.lease = lease;
  if (lease != 0)
    leases_[lease].keys.insert(key);
  history_.push_back({watch_event::kind::put, key, value, rev});
}

bool memory_control_plane::del_locked(const std::string& key, int64_t rev) {
  auto i = kvs_.find(key);
  if (i == kvs_.end())
    return false;
  if (i->second.lease != 0) {
    auto l = leases_.find(i->second.lease);
    if (l != leases_.end())
      l->second.keys.erase(key);
  }
  kvs_.erase(i);
  history_.push_back({watch_event::kind::del, key, {}, rev});
  return true;
}

range_result
memory_control_plane::range_locked(const std::string& prefix) const {
  range_result out;
  out.revision = revision_;
  for (auto i = kvs_.lower_bound(prefix);
       i != kvs_.end() && has_prefix(i->first, prefix); ++i)
    out.kvs.push_back(i->second);
  return out;
}

bool memory_control_plane::compare_locked(const txn_compare& c) const {
  auto i = kvs_.find(c.key);
  switch (c.target) {
    case txn_compare::target_kind::mod_revision:
      return (i == kvs_.end() ? 0 : i->second.mod_revision) == c.revision;
    case txn_compare::target_kind::create_revision:
      return (i == kvs_.end() ? 0 : i->second.create_revision) == c.revision;
    case txn_compare::target_kind::value:
      return i != kvs_.end() && i->second.value == c.value; // etcd: absent
  }
  return false;
}

void memory_control_plane::settle() {
  if (mode_ == delivery::immediate)
    deliver();
}

} // namespace parley::cluster
