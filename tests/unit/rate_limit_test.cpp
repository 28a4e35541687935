// Token buckets, the node's keyed limiter, and the parser of configured
// limits (with garbage, truncated and oversized input).

#include <doctest/doctest.h>

#include <random>
#include <string>

#include "actors/token_bucket.hpp"
#include "runtime/gateway/rate_limiter.hpp"

using namespace parley;
using namespace parley::gateway;

TEST_CASE("a token bucket allows its burst, then its rate, and says when") {
  token_bucket b;
  bucket_spec spec{10, 5}; // 10 per second, 5 at once
  for (int i = 0; i < 5; ++i)
    CHECK(b.take(spec, 1000) == 0);
  // Empty: one token comes every 100 ms.
  CHECK(b.take(spec, 1000) == 100);
  CHECK(b.take(spec, 1050) == 50);
  CHECK(b.take(spec, 1100) == 0);
  CHECK(b.take(spec, 1100) == 100);
  // A long pause refills to the burst, not beyond.
  CHECK(b.full(spec, 10'000));
  for (int i = 0; i < 5; ++i)
    CHECK(b.take(spec, 10'000) == 0);
  CHECK(b.take(spec, 10'000) > 0);
  // A cost above the burst needs a full bucket and empties it.
  token_bucket big;
  CHECK(big.take(spec, 0, 1) == 0);
  CHECK(big.take(spec, 0, 50) == 100); // 4 left of 5: one more to come
  CHECK(big.take(spec, 100, 50) == 0);
  CHECK(big.take(spec, 100, 1) == 100);
  // Unlimited never refuses.
  token_bucket free;
  for (int i = 0; i < 1000; ++i)
    CHECK(free.take(bucket_spec{0, 1}, 0) == 0);
}

TEST_CASE("the limiter keeps a bucket per key and forgets refilled ones") {
  int64_t now = 0;
  rate_limiter lim{rate_limits{}, [&] { return now; }};
  bucket_spec spec{1, 2};
  CHECK(lim.take("a", spec) == 0);
  CHECK(lim.take("a", spec) == 0);
  auto hint = lim.take("a", spec); // a token in 1 s, jittered in its slot
  CHECK(hint >= 1000);
  CHECK(hint <= 2000);
  CHECK(lim.take("b", spec) == 0); // another key is not affected
  // Many keys, all refilled later: pruned as the shards are used.
  for (int i = 0; i < 40000; ++i)
    lim.take("k" + std::to_string(i), spec);
  auto before = lim.size();
  CHECK(before > 30000);
  now += 10'000;
  for (int i = 0; i < 70000; ++i)
    lim.take("k" + std::to_string(i % 100), spec);
  CHECK(lim.size() < before / 4);
  // Switched off: nothing is refused.
  rate_limits off;
  off.enabled = false;
  rate_limiter none{off, [&] { return now; }};
  for (int i = 0; i < 100; ++i)
    CHECK(none.take("x", spec) == 0);
}

TEST_CASE("configured limits parse, and bad ones are refused") {
  auto s = parse_bucket_spec("100/s,200");
  REQUIRE(s);
  CHECK(s->rate == 100);
  CHECK(s->burst == 200);
  s = parse_bucket_spec("10/min,10");
  REQUIRE(s);
  CHECK(s->rate == doctest::Approx(10.0 / 60));
  CHECK(to_string(*s) == "10/min,10");
  CHECK(to_string(*parse_bucket_spec("100/s,200")) == "100/s,200");
  s = parse_bucket_spec("2.5/s");
  REQUIRE(s);
  CHECK(s->burst == 2.5);
  CHECK(parse_bucket_spec("off")->unlimited());
  for (const char* bad :
       {"", "off ", "100", "100/", "/s", "100/h", "100/s,", "100/s,0",
        "-1/s", "0/s", "nan/s", "inf/s", "1e99/s", "100/s,200,3", "1/s,x",
        "100 /s", "100/s ,2", "\x01/s"})
    CHECK_MESSAGE(!parse_bucket_spec(bad), bad);
  CHECK(!parse_bucket_spec(std::string(100, '1') + "/s"));
  // Random garbage never crashes and never yields a negative rate.
  std::mt19937_64 rng{7};
  const std::string alphabet = "0123456789./,smin-eoffx ";
  for (int i = 0; i < 20000; ++i) {
    std::string t;
    for (int n = rng() % 12; n > 0; --n)
      t += alphabet[rng() % alphabet.size()];
    if (auto r = parse_bucket_spec(t))
      CHECK((r->rate >= 0 && r->burst >= 1));
  }
}
