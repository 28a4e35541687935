#pragma once

// Pure pieces of the conversation's send path, kept apart so unit tests can
// pin them down: the idempotency window, the bounded cache of recent send
// keys, and gapless sequence allocation with roll-back.

#include <cstdint>
#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <functional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

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

  bool operator==(const send_key& o) const {
    return user == o.user && device == o.device && cmid == o.cmid;
  }
};

/// A 64-bit hash of a send key (for `committed_keys`; collisions only cost
/// a store lookup).
inline uint64_t hash_of(const send_key& k) {
  auto mix = [](uint64_t x) { // splitmix64's finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  auto h = std::hash<std::string>{}(k.cmid);
  return mix(h ^ mix(k.user + 0x9e3779b97f4a7c15ULL * (k.device + 1)));
}

struct send_key_hash {
  size_t operator()(const send_key& k) const {
    return static_cast<size_t>(hash_of(k));
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

private:
  void evict() {
    while (order_.size() > capacity_) {
      map_.erase(order_.front());
      order_.pop_front();
    }
  }

  size_t capacity_;
  std::unordered_map<send_key, send_result, send_key_hash> map_;
  std::deque<send_key> order_;
};

/// A multiset of 64-bit hashes in one flat array (open addressing, linear
/// probing, deletion by backward shift): a lookup or an update touches one
/// or two cache lines, where a node-based map chases a bucket and a node,
/// both cold when the set is large. Hashes are assumed well mixed (the low
/// bits pick the slot). 0 marks an empty slot, so hash 0 is kept as 1: the
/// two are one value here (a false "contains" for a filter, never a miss).
class hash_multiset {
public:
  void insert(uint64_t h) {
    if ((size_ + 1) * 2 > slots_.size())
      grow();
    place(stored(h));
    ++size_;
  }

  bool contains(uint64_t h) const {
    return find(stored(h)) != npos;
  }

  /// Removes one copy of `h`; false if there is none.
  bool erase_one(uint64_t h) {
    auto i = find(stored(h));
    if (i == npos)
      return false;
    // Backward shift: a later member of the probe run moves into the hole
    // unless its home slot lies cyclically in (hole, its slot].
    auto mask = slots_.size() - 1;
    for (auto j = (i + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
      auto home = slot_of(slots_[j]);
      bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = 0;
    --size_;
    return true;
  }

  size_t size() const {
    return size_;
  }

private:
  static constexpr size_t npos = ~size_t{0};

  static uint64_t stored(uint64_t h) {
    return h == 0 ? 1 : h;
  }

  size_t slot_of(uint64_t h) const {
    return static_cast<size_t>(h) & (slots_.size() - 1);
  }

  size_t find(uint64_t h) const {
    if (size_ == 0)
      return npos;
    auto mask = slots_.size() - 1;
    for (auto i = slot_of(h);; i = (i + 1) & mask) {
      if (slots_[i] == h)
        return i;
      if (slots_[i] == 0)
        return npos;
    }
  }

  void place(uint64_t h) {
    auto mask = slots_.size() - 1;
    auto i = slot_of(h);
    while (slots_[i] != 0)
      i = (i + 1) & mask;
    slots_[i] = h;
  }

  void grow() {
    std::vector<uint64_t> old(slots_.empty() ? 64 : slots_.size() * 2, 0);
    old.swap(slots_);
    for (auto h : old)
      if (h != 0)
        place(h);
  }

  std::vector<uint64_t> slots_; ///< size a power of two; 0: empty
  size_t size_ = 0;
};

/// Hashes of the keys this incarnation committed, for as long as their
/// idempotency window lasts, up to `capacity` of them: a key whose hash is
/// not here (and that no earlier incarnation can have committed inside the
/// window) was never committed, so its send needs no store lookup. Answers
/// live in `recent_sends`; this only rules keys out, at 8 bytes a key.
class committed_keys {
public:
  explicit committed_keys(size_t capacity = 65536) : capacity_(capacity) {
  }

  void set_capacity(size_t n) {
    capacity_ = n;
  }

  /// Adds the hash of a key committed at `at_ms`; forgets hashes whose
  /// window ended by `now_ms`. Returns the end of the window of the newest
  /// hash dropped for room while still inside its window (0: none): until
  /// then, a key missing here may have been committed.
  int64_t add(uint64_t h, int64_t at_ms, int64_t now_ms, int64_t window_ms) {
    while (!order_.empty()
           && !idempotency_live(now_ms, order_.front().second, window_ms))
      drop_front();
    order_.emplace_back(h, at_ms);
    hashes_.insert(h);
    int64_t live_until = 0;
    while (order_.size() > capacity_) {
      live_until = std::max(live_until, order_.front().second + window_ms);
      drop_front();
    }
    return live_until;
  }

  bool may_contain(uint64_t h) const {
    return hashes_.contains(h);
  }

  size_t size() const {
    return order_.size();
  }

private:
  void drop_front() {
    hashes_.erase_one(order_.front().first);
    order_.pop_front();
  }

  size_t capacity_;
  std::deque<std::pair<uint64_t, int64_t>> order_;
  hash_multiset hashes_;
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
