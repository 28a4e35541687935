// memory_control_plane's watches: where each one is in the history, and
// the delivery pump that hands events to their callbacks in revision order.

#include "runtime/cluster/memory_control_plane.hpp"

#include <algorithm>
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
  /// A client's switch: nothing is delivered (nor failed) while it is on.
  std::shared_ptr<const std::atomic<bool>> cut;
};

namespace {

bool has_prefix(const std::string& key, const std::string& prefix) {
  return key.compare(0, prefix.size(), prefix) == 0;
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

std::unique_ptr<watch_handle>
memory_control_plane::watch(const std::string& prefix, int64_t start_revision,
                            watch_callback on_event,
                            watch_failure_callback on_failure) {
  return watch_for(prefix, start_revision, std::move(on_event),
                   std::move(on_failure), nullptr);
}

std::unique_ptr<watch_handle> memory_control_plane::watch_for(
  const std::string& prefix, int64_t start_revision, watch_callback on_event,
  watch_failure_callback on_failure,
  std::shared_ptr<const std::atomic<bool>> cut) {
  auto rec = std::make_shared<watch_rec>();
  rec->cut = std::move(cut);
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
        if (x->done || x->cancelled || (x->cut && x->cut->load()))
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

} // namespace parley::cluster
