#pragma once

// A token bucket: `rate` tokens per second up to `burst`; a request takes
// tokens if there are enough, else says how long until there will be.
// Not thread-safe (see runtime/gateway/rate_limiter.hpp for the shared,
// keyed one).

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace parley {

/// How fast a bucket refills and how much it holds. rate 0: unlimited.
struct bucket_spec {
  double rate = 0;  ///< tokens per second
  double burst = 1; ///< capacity (a full bucket allows this many at once)

  bool unlimited() const {
    return rate <= 0;
  }
};

class token_bucket {
public:
  /// Takes `cost` tokens at time `now_ms`; returns 0 if it could, else the
  /// milliseconds until it could (at least 1). A cost above the burst
  /// counts as the burst: it needs a full bucket and empties it.
  uint64_t take(const bucket_spec& spec, int64_t now_ms, double cost = 1) {
    if (spec.unlimited())
      return 0;
    cost = std::min(cost, spec.burst);
    if (!started_) {
      started_ = true;
      tokens_ = spec.burst;
      last_ms_ = now_ms;
    }
    if (now_ms > last_ms_) {
      tokens_ = std::min(spec.burst,
                         tokens_ + (now_ms - last_ms_) * spec.rate / 1000.0);
      last_ms_ = now_ms;
    }
    if (tokens_ >= cost) {
      tokens_ -= cost;
      return 0;
    }
    auto missing = cost - tokens_;
    return std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(missing * 1000.0 / spec.rate)));
  }

  /// Gives back `cost` tokens taken earlier (a request that turned out to
  /// cost nothing), never beyond the burst. A bucket never taken from is
  /// full already: nothing to do.
  void refund(const bucket_spec& spec, int64_t now_ms, double cost = 1) {
    if (!started_ || spec.unlimited() || !(cost > 0))
      return;
    if (now_ms > last_ms_) {
      tokens_ = std::min(spec.burst,
                         tokens_ + (now_ms - last_ms_) * spec.rate / 1000.0);
      last_ms_ = now_ms;
    }
    tokens_ = std::min(spec.burst, tokens_ + std::min(cost, spec.burst));
  }

  /// True if the bucket is full at `now_ms` (it then carries no state worth
  /// keeping).
  bool full(const bucket_spec& spec, int64_t now_ms) const {
    if (!started_ || spec.unlimited())
      return true;
    return tokens_ + (now_ms - last_ms_) * spec.rate / 1000.0 >= spec.burst;
  }

private:
  bool started_ = false;
  double tokens_ = 0;
  int64_t last_ms_ = 0;
};

} // namespace parley
