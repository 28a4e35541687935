// Slots: a partition is one contiguous range of slots for any partition
// count, the ranges tile the slot space in order, and partition_of agrees
// with them; a username's slot comes from its FNV-1a 64.

#include <doctest/doctest.h>

#include <cstdint>
#include <random>

#include "runtime/core/placement.hpp"

using namespace parley;

TEST_CASE("slot ranges tile 0..65536 in order and agree with partition_of") {
  std::mt19937_64 rng{7};
  for (uint32_t parts : {1u, 2u, 3u, 64u, 1000u, 65535u, 65536u}) {
    CAPTURE(parts);
    uint32_t next = 0;
    for (uint32_t p = 0; p < parts; ++p) {
      auto span = slot_range(p, parts);
      REQUIRE(span.first == next); // no gap, no overlap
      REQUIRE(span.end > span.first); // never empty: parts <= 65536
      // Both ends belong where they should.
      REQUIRE(partition_of_slot(span.first, parts) == p);
      REQUIRE(partition_of_slot(span.end - 1, parts) == p);
      if (span.end < slot_count)
        REQUIRE(partition_of_slot(span.end, parts) == p + 1);
      next = span.end;
    }
    CHECK(next == slot_count);
    CHECK(slot_range(parts, parts).end == 0); // out of range: empty
    // Sampled keys of every kind fall into their partition's range.
    for (int i = 0; i < 2000; ++i) {
      auto key = i % 3 == 0   ? placement_key::conversation(rng())
                 : i % 3 == 1 ? placement_key::user(rng())
                              : placement_key::username(std::to_string(rng()));
      auto p = partition_of(key, parts);
      REQUIRE(p < parts);
      auto span = slot_range(p, parts);
      auto s = slot_of(key);
      CHECK(s >= span.first);
      CHECK(s < span.end);
      CHECK(s == placement_hash(key) >> 48);
    }
  }
  // Equal shares when P divides 65536.
  CHECK(slot_range(0, 64).end == 1024);
  CHECK(slot_range(63, 64).first == 64512);
  CHECK(slot_range(1, 3).first == 21846); // ceil(65536 / 3)
  CHECK(slot_range(5, 65536).first == 5);
  CHECK(slot_range(5, 65536).end == 6);
}

TEST_CASE("partition_of is monotonic in the slot for any partition count") {
  for (uint32_t parts : {1u, 3u, 7u, 64u, 1000u, 65536u}) {
    CAPTURE(parts);
    uint32_t last = 0;
    for (uint32_t s = 0; s < slot_count; ++s) {
      auto p = partition_of_slot(s, parts);
      REQUIRE(p >= last);
      REQUIRE(p < parts);
      last = p;
    }
    CHECK(last == parts - 1);
  }
}

TEST_CASE("a username is placed by the FNV-1a 64 of its bytes") {
  auto k = placement_key::username("alice");
  CHECK(k.kind == id_kind_username);
  CHECK(k.id == fnv1a_64("alice"));
  CHECK(slot_of(placement_key::username("alice"))
        != slot_of(placement_key::username("alicf")));
}
