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

#include "runtime/core/messages.hpp"

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

/// Slots in one flat array, found by a hash (open addressing, linear
/// probing, deletion by backward shift): a lookup or an update touches one
/// or two cache lines, where a node-based map chases a bucket and a node,
/// both cold when the map is large. A slot holds a hash of type `Hash`
/// (well mixed: its low bits pick the slot; 0 marks an empty slot, so hash
/// 0 is kept as 1) and, if `WithValues`, a 64-bit value of the owner's.
///
/// The array doubles when it would be over half full. That copy is the
/// expensive moment (fresh pages, and a random write per member), so
/// owners keep their tables small: when a hundred conversations' tables
/// doubled in the same instant, the workers stalled for 20-30 ms
/// (tools/bench/RESULTS.md, issue 3).
template <class Hash, bool WithValues>
class flat_hash_slots {
public:
  static constexpr size_t npos = ~size_t{0};

  /// The first slot holding hash `h` and a value for which `match` is
  /// true (any slot holding `h` if there are no values), or npos.
  template <class Match>
  size_t find(Hash h, Match match) const {
    if (size_ == 0)
      return npos;
    h = stored(h);
    auto mask = hashes_.size() - 1;
    for (auto i = home(h);; i = (i + 1) & mask) {
      if (hashes_[i] == 0)
        return npos;
      if (hashes_[i] == h && match(value_at(i)))
        return i;
    }
  }

  void insert(Hash h, uint64_t value = 0) {
    if ((size_ + 1) * 2 > hashes_.size())
      grow();
    place(stored(h), value);
    ++size_;
  }

  /// Empties slot `i` (from find), moving later members of its probe run
  /// back unless their home lies cyclically in (i, their slot].
  void erase_at(size_t i) {
    auto mask = hashes_.size() - 1;
    for (auto j = (i + 1) & mask; hashes_[j] != 0; j = (j + 1) & mask) {
      auto k = home(hashes_[j]);
      bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
      if (!stays) {
        hashes_[i] = hashes_[j];
        if constexpr (WithValues)
          values_[i] = values_[j];
        i = j;
      }
    }
    hashes_[i] = 0;
    --size_;
  }

  size_t size() const {
    return size_;
  }

  /// Slots in the array (tests).
  size_t slot_count() const {
    return hashes_.size();
  }

private:
  /// The hash as stored (0 becomes 1).
  static Hash stored(Hash h) {
    return h == 0 ? 1 : h;
  }

  size_t home(Hash h) const {
    return static_cast<size_t>(h) & (hashes_.size() - 1);
  }

  uint64_t value_at(size_t i) const {
    if constexpr (WithValues)
      return values_[i];
    else
      return 0;
  }

  void place(Hash h, uint64_t value) {
    auto mask = hashes_.size() - 1;
    auto i = home(h);
    while (hashes_[i] != 0)
      i = (i + 1) & mask;
    hashes_[i] = h;
    if constexpr (WithValues)
      values_[i] = value;
  }

  void grow() {
    std::vector<Hash> hashes(hashes_.empty() ? 64 : hashes_.size() * 2);
    std::vector<uint64_t> values(WithValues ? hashes.size() : 0);
    hashes.swap(hashes_);
    values.swap(values_);
    for (size_t i = 0; i < hashes.size(); ++i)
      if (hashes[i] != 0)
        place(hashes[i], WithValues ? values[i] : 0);
  }

  std::vector<Hash> hashes_; ///< size a power of two; 0: empty
  std::vector<uint64_t> values_; ///< empty without values
  size_t size_ = 0;
};

/// A multiset of 32-bit hashes (hash 0 and 1 are one value here: a false
/// "contains" for a filter, never a miss). Four bytes a slot: half the
/// memory of 64-bit hashes, a quarter of hash-and-value slots.
class hash_multiset {
public:
  void insert(uint32_t h) {
    slots_.insert(h);
  }

  bool contains(uint32_t h) const {
    return slots_.find(h, any) != slots::npos;
  }

  /// Removes one copy of `h`; false if there is none.
  bool erase_one(uint32_t h) {
    auto i = slots_.find(h, any);
    if (i == slots::npos)
      return false;
    slots_.erase_at(i);
    return true;
  }

  size_t size() const {
    return slots_.size();
  }

  size_t slot_count() const {
    return slots_.slot_count();
  }

private:
  using slots = flat_hash_slots<uint32_t, false>;

  static bool any(uint64_t) {
    return true;
  }

  slots slots_;
};

/// The answers of recently committed sends, bounded to `capacity` entries
/// (oldest evicted first). Misses fall back to the store's index, so the
/// bound trades memory for reads, never correctness. Entries sit in
/// arrival order; a flat table maps each key's hash to its entry.
class recent_sends {
public:
  explicit recent_sends(size_t capacity = 1024) : capacity_(capacity) {
  }

  void set_capacity(size_t n) {
    capacity_ = n;
    evict(n);
  }

  /// Remembers `res` for `key`, sent with request digest `digest` (0:
  /// unknown, matches any); the first answer wins.
  void add(const send_key& key, const send_result& res, uint64_t digest = 0) {
    auto h = hash_of(key);
    if (capacity_ == 0 || find_entry(key, h))
      return;
    // Room first: the table then never holds more than `capacity` keys,
    // and never doubles past the size they need.
    evict(capacity_ - 1);
    index_.insert(h, first_ + entries_.size());
    entries_.push_back(entry{key, res, digest});
  }

  const send_result* find(const send_key& key) const {
    auto e = find_entry(key, hash_of(key));
    return e ? &e->res : nullptr;
  }

  /// The answer to `key` and the digest of the request it answered.
  struct hit {
    const send_result* res = nullptr;
    uint64_t digest = 0;
  };

  hit find_with_digest(const send_key& key) const {
    return find_with_digest(key, hash_of(key));
  }

  /// The same, `h` being hash_of(key) (a caller that has it already).
  hit find_with_digest(const send_key& key, uint64_t h) const {
    auto e = find_entry(key, h);
    return e ? hit{&e->res, e->digest} : hit{};
  }

  size_t size() const {
    return entries_.size();
  }

  /// Slots of the hash table (tests).
  size_t slot_count() const {
    return index_.slot_count();
  }

private:
  struct entry {
    send_key key;
    send_result res;
    uint64_t digest;
  };

  const entry* find_entry(const send_key& key, uint64_t h) const {
    const entry* found = nullptr;
    index_.find(h, [&](uint64_t n) {
      auto& e = entries_[n - first_];
      found = e.key == key ? &e : nullptr;
      return found != nullptr;
    });
    return found;
  }

  /// Drops the oldest entries until at most `keep` remain.
  void evict(size_t keep) {
    while (entries_.size() > keep) {
      auto oldest = first_;
      auto i = index_.find(hash_of(entries_.front().key),
                           [oldest](uint64_t n) { return n == oldest; });
      index_.erase_at(i);
      entries_.pop_front();
      ++first_;
    }
  }

  size_t capacity_;
  std::deque<entry> entries_; ///< oldest first; entries_[0] is number first_
  uint64_t first_ = 0;
  flat_hash_slots<uint64_t, true> index_; ///< hash -> entry number
};

/// Hashes of the keys this incarnation committed, for as long as their
/// idempotency window lasts, up to `capacity` of them: a key whose hash is
/// not here (and that no earlier incarnation can have committed inside the
/// window) was never committed, so its send needs no store lookup. Answers
/// live in `recent_sends`; this only rules keys out, so it keeps 32 bits of
/// each hash (two keys that share them cost a store lookup, one new send in
/// 65,000 at 65,536 keys), at 24-32 bytes a key: its hash and time in
/// arrival order, and a slot of a flat table at most half full.
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
           && !idempotency_live(now_ms, order_.front().at_ms, window_ms))
      drop_front();
    // Room first, so that the table never holds more than `capacity`.
    int64_t live_until = 0;
    while (!order_.empty() && order_.size() >= capacity_) {
      live_until = std::max(live_until, order_.front().at_ms + window_ms);
      drop_front();
    }
    if (capacity_ == 0)
      return std::max(live_until, at_ms + window_ms);
    order_.push_back(kept{fold(h), at_ms});
    hashes_.insert(fold(h));
    return live_until;
  }

  bool may_contain(uint64_t h) const {
    return hashes_.contains(fold(h));
  }

  size_t size() const {
    return order_.size();
  }

  /// Slots of the hash table (tests).
  size_t slot_count() const {
    return hashes_.slot_count();
  }

private:
  struct kept {
    uint32_t hash;
    int64_t at_ms;
  };

  static uint32_t fold(uint64_t h) {
    return static_cast<uint32_t>(h ^ (h >> 32));
  }

  void drop_front() {
    hashes_.erase_one(order_.front().hash);
    order_.pop_front();
  }

  size_t capacity_;
  std::deque<kept> order_;
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
