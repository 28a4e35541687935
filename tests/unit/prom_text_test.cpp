#include <doctest/doctest.h>

#include <random>
#include <string>

#include "actors/node_metrics.hpp"
#include "tools/parley-bench/prom_text.hpp"

using namespace parley;
using namespace parley::bench;

TEST_CASE("prom text: parleyd's own histogram reads back, and deltas") {
  latency_histogram h;
  for (uint64_t us : {50, 300, 300, 700, 4000, 20000})
    h.observe(us);
  auto page = "# other\nparley_x 1\n"
              + h.render("parley_send_latency_seconds", "help");
  auto before = parse_histogram(page, "parley_send_latency_seconds");
  REQUIRE(before);
  CHECK(before->count() == 6);
  CHECK(before->buckets.size() == latency_histogram::bounds_us.size() + 1);
  CHECK(*before->quantile_bound(0.5) == doctest::Approx(0.0005));
  CHECK(*before->quantile_bound(0.99) == doctest::Approx(0.025));
  for (int i = 0; i < 10; ++i)
    h.observe(200);
  auto after = parse_histogram(
    h.render("parley_send_latency_seconds", "help"),
    "parley_send_latency_seconds");
  REQUIRE(after);
  auto d = before->delta_to(*after);
  REQUIRE(d);
  CHECK(d->count() == 10);
  CHECK(*d->quantile_bound(0.99) == doctest::Approx(0.00025));
  // Another histogram's lines are not this one's.
  CHECK_FALSE(parse_histogram(page, "parley_commit_latency_seconds"));
  // A restart (counts going down) is no delta.
  CHECK_FALSE(after->delta_to(*before));
  CHECK_FALSE(prom_histogram{}.quantile_bound(0.5));
}

TEST_CASE("prom text: garbage, truncation and oversized input are no histogram") {
  const std::string good = "h_bucket{le=\"0.1\"} 3\nh_bucket{le=\"+Inf\"} 5\n";
  REQUIRE(parse_histogram(good, "h"));
  // Every truncation: either nothing or (once the +Inf line is whole) the
  // histogram; never a crash or a wrong count.
  for (size_t n = 0; n < good.size(); ++n) {
    auto h = parse_histogram(std::string_view{good}.substr(0, n), "h");
    if (h)
      CHECK(h->count() == 5);
  }
  CHECK_FALSE(parse_histogram("", "h"));
  CHECK_FALSE(parse_histogram("h_bucket{le=\"0.1\"} 3\n", "h")); // no +Inf
  CHECK_FALSE(parse_histogram("h_bucket{le=\"+Inf\"} 5\nh_bucket{le=\"0.1\"} 3\n", "h"));
  CHECK_FALSE(parse_histogram("h_bucket{le=\"0.1\"} 9\nh_bucket{le=\"+Inf\"} 5\n", "h"));
  CHECK_FALSE(parse_histogram("h_bucket{le=\"x\"} 1\nh_bucket{le=\"-1\"} 1\n", "h"));
  CHECK_FALSE(parse_histogram("h_bucket{le=\"+Inf\"} -5\n", "h"));
  CHECK_FALSE(parse_histogram("h_bucket{le=\"+Inf\"} 5x\n", "h"));
  CHECK_FALSE(parse_histogram(std::string(1 << 20, '\n'), "h"));
  auto huge = "h_bucket{le=\"" + std::string(100000, '9') + "\"} 1\n";
  CHECK_FALSE(parse_histogram(huge, "h"));
  CHECK_FALSE(parse_histogram("h_bucket{le=\"+Inf\"} " + std::string(5000, '7'), "h"));
  std::mt19937 rng{7};
  for (int i = 0; i < 2000; ++i) {
    std::string s = good;
    for (int k = 0; k < 3; ++k)
      s[rng() % s.size()] = static_cast<char>(rng());
    auto h = parse_histogram(s, "h");
    if (h)
      CHECK(h->buckets.back().second >= h->buckets.front().second);
  }
}
