#include <doctest/doctest.h>

#include <unordered_set>

#include "actors/send_keys.hpp"

using namespace parley;

TEST_CASE("idempotency records answer repeats inside the window only") {
  const int64_t day = 24 * 3600 * 1000;
  struct row {
    int64_t now, accepted, window;
    bool live;
  };
  for (auto r : {row{1000, 1000, day, true},           // same instant
                 row{1000 + day - 1, 1000, day, true}, // last live ms
                 row{1000 + day, 1000, day, false},    // window is half-open
                 row{1000 + 2 * day, 1000, day, false},
                 row{500, 1000, day, true},            // clock went back
                 row{1001, 1000, 1, false}}) {
    CAPTURE(r.now);
    CAPTURE(r.accepted);
    CHECK(idempotency_live(r.now, r.accepted, r.window) == r.live);
  }
}

TEST_CASE("recent sends keep the first answer and evict the oldest") {
  recent_sends rs{2};
  send_key a{1, 1, "a"}, b{1, 1, "b"}, c{1, 2, "a"};
  rs.add(a, send_result{"ida", 1, 10, false});
  rs.add(a, send_result{"other", 9, 99, false}); // first answer wins
  REQUIRE(rs.find(a));
  CHECK(rs.find(a)->server_sequence == 1);
  rs.add(b, send_result{"idb", 2, 11, false});
  CHECK(rs.find(c) == nullptr); // same cmid, other device: other key
  rs.add(c, send_result{"idc", 3, 12, false});
  CHECK(rs.size() == 2);
  CHECK(rs.find(a) == nullptr); // oldest evicted
  CHECK(rs.find(b));
  CHECK(rs.find(c));
  rs.set_capacity(1);
  CHECK(rs.find(b) == nullptr);
  CHECK(rs.find(c));
}

TEST_CASE("sequences are allocated gapless from the head on disk") {
  sequence_allocator fresh;
  CHECK(fresh.assign() == 1);
  CHECK(fresh.assign() == 2);
  sequence_allocator resumed{41};
  CHECK(resumed.next() == 42);
  CHECK(resumed.assign() == 42);
  CHECK(resumed.assign() == 43);
}

TEST_CASE("a failed commit rolls allocation back to the first doomed "
          "sequence in a new epoch") {
  sequence_allocator seqs{10};
  CHECK(seqs.epoch() == 1);
  seqs.assign(); // 11 committed
  seqs.assign(); // 12 fails
  seqs.assign(); // 13 doomed with it
  seqs.roll_back(12);
  CHECK(seqs.epoch() == 2);
  CHECK(seqs.assign() == 12); // reused: no gap
  // A failed non-message commit (no sequence in flight) keeps the position
  // but still starts a new epoch.
  seqs.roll_back(std::nullopt);
  CHECK(seqs.epoch() == 3);
  CHECK(seqs.next() == 13);
  // Never moves forward on roll-back.
  seqs.roll_back(99);
  CHECK(seqs.next() == 13);
}

TEST_CASE("committed keys rule out what was never committed, while the "
          "window lasts") {
  const int64_t window = 1000;
  committed_keys ck{3};
  send_key a{1, 1, "a"}, b{1, 1, "b"}, c{1, 2, "a"}, d{2, 1, "a"};
  CHECK(hash_of(a) != hash_of(c)); // other device, same cmid
  CHECK(hash_of(a) != hash_of(d)); // other user, same cmid
  CHECK(hash_of(a) == hash_of(send_key{1, 1, "a"}));
  CHECK_FALSE(ck.may_contain(hash_of(a)));
  CHECK(ck.add(hash_of(a), 100, 100, window) == 0);
  CHECK(ck.add(hash_of(b), 200, 200, window) == 0);
  CHECK(ck.may_contain(hash_of(a)));
  CHECK(ck.may_contain(hash_of(b)));
  CHECK_FALSE(ck.may_contain(hash_of(c)));
  // a's window ends at 1100: forgotten without a trace.
  CHECK(ck.add(hash_of(c), 1100, 1100, window) == 0);
  CHECK_FALSE(ck.may_contain(hash_of(a)));
  CHECK(ck.size() == 2);
  // Over capacity while live: the oldest goes and its window end comes back
  // (until then, unknown keys need the store).
  CHECK(ck.add(hash_of(d), 1150, 1150, window) == 0);
  CHECK(ck.add(hash_of(a), 1160, 1160, window) == 200 + window);
  CHECK_FALSE(ck.may_contain(hash_of(b)));
  CHECK(ck.may_contain(hash_of(a)));
  CHECK(ck.size() == 3);
}

TEST_CASE("committed keys count equal hashes: one leaving keeps the other") {
  committed_keys ck{2};
  ck.add(42, 10, 10, 1000);
  ck.add(42, 20, 20, 1000);
  ck.add(7, 30, 30, 1000); // drops the first 42
  CHECK(ck.may_contain(42));
  ck.add(8, 40, 40, 1000); // drops the second
  CHECK_FALSE(ck.may_contain(42));
}

namespace {

/// xorshift64: a seeded, repeatable stream for the model tests.
struct xorshift {
  uint64_t x;

  uint64_t operator()() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
};

/// One step on both the set and its model: erase one copy of `v` (the set
/// must say whether there was one) or insert it.
void step_both(hash_multiset& set, std::unordered_multiset<uint32_t>& ref,
               uint32_t v, bool erase) {
  if (erase) {
    CHECK(set.erase_one(v) == (ref.count(v) > 0));
    if (auto i = ref.find(v); i != ref.end())
      ref.erase(i);
  } else {
    set.insert(v);
    ref.insert(v);
  }
  REQUIRE(set.size() == ref.size());
}

} // namespace

TEST_CASE("hash multiset agrees with a node-based multiset over random "
          "inserts and erases") {
  // Few distinct values, many collisions on the low bits: long probe runs,
  // wrap-around at the end of the array, duplicates, and backward shifts.
  for (uint64_t seed : {1u, 2u, 3u, 4u, 5u}) {
    CAPTURE(seed);
    xorshift next{seed};
    hash_multiset set;
    std::unordered_multiset<uint32_t> ref;
    for (int step = 0; step < 20000; ++step) {
      auto r = next();
      // High bits vary, low bits from a small range (same home slots);
      // sometimes 0 and 1, which the set keeps as one value.
      uint32_t v = r % 7 == 0 ? (r >> 8) % 2
                              : uint32_t(((r >> 20) << 12) | (r % 96));
      if (v == 0)
        v = 1; // what the set stores for 0 (checked below)
      step_both(set, ref, v, r % 3 == 0 && !ref.empty());
      auto probe = uint32_t(((next() >> 20) << 12) | (next() % 96));
      if (probe == 0)
        probe = 1;
      REQUIRE(set.contains(probe) == (ref.count(probe) > 0));
      REQUIRE(set.contains(v) == (ref.count(v) > 0));
    }
    for (auto v : ref)
      REQUIRE(set.contains(v));
    while (!ref.empty()) {
      auto v = *ref.begin();
      REQUIRE(set.erase_one(v));
      ref.erase(ref.begin());
      if (ref.count(v) == 0)
        REQUIRE_FALSE(set.contains(v));
    }
    CHECK(set.size() == 0);
  }
}

TEST_CASE("hash multiset keeps hash 0 (as 1) and erases one copy at a time") {
  hash_multiset set;
  CHECK_FALSE(set.contains(0));
  CHECK_FALSE(set.erase_one(0));
  set.insert(0);
  CHECK(set.contains(0));
  CHECK(set.contains(1)); // one value here: a false positive, never a miss
  set.insert(5);
  set.insert(5);
  CHECK(set.erase_one(5));
  CHECK(set.contains(5));
  CHECK(set.erase_one(5));
  CHECK_FALSE(set.contains(5));
  CHECK(set.erase_one(0));
  CHECK_FALSE(set.contains(0));
  CHECK(set.size() == 0);
}

TEST_CASE("hash multiset probe runs that wrap around the end of the array") {
  // At most 28 members: the array stays at 64 slots, and every value's
  // home is one of the last four slots or the first four, so runs wrap.
  xorshift next{99};
  hash_multiset set;
  std::unordered_multiset<uint32_t> ref;
  for (int step = 0; step < 50000; ++step) {
    auto r = next();
    uint32_t v = (((r >> 16) % 5 + 1) << 6) | ((60 + r % 8) & 63);
    step_both(set, ref, v, ref.size() >= 28 || (r >> 40) % 2 == 0);
    for (uint64_t hi = 1; hi <= 5; ++hi)
      for (uint64_t lo : {60u, 61u, 62u, 63u, 0u, 1u, 2u, 3u}) {
        auto probe = uint32_t((hi << 6) | lo);
        REQUIRE(set.contains(probe) == (ref.count(probe) > 0));
      }
  }
}

TEST_CASE("recent sends agree with a plain model over random adds, repeats "
          "and capacity changes") {
  xorshift next{7};
  size_t capacity = 50;
  recent_sends rs{capacity};
  std::deque<std::pair<send_key, send_result>> model; // oldest first
  auto model_find = [&](const send_key& k) -> const send_result* {
    for (auto& [mk, mr] : model)
      if (mk == k)
        return &mr;
    return nullptr;
  };
  for (int step = 0; step < 20000; ++step) {
    auto r = next();
    send_key k{1 + r % 3, 1 + (r >> 8) % 2, "c" + std::to_string((r >> 16) % 120)};
    if (r % 97 == 0) {
      capacity = 1 + (r >> 24) % 80;
      rs.set_capacity(capacity);
      while (model.size() > capacity)
        model.pop_front();
    } else if (r % 2 == 0) {
      send_result res{"id" + std::to_string(step), uint64_t(step), step, false};
      rs.add(k, res);
      if (!model_find(k)) {
        model.emplace_back(k, res);
        if (model.size() > capacity)
          model.pop_front();
      }
    }
    REQUIRE(rs.size() == model.size());
    auto* got = rs.find(k);
    auto* want = model_find(k);
    REQUIRE((got == nullptr) == (want == nullptr));
    if (got)
      REQUIRE(got->server_sequence == want->server_sequence);
  }
}

TEST_CASE("send-key tables at capacity stay at the size their capacity "
          "needs") {
  // Each table doubles when over half full; a full one that took its new
  // key before dropping the oldest doubled once more, for nothing, and a
  // hundred conversations doing that at once stalled the node
  // (tools/bench/RESULTS.md, issue 3).
  recent_sends rs{1024};
  committed_keys ck{1024};
  for (int i = 0; i < 5000; ++i) {
    send_key k{1, 1, "k" + std::to_string(i)};
    rs.add(k, send_result{"id", uint64_t(i + 1), i, false});
    ck.add(hash_of(k), i, i, 1'000'000);
    if (i == 1023) {
      CHECK(rs.slot_count() == 2048);
      CHECK(ck.slot_count() == 2048);
    }
  }
  CHECK(rs.size() == 1024);
  CHECK(ck.size() == 1024);
  CHECK(rs.slot_count() == 2048);
  CHECK(ck.slot_count() == 2048);
  // Still the newest 1024.
  CHECK(rs.find(send_key{1, 1, "k3976"}));
  CHECK_FALSE(rs.find(send_key{1, 1, "k3975"}));
}

TEST_CASE("committed keys keep 32 bits of a hash: a shared half is a false "
          "positive, never a miss") {
  committed_keys ck{8};
  const uint64_t h = 0x0123456789abcdefULL;
  ck.add(h, 0, 0, 1000);
  CHECK(ck.may_contain(h));
  // Same fold (high and low halves swapped): may contain.
  CHECK(ck.may_contain((h << 32) | (h >> 32)));
  CHECK_FALSE(ck.may_contain(h + 1));
  // Capacity 0 keeps nothing and says until when a key may be unknown.
  committed_keys none{0};
  CHECK(none.add(h, 50, 50, 1000) == 1050);
  CHECK_FALSE(none.may_contain(h));
  CHECK(none.size() == 0);
}
