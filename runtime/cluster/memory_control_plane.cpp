#include "runtime/cluster/memory_control_plane.hpp"

#include <algorithm>
#include <atomic>
#include <limits>

namespace parley::cluster {

// -- watches ------------------------------------------------------------------

/// One watch: where it is in the history and its callbacks. `cb_mtx` is held
/// while a callback runs, so cancel() waits for a running one.
struct memory_control_plane::watch_rec {
  std::string prefix;
  int64_t min_rev = 0;   ///< events before this revision are skipped
  uint64_t next_seq = 0; ///< the next history sequence number to look at
  bool compacted = false;
  bool done = false; ///< failed (under the plane's mutex)
  watch_callback on_event;
  watch_failure_callback on_failure;
  std::recursive_mutex cb_mtx;
  std::atomic<bool> cancelled{false};
  std::atomic<int64_t> last{0};
};

namespace {

bool has_prefix(const std::string& key, const std::string& prefix) {
  return key.compare(0, prefix.size(), prefix) == 0;
}

cp_error lease_not_found(int64_t lease) {
  return {cp_errc::lease_gone,
          "etcdserver: requested lease not found (" + std::to_string(lease)
            + ")"};
}

class memory_watch_handle final : public watch_handle {
public:
  template <class Rec>
  explicit memory_watch_handle(std::shared_ptr<Rec> rec)
    : cancel_([rec] {
        std::lock_guard<std::recursive_mutex> guard(rec->cb_mtx);
        rec->cancelled = true;
      }),
      last_([rec] { return rec->last.load(); }) {
  }
  ~memory_watch_handle() override {
    cancel();
  }
  void cancel() override {
    cancel_();
  }
  int64_t last_revision() const override {
    return last_();
  }

private:
  std::function<void()> cancel_;
  std::function<int64_t()> last_;
};

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

std::unique_ptr<watch_handle>
memory_control_plane::watch(const std::string& prefix, int64_t start_revision,
                            watch_callback on_event,
                            watch_failure_callback on_failure) {
  auto rec = std::make_shared<watch_rec>();
  rec->prefix = prefix;
  rec->on_event = std::move(on_event);
  rec->on_failure = std::move(on_failure);
  {
    lock guard(mtx_);
    expire_locked(now_());
    const auto end = history_base_ + history_.size();
    if (start_revision <= 0) {
      rec->min_rev = revision_ + 1;
      rec->next_seq = end;
    } else if (start_revision < compact_revision_) {
      rec->compacted = true;
      rec->min_rev = start_revision;
    } else {
      rec->min_rev = start_revision;
      rec->next_seq = history_base_;
      while (rec->next_seq < end
             && history_[rec->next_seq - history_base_].mod_revision
                  < start_revision)
        ++rec->next_seq;
    }
    watches_.push_back(rec);
  }
  settle();
  return std::make_unique<memory_watch_handle>(rec);
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

size_t memory_control_plane::deliver() {
  size_t n = 0;
  {
    lock guard(mtx_);
    if (delivering_ || unreachable_)
      return 0; // the outer (or other thread's) deliver picks new events up
    delivering_ = true;
  }
  for (;;) {
    std::shared_ptr<watch_rec> w;
    watch_event ev;
    bool fail = false;
    {
      lock guard(mtx_);
      const auto end = history_base_ + history_.size();
      int64_t best = std::numeric_limits<int64_t>::max();
      for (auto& x : watches_) {
        if (x->done || x->cancelled)
          continue;
        if (x->compacted || x->next_seq < history_base_) {
          w = x;
          fail = true;
          break;
        }
        while (x->next_seq < end) {
          auto& e = history_[x->next_seq - history_base_];
          if (e.mod_revision >= x->min_rev && has_prefix(e.key, x->prefix))
            break;
          ++x->next_seq;
        }
        if (x->next_seq < end
            && history_[x->next_seq - history_base_].mod_revision < best) {
          best = history_[x->next_seq - history_base_].mod_revision;
          w = x;
        }
      }
      // Forget finished watches; stop when nothing is pending (or unreachable).
      watches_.erase(std::remove_if(watches_.begin(), watches_.end(),
                                    [](auto& x) {
                                      return x->done || x->cancelled;
                                    }),
                     watches_.end());
      if (!w || unreachable_) {
        delivering_ = false;
        return n;
      }
      if (fail)
        w->done = true;
      else
        ev = history_[w->next_seq++ - history_base_];
    }
    std::lock_guard<std::recursive_mutex> cb_guard(w->cb_mtx);
    if (w->cancelled)
      continue;
    if (fail) {
      if (w->on_failure)
        w->on_failure({cp_errc::compacted,
                       "watch start revision "
                         + std::to_string(w->min_rev)
                         + " is compacted"});
    } else {
      w->on_event(ev);
      w->last = ev.mod_revision;
    }
    ++n;
  }
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

range_result memory_control_plane::range_locked(const std::string& prefix) const {
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
