#pragma once

// reply_deadlines: the answers an actor waits for, by tag, with one timeout
// for all of them; a plain data structure (no actor, no clock of its own).
//
// Why: in CAF 0.17 every `request(dest, timeout, ...)` registers its timeout
// with the thread-safe actor clock (a mutex and a wake-up of the clock
// thread), and the entry stays there until it fires, answered or not. On the
// hot paths (a client's send and receipt, a conversation's commit) that cost
// half the throughput. Instead the caller sends an ordinary message that
// carries a tag from `add`, the callee answers with an ordinary message
// carrying the tag, `take(tag)` finds what the caller needs to finish, and
// one timer per table (not per request) expires what was not answered.
//
// Contract:
// - Tags grow by one from 1; a tag is never reused within a table.
// - Every entry waits the same `timeout`, so deadlines are ordered like tags
//   (a clock that went backwards is clamped: a deadline is never earlier
//   than the one before it).
// - `expire(now, f)` removes every entry whose deadline is <= now, then
//   calls f(tag, entry) for each in tag order; f may `add` and `take`.
// - An entry is finished at most once: by `take` or by `expire`. A late
//   answer (its entry expired) finds nothing and is dropped by the caller.
// - Timer: `arm()` is true when the caller must schedule its tick now (the
//   table has entries and no tick is outstanding); `tick()` marks the tick
//   as arrived. So at most one tick is ever outstanding, and a table that
//   empties stops ticking. With a tick every `period()` (a fifth of the
//   timeout), an entry expires between timeout and 1.2 x timeout after it
//   was added.
//
// Time is the caller's: pass its actor clock's now() (CAF's test
// coordinator drives it in simulations).

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

namespace parley {

template <class Entry>
class reply_deadlines {
public:
  using clock_type = std::chrono::steady_clock;
  using time_point = clock_type::time_point;
  using duration = clock_type::duration;

  explicit reply_deadlines(duration timeout) : timeout_(timeout) {
    // nop
  }

  /// The timeout of every entry.
  duration timeout() const noexcept {
    return timeout_;
  }

  /// How often the caller's tick comes while entries wait.
  duration period() const noexcept {
    return timeout_ / 5 > duration::zero() ? timeout_ / 5 : duration{1};
  }

  /// Entries waiting.
  size_t size() const noexcept {
    return live_;
  }

  bool empty() const noexcept {
    return live_ == 0;
  }

  /// Adds `e`, due at `now + timeout()`; returns its tag.
  uint64_t add(time_point now, Entry e) {
    auto due = now + timeout_;
    if (!slots_.empty() && due < slots_.back().due)
      due = slots_.back().due;
    if (slots_.empty())
      first_ = next_;
    slots_.push_back(slot{due, std::move(e)});
    ++live_;
    return next_++;
  }

  /// Removes and returns the entry of `tag`; nothing if it was taken or
  /// expired already (or never added).
  std::optional<Entry> take(uint64_t tag) {
    if (tag < first_ || tag - first_ >= slots_.size())
      return std::nullopt;
    auto& s = slots_[tag - first_];
    if (!s.entry)
      return std::nullopt;
    std::optional<Entry> result = std::move(s.entry);
    s.entry.reset();
    --live_;
    trim();
    return result;
  }

  /// Removes every entry due at or before `now` and calls f(tag, entry)
  /// for each, in tag order. Returns how many expired.
  template <class F>
  size_t expire(time_point now, F f) {
    std::vector<std::pair<uint64_t, Entry>> due;
    while (!slots_.empty() && slots_.front().due <= now) {
      if (slots_.front().entry) {
        due.emplace_back(first_, std::move(*slots_.front().entry));
        --live_;
      }
      slots_.pop_front();
      ++first_;
    }
    trim();
    for (auto& [tag, e] : due)
      f(tag, e);
    return due.size();
  }

  /// True if the caller must schedule a tick now (after period()): entries
  /// wait and no tick is outstanding. Marks the tick as outstanding.
  bool arm() noexcept {
    if (ticking_ || live_ == 0)
      return false;
    ticking_ = true;
    return true;
  }

  /// The caller's tick arrived: none is outstanding any more. Call expire,
  /// then arm() to re-arm while entries remain.
  void tick() noexcept {
    ticking_ = false;
  }

  /// A tick is outstanding.
  bool ticking() const noexcept {
    return ticking_;
  }

private:
  struct slot {
    time_point due;
    std::optional<Entry> entry;
  };

  /// Drops finished slots off the front (the tags before the oldest one
  /// that still waits).
  void trim() {
    while (!slots_.empty() && !slots_.front().entry) {
      slots_.pop_front();
      ++first_;
    }
  }

  duration timeout_;
  std::deque<slot> slots_; ///< slots_[i] holds tag first_ + i
  uint64_t first_ = 1;
  uint64_t next_ = 1;
  size_t live_ = 0;
  bool ticking_ = false;
};

} // namespace parley
