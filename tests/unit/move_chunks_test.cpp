// A cluster's partition move splits each chunk into the old owner's half
// (read_chunk) and the new owner's half (plan_apply), with the chunk
// crossing between nodes as a value (runtime/partition_move_driver.hpp).
// The halves together do what mirror_chunk does; the new side refuses a
// chunk that is not one of its pass (it comes from another process).

#include <doctest/doctest.h>

#include <string>

#include "runtime/core/errors.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/partition_move.hpp"

using namespace parley;
using namespace parley::store;

namespace {

constexpr uint32_t parts = 4;

std::string key_in(uint32_t p, const std::string& tail) {
  return partition_range(p, parts).first + tail;
}

void fill(memory_backend& kv, uint32_t p, int n, const std::string& tag) {
  write_batch b;
  for (int i = 0; i < n; ++i)
    b.put(key_in(p, "k" + std::to_string(1000 + i)), tag + std::to_string(i));
  REQUIRE_FALSE(kv.write(b, true));
}

/// Runs whole passes of p from `from` onto `to` through the two halves.
void copy_by_halves(memory_backend& from, memory_backend& to, uint32_t p,
                    size_t chunk) {
  auto at = start_pass(p, parts);
  for (int guard = 0; !at.done && guard < 10000; ++guard) {
    auto r = read_chunk(from, at, chunk);
    REQUIRE(r);
    auto c = plan_apply(to, at, *r);
    REQUIRE(c);
    if (!c->batch.ops.empty())
      REQUIRE_FALSE(to.write(c->batch, true));
    at = c->after;
  }
  REQUIRE(at.done);
}

} // namespace

TEST_CASE("move chunks: the two halves copy a partition exactly, other "
          "partitions untouched") {
  memory_backend a, b;
  fill(a, 1, 57, "new-");
  fill(b, 1, 30, "old-");                 // stale values to replace
  write_batch extra;                      // a key only the new side has
  extra.put(key_in(1, "zz-stale"), "x");
  extra.put(key_in(2, "other"), "kept");  // another partition
  REQUIRE_FALSE(b.write(extra, true));
  for (size_t chunk : {1u, 7u, 2000u}) {
    copy_by_halves(a, b, 1, chunk);
    auto same = same_partition(a, b, 1, parts);
    REQUIRE(same);
    CHECK(*same);
    CHECK(b.get(key_in(2, "other")).value() == std::optional<std::string>{"kept"});
  }
}

TEST_CASE("move chunks: the new side refuses a chunk that is not of its "
          "pass") {
  memory_backend a, b;
  fill(a, 1, 10, "v");
  auto at = start_pass(1, parts);
  auto r = read_chunk(a, at, 4);
  REQUIRE(r);
  REQUIRE(r->records.ops.size() == 4);
  auto refused = [&](move_read bad) {
    auto c = plan_apply(b, at, bad);
    return !c && is(c.error(), errc::bad_request);
  };
  CHECK_FALSE(refused(*r));
  auto outside = *r;
  outside.records.put(key_in(2, "x"), "y"); // another partition
  CHECK(refused(outside));
  auto past = *r;
  past.records.ops.back().key = r->span_end + "z"; // past its span
  CHECK(refused(past));
  auto erase = *r;
  erase.records.erase(r->records.ops.front().key);
  CHECK(refused(erase));
  auto twice = *r;
  twice.records.ops.push_back(twice.records.ops.front());
  CHECK(refused(twice));
  auto backwards = *r;
  backwards.span_end = at.next; // an empty span
  CHECK(refused(backwards));
  auto beyond = *r;
  beyond.span_end = partition_range(1, parts).second + "x";
  CHECK(refused(beyond));
  // Nothing of the refused chunks reached the new side.
  CHECK(b.get(r->records.ops.front().key).value() == std::nullopt);
  CHECK(is(read_chunk(a, start_pass(9, parts), 4).error(), errc::bad_request));
}
