// Issue 20: retry hints spread refused clients out, and nobody's hint is
// held hostage by another client's early retries on a shared key.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>

#include "actors/token_bucket.hpp"

using namespace parley;

TEST_CASE("a spreading bucket's backlog holds at most two minutes of drain") {
  // Logins per account, 10/min: an attacker refused ten times a second for
  // five minutes must not leave the real user told to wait an hour.
  bucket_spec spec{10.0 / 60, 10};
  spreading_bucket b;
  int64_t now = 1'000'000;
  for (int i = 0; i < 10; ++i)
    CHECK(b.take(spec, now, 0.5) == 0);
  uint64_t last = 0;
  for (int s = 0; s < 300; ++s)
    for (int i = 0; i < 10; ++i)
      last = b.take(spec, now + s * 1000 + i * 100, 0.5);
  auto cap_ms = spreading_bucket::max_backlog_s * 1000;
  CHECK(last > 0);
  // The wait for one token (6 s) + at most the cap ahead + its own slot.
  CHECK(last <= 6000 + cap_ms + 6000);
  // The refusals ahead still spread: the next one waits longer than a
  // bucket alone would say, but never past the cap.
  auto user = b.take(spec, now + 299'900, 0.0); // with the last attempt
  CHECK(user >= 1);
  CHECK(user <= 6000 + cap_ms);
}

TEST_CASE("a spreading bucket tells refusals at one instant a slot each") {
  bucket_spec spec{10, 10}; // 10/s: a slot is 100 ms
  spreading_bucket b;
  for (int i = 0; i < 10; ++i)
    REQUIRE(b.take(spec, 0, 0.5) == 0);
  for (int i = 0; i < 50; ++i) {
    auto hint = b.take(spec, 0, 0.5);
    // wait 100 ms for the next token, i slots ahead, half of its own.
    CHECK(hint == uint64_t(100 + 100 * i + 50));
  }
  // Unlimited buckets never refuse.
  spreading_bucket open;
  for (int i = 0; i < 100; ++i)
    CHECK(open.take(bucket_spec{}, 0, 0.5) == 0);
}

TEST_CASE("refusals past the backlog's cap are spread over the whole window") {
  bucket_spec spec{1, 1}; // a slot is 1 s; the cap two minutes
  spreading_bucket b;
  REQUIRE(b.take(spec, 0, 0.5) == 0);
  auto cap_ms = uint64_t(spreading_bucket::max_backlog_s * 1000);
  for (int i = 0; i < 120; ++i)
    REQUIRE(b.take(spec, 0, 0.5) > 0); // fills the backlog
  // The next thousand, drawn across [0, 1), land across the window rather
  // than all at its end.
  uint64_t lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < 1000; ++i) {
    auto hint = b.take(spec, 0, i / 1000.0);
    lo = std::min(lo, hint);
    hi = std::max(hi, hint);
    CHECK(hint >= 1000);
    CHECK(hint <= 1000 + cap_ms);
  }
  CHECK(lo < 1000 + cap_ms / 10);
  CHECK(hi > 1000 + cap_ms * 9 / 10);
}
