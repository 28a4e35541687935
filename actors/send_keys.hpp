#pragma once

// Pure pieces of the conversation's send path, kept apart so unit tests can
// pin them down: the idempotency window, the bounded cache of recent send
// keys, and gapless sequence allocation with roll-back.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include "actors/messages.hpp"

namespace parley {

/// The idempotency key of a send, scoped to its conversation.
struct send_key {
  user_id user = 0;
  device_id device = 0;
  std::string cmid;

  bool operator<(const send_key& o) const {
    return std::tie(user, device, cmid) < std::tie(o.user, o.device, o.cmid);
  }
};

/// True while a send accepted at `accepted_at_ms` still answers repeats at
/// `now_ms`: the window is half-open, [accepted_at, accepted_at + window).
/// A clock that went backwards keeps the record live.
inline bool idempotency_live(int64_t now_ms, int64_t accepted_at_ms,
                             int64_t window_ms) {
  return now_ms - accepted_at_ms < window_ms;
}

/// The answers of recently committed sends, bounded to `capacity` entries
/// (oldest evicted first). Misses fall back to the store's index, so the
/// bound trades memory for reads, never correctness.
class recent_sends {
public:
  explicit recent_sends(size_t capacity = 1024) : capacity_(capacity) {
  }

  void set_capacity(size_t n) {
    capacity_ = n;
    evict();
  }

  /// Remembers `res` for `key` (first answer wins).
  void add(const send_key& key, const send_result& res) {
    if (map_.emplace(key, res).second)
      order_.push_back(key);
    evict();
  }

  const send_result* find(const send_key& key) const {
    auto i = map_.find(key);
    return i == map_.end() ? nullptr : &i->second;
  }

  size_t size() const {
    return map_.size();
  }

  /// True once any answer was evicted: from then on, a key missing here
  /// may still have been committed, and only the store can tell.
  bool evicted() const {
    return evicted_;
  }

private:
  void evict() {
    while (order_.size() > capacity_) {
      map_.erase(order_.front());
      order_.pop_front();
      evicted_ = true;
    }
  }

  bool evicted_ = false;

  size_t capacity_;
  std::map<send_key, send_result> map_;
  std::deque<send_key> order_;
};

/// Gapless sequence allocation for one conversation. Sequences are assigned
/// before their commit; when a commit fails, every later assignment of the
/// same epoch is doomed too, so allocation rolls back to the first doomed
/// sequence and starts a new epoch (the store writer fences the old one).
class sequence_allocator {
public:
  /// Resumes after `head`, the highest sequence on disk.
  explicit sequence_allocator(sequence head = 0) : next_(head + 1) {
  }

  sequence next() const {
    return next_;
  }

  uint64_t epoch() const {
    return epoch_;
  }

  /// Assigns the next sequence.
  sequence assign() {
    return next_++;
  }

  /// A commit of the current epoch failed; `first_doomed` is the lowest
  /// sequence still uncommitted (none: no message was in flight).
  void roll_back(std::optional<sequence> first_doomed) {
    if (first_doomed && *first_doomed < next_)
      next_ = *first_doomed;
    ++epoch_;
  }

private:
  sequence next_;
  uint64_t epoch_ = 1;
};

} // namespace parley
