#include "runtime/gateway/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace parley::gateway {

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// Full buckets are dropped every this many operations of a shard, once it
/// holds more than this many buckets.
constexpr uint64_t prune_every = 4096;
constexpr size_t prune_above = 1024;

} // namespace

std::optional<bucket_spec> parse_bucket_spec(std::string_view text) {
  if (text == "off")
    return bucket_spec{0, 1};
  auto slash = text.find('/');
  if (slash == std::string_view::npos || text.size() > 64)
    return std::nullopt;
  auto number = [](std::string_view s) -> std::optional<double> {
    if (s.empty())
      return std::nullopt;
    std::string str{s};
    char* end = nullptr;
    double v = std::strtod(str.c_str(), &end);
    if (end != str.c_str() + str.size() || !(v > 0) || v > 1e9)
      return std::nullopt;
    return v;
  };
  auto n = number(text.substr(0, slash));
  auto rest = text.substr(slash + 1);
  auto comma = rest.find(',');
  auto unit = rest.substr(0, comma);
  if (!n || (unit != "s" && unit != "min"))
    return std::nullopt;
  bucket_spec spec;
  spec.rate = unit == "s" ? *n : *n / 60;
  spec.burst = std::max(*n, 1.0);
  if (comma != std::string_view::npos) {
    auto b = number(rest.substr(comma + 1));
    if (!b || *b < 1)
      return std::nullopt;
    spec.burst = *b;
  }
  return spec;
}

std::string to_string(const bucket_spec& spec) {
  if (spec.unlimited())
    return "off";
  auto fmt = [](double v) {
    auto s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.')
      s.pop_back();
    return s;
  };
  // Per minute when that reads as a whole number and per second does not.
  auto per_min = spec.rate * 60;
  if (spec.rate < 1 && std::abs(per_min - std::round(per_min)) < 1e-9)
    return fmt(std::round(per_min)) + "/min," + fmt(spec.burst);
  return fmt(spec.rate) + "/s," + fmt(spec.burst);
}

rate_limiter::rate_limiter(rate_limits limits, clock_fn clock, uint64_t seed)
  : limits_(limits), clock_(clock ? std::move(clock) : clock_fn{steady_ms}) {
  if (seed == 0)
    seed = std::random_device{}();
  for (auto& sh : shards_)
    sh.rng.seed(static_cast<std::minstd_rand::result_type>(seed++));
}

uint64_t rate_limiter::take(const std::string& key, const bucket_spec& spec,
                            double cost) {
  if (!limits_.enabled || spec.unlimited())
    return 0;
  auto now = clock_();
  auto& sh = shards_[std::hash<std::string>{}(key) % shards_.size()];
  std::lock_guard<std::mutex> guard{sh.mtx};
  if (++sh.ops % prune_every == 0 && sh.buckets.size() > prune_above) {
    for (auto i = sh.buckets.begin(); i != sh.buckets.end();)
      if (i->second.bucket.full(i->second.spec, now))
        i = sh.buckets.erase(i);
      else
        ++i;
  }
  auto& sl = sh.buckets[key];
  sl.spec = spec;
  // The jitter is drawn for a refusal only, not on every allowed take.
  return sl.bucket.take(
    spec, now,
    [&sh] { return std::uniform_real_distribution<double>{0.0, 1.0}(sh.rng); },
    cost);
}

void rate_limiter::refund(const std::string& key, const bucket_spec& spec,
                          double cost) {
  if (!limits_.enabled || spec.unlimited())
    return;
  auto now = clock_();
  auto& sh = shards_[std::hash<std::string>{}(key) % shards_.size()];
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto i = sh.buckets.find(key);
  if (i != sh.buckets.end())
    i->second.bucket.refund(spec, now, cost);
}

size_t rate_limiter::size() const {
  size_t n = 0;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    n += sh.buckets.size();
  }
  return n;
}

} // namespace parley::gateway
