// The store writer's fence ids (runtime/core/writer_ids.hpp): stable,
// distinct per kind, never equal to a conversation's id, and pinned so that
// a change of the format shows.

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <vector>

#include "runtime/core/writer_ids.hpp"

using namespace parley;

namespace {

/// Bits 63..62 = 01: no conversation id looks like this.
bool hashed_space(uint64_t id) {
  return (id >> 62) == 1;
}

uint64_t kind_of(uint64_t id) {
  return (id >> 59) & 7;
}

} // namespace

TEST_CASE("writer ids: the mix is SplitMix64's finalizer") {
  // SplitMix64's first output from seed 0 (as placement_test pins it).
  CHECK(mix::fmix(0 + mix::golden_gamma) == 0xE220A8397B1DCDAFull);
}

TEST_CASE("writer ids: known values are pinned") {
  CHECK(writer_ids::conversation(42) == 42);
  CHECK(writer_ids::conversation(0x8000000500000009ull)
        == 0x8000000500000009ull);
  CHECK(writer_ids::receipts(1) == 0x490A2DEC89025CC1ull);
  CHECK(writer_ids::device(7, 1) == 0x54A4FBD2393808BCull);
  CHECK(writer_ids::inbox(0) == 0x5A20A8397B1DCDAFull);
  CHECK(writer_ids::accounts() == 0x7FFFFFFFFFFFFFFFull);
  // Usable at compile time (constant ids, e.g. the accounts actor's).
  static_assert(writer_ids::device(7, 1) == 0x54A4FBD2393808BCull);
}

TEST_CASE("writer ids: equal identities give equal ids across calls") {
  for (uint64_t x : {uint64_t{0}, uint64_t{1}, uint64_t{12345},
                     uint64_t{1} << 62, UINT64_MAX}) {
    CHECK(writer_ids::receipts(x) == writer_ids::receipts(x));
    CHECK(writer_ids::inbox(x) == writer_ids::inbox(x));
    CHECK(writer_ids::device(x, 3) == writer_ids::device(x, 3));
  }
}

TEST_CASE("writer ids: kinds never collide for the same numbers and never "
          "name a conversation") {
  std::set<uint64_t> seen;
  std::size_t made = 0;
  auto add = [&](uint64_t id, uint64_t kind) {
    CHECK(hashed_space(id));
    CHECK(kind_of(id) == kind);
    seen.insert(id);
    ++made;
  };
  std::vector<uint64_t> numbers;
  for (uint64_t n = 0; n < 300; ++n)
    numbers.push_back(n);
  numbers.push_back(UINT64_MAX);
  numbers.push_back(uint64_t{1} << 63);
  for (auto n : numbers) {
    add(writer_ids::receipts(n), writer_ids::kind_receipts);
    add(writer_ids::inbox(n), writer_ids::kind_inbox);
    for (uint64_t d = 0; d < 4; ++d)
      add(writer_ids::device(n, d), writer_ids::kind_device);
    // A conversation's own id is never in the hashed space: group ids are
    // below 2^62; a direct id is 1 << 63 | a << 32 | b with user ids a < b
    // (direct_conversation_id), so its bit 63 is set.
    auto group = n & ((uint64_t{1} << 62) - 1);
    auto a = n & 0x7FFFFFFF;
    auto direct = (uint64_t{1} << 63) | (a << 32) | ((a + 1) & 0xFFFFFFFF);
    CHECK_FALSE(hashed_space(writer_ids::conversation(group)));
    CHECK_FALSE(hashed_space(writer_ids::conversation(direct)));
  }
  add(writer_ids::accounts(), writer_ids::kind_accounts);
  CHECK(seen.size() == made); // no two of these collide
  // The device mix depends on both halves, in order.
  CHECK(writer_ids::device(1, 2) != writer_ids::device(2, 1));
  CHECK(writer_ids::device(0, 1) != writer_ids::device(1, 0));
}
