// Placement: the partition hash is pinned (data is placed by it), spreads
// sequential ids evenly, and keeps kinds apart; the partition map validates
// its shape and its epoch only grows; the partition count is kept in the
// store at first start and a different one is refused afterwards.

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/leveldb_backend.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/meta_store.hpp"
#include "temp_dir.hpp"

using namespace parley;

namespace {

/// Pearson's chi-square statistic of `ids` placed over `partitions`.
double chi_square(uint8_t kind, uint64_t first, uint64_t count,
                  uint32_t partitions, uint64_t* lo, uint64_t* hi) {
  std::vector<uint64_t> bins(partitions, 0);
  for (uint64_t id = first; id < first + count; ++id)
    ++bins[partition_of(placement_key{kind, id}, partitions)];
  double expected = double(count) / partitions;
  double chi = 0;
  *lo = count;
  *hi = 0;
  for (auto n : bins) {
    chi += (double(n) - expected) * (double(n) - expected) / expected;
    *lo = std::min(*lo, n);
    *hi = std::max(*hi, n);
  }
  return chi;
}

} // namespace

TEST_CASE("the placement hash is pinned: SplitMix64's finalizer over id + "
          "kind * golden gamma") {
  // Kind 1, id 0 is SplitMix64's first output from seed 0 (a published
  // value), so the constants are the textbook ones.
  CHECK(placement_hash(placement_key::conversation(0))
        == 0xE220A8397B1DCDAFull);
  CHECK(placement_hash(placement_key::conversation(1))
        == 0x910A2DEC89025CC1ull);
  CHECK(placement_hash(placement_key::conversation(42))
        == 0xBDD732262FEB6E95ull);
  CHECK(placement_hash(placement_key::user(42)) == 0x28EFE333B266F103ull);
  CHECK(placement_hash(placement_key::conversation(UINT64_MAX))
        == 0xE4D971771B652C20ull);
  CHECK(placement_hash(placement_key::user(1000000007))
        == 0xC1A7632E52C34641ull);
  // Their slots are the top 16 bits, and the partitions those give among
  // the default 64 the top 6: slot * 64 >> 16.
  CHECK(slot_of(placement_key::conversation(0)) == 0xE220);
  CHECK(slot_of(placement_key::user(1000000007)) == 0xC1A7);
  CHECK(partition_of(placement_key::conversation(0), 64) == 56);
  CHECK(partition_of(placement_key::conversation(1), 64) == 36);
  CHECK(partition_of(placement_key::conversation(42), 64) == 47);
  CHECK(partition_of(placement_key::user(42), 64) == 10);
  CHECK(partition_of(placement_key::user(1000000007), 64) == 48);
  // And among 3 (no power of two): 0xE220 * 3 >> 16 = 2, 0x28EF * 3 >> 16 = 0.
  CHECK(partition_of(placement_key::conversation(0), 3) == 2);
  CHECK(partition_of(placement_key::user(42), 3) == 0);
}

TEST_CASE("sequential ids spread evenly over 64 partitions") {
  // 64,000 sequential ids of each kind: the chi-square statistic (63
  // degrees of freedom) stays under 103.4, its 0.1 % critical value, and
  // every partition holds within 10 % of its share. Deterministic: the hash
  // is fixed, so this either always passes or always fails.
  for (auto kind : {id_kind_conversation, id_kind_user}) {
    CAPTURE(int(kind));
    uint64_t lo = 0;
    uint64_t hi = 0;
    auto chi = chi_square(kind, 1, 64000, 64, &lo, &hi);
    CHECK(chi < 103.4);
    CHECK(lo >= 900);
    CHECK(hi <= 1100);
  }
  // A count that is no power of two, too.
  uint64_t lo = 0;
  uint64_t hi = 0;
  auto chi = chi_square(id_kind_conversation, 1, 60000, 60, &lo, &hi);
  CHECK(chi < 99.6); // 59 degrees of freedom, 0.1 %
  CHECK(lo >= 850);   // its fullest and emptiest are 4 sigma out: 873, 1072
  CHECK(hi <= 1150);
}

TEST_CASE("a conversation and a user with the same id are placed apart") {
  // Unrelated hashes: about 1 in 64 share a partition by chance, far from
  // all of them (the kind tag is mixed in).
  int same = 0;
  for (uint64_t id = 1; id <= 1000; ++id)
    if (partition_of(placement_key::conversation(id), 64)
        == partition_of(placement_key::user(id), 64))
      ++same;
  CHECK(same < 40);
  CHECK(placement_hash(placement_key::conversation(7))
        != placement_hash(placement_key::user(7)));
}

TEST_CASE("one partition takes every id") {
  for (uint64_t id : {0ull, 1ull, 99ull, ~0ull})
    CHECK(partition_of(placement_key::user(id), 1) == 0);
}

TEST_CASE("the single-node map owns every partition at epoch 1") {
  auto m = partition_map::single_node(64, 7);
  CHECK(m.map_epoch == 1);
  CHECK(m.partitions() == 64);
  CHECK(m.owner(0) == 7);
  CHECK(m.owner(63) == 7);
  CHECK(m.owner(64) == no_node);
  CHECK_FALSE(m.validate(64));
  CHECK(is(m.validate(32), errc::bad_request));
  auto p = placement::single_node(64, 7);
  for (uint64_t id = 1; id <= 100; ++id) {
    CHECK(p.owns(placement_key::conversation(id)));
    CHECK(p.owns(placement_key::user(id)));
  }
}

TEST_CASE("a partition map without an epoch is invalid, a partition "
          "without an owner (a move's switch) is not") {
  auto m = partition_map::single_node(4);
  m.owners[2] = no_node;
  CHECK_FALSE(m.validate(4));
  auto moving = placement{1, m};
  CHECK(moving.route_of(placement_key::conversation(3)).local
        == (partition_of(placement_key::conversation(3), 4) != 2));
  auto z = partition_map::single_node(4);
  z.map_epoch = 0;
  CHECK(is(z.validate(4), errc::bad_request));
  CHECK(is(partition_map{}.validate(0), errc::bad_request));
}

TEST_CASE("the map epoch only grows: older, equal and reshaped maps are "
          "refused") {
  auto p = placement::single_node(8, 1);
  auto next = p.map;
  next.map_epoch = 2;
  uint32_t moved = partition_of(placement_key::conversation(5), 8);
  next.owners[moved] = 2;
  REQUIRE_FALSE(p.replace(next));
  CHECK(p.map.map_epoch == 2);
  auto r = p.route_of(placement_key::conversation(5));
  CHECK(r.partition == moved);
  CHECK(r.owner == 2);
  CHECK(r.map_epoch == 2);
  CHECK_FALSE(r.local);
  // The same epoch again, or an older one: refused, map unchanged.
  auto back = partition_map::single_node(8, 1);
  back.map_epoch = 2;
  CHECK(is(p.replace(back), errc::conflict));
  back.map_epoch = 1;
  CHECK(is(p.replace(back), errc::conflict));
  CHECK(p.route_of(placement_key::conversation(5)).owner == 2);
  // Another number of partitions: refused whatever its epoch.
  auto reshaped = partition_map::single_node(16, 1);
  reshaped.map_epoch = 9;
  CHECK(is(p.replace(reshaped), errc::bad_request));
  CHECK(p.map.map_epoch == 2);
  // A newer one is taken.
  back.map_epoch = 3;
  REQUIRE_FALSE(p.replace(back));
  CHECK(p.owns(placement_key::conversation(5)));
}

TEST_CASE("the partition count is kept at first start and a different one "
          "is refused") {
  memory_backend kv;
  CHECK(store::stored_partitions(kv) == uint32_t{0});
  // First start without a choice: the default is kept.
  CHECK(store::settle_partitions(kv, 0, default_partitions)
        == default_partitions);
  CHECK(store::stored_partitions(kv) == default_partitions);
  // Later starts: the kept count, with or without the same choice.
  CHECK(store::settle_partitions(kv, 0, 16) == default_partitions);
  CHECK(store::settle_partitions(kv, 64, 16) == default_partitions);
  // Another choice: refused, naming both, and nothing changes.
  auto bad = store::settle_partitions(kv, 32, default_partitions);
  REQUIRE_FALSE(bad);
  CHECK(is(bad.error(), errc::conflict));
  CHECK(store::stored_partitions(kv) == default_partitions);
  // The record's bytes: 'z' "partitions" -> u64 big-endian.
  auto rec = kv.get("zpartitions");
  REQUIRE(rec);
  REQUIRE(*rec);
  CHECK(**rec == std::string("\0\0\0\0\0\0\0\x40", 8));
}

TEST_CASE("a chosen partition count survives a reopen of the LevelDB store") {
  test::temp_dir dir;
  {
    auto kv = leveldb_backend::open(dir.path.string());
    REQUIRE(kv);
    CHECK(store::settle_partitions(**kv, 12, default_partitions)
          == uint32_t{12});
  }
  auto kv = leveldb_backend::open(dir.path.string());
  REQUIRE(kv);
  CHECK(store::stored_partitions(**kv) == uint32_t{12});
  CHECK(store::settle_partitions(**kv, 0, default_partitions) == uint32_t{12});
  CHECK(is(store::settle_partitions(**kv, 64, default_partitions).error(),
           errc::conflict));
}

TEST_CASE("a partition count outside 1-65536 or a damaged record is "
          "refused") {
  memory_backend kv;
  CHECK(is(store::settle_partitions(kv, max_partitions + 1, 64).error(),
           errc::bad_request));
  CHECK(store::stored_partitions(kv) == uint32_t{0}); // nothing written
  write_batch b;
  b.put(keys::meta("partitions"), "abc");
  REQUIRE_FALSE(kv.write(b, true));
  CHECK(is(store::stored_partitions(kv).error(), errc::storage_corrupt));
  CHECK(is(store::settle_partitions(kv, 0, 64).error(),
           errc::storage_corrupt));
}
