#pragma once

// A token bucket: `rate` tokens per second up to `burst`; a request takes
// tokens if there are enough, else says how long until there will be.
// Not thread-safe (see runtime/gateway/rate_limiter.hpp for the shared,
// keyed one).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

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
    refill(spec, now_ms);
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
    refill(spec, now_ms);
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
  /// Adds the tokens earned since `last_ms_` (a clock that went backwards
  /// earns none).
  void refill(const bucket_spec& spec, int64_t now_ms) {
    if (now_ms > last_ms_) {
      tokens_ = std::min(spec.burst,
                         tokens_ + (now_ms - last_ms_) * spec.rate / 1000.0);
      last_ms_ = now_ms;
    }
  }

  bool started_ = false;
  double tokens_ = 0;
  int64_t last_ms_ = 0;
};

/// The retry hint of a refusal: `wait_ms` (until the bucket could allow
/// it), plus `ahead_ms` (the time the refusals ahead of this one need to
/// drain at the bucket's rate), plus `unit` (uniform in [0, 1)) of
/// `slot_ms` (this request's own share of that drain). A thousand clients
/// refused at once are told a thousand moments, one per token to come,
/// each jittered within its slot: obedient clients come back at the rate
/// the bucket allows instead of all at once. Capped at an hour.
inline uint64_t spread_retry_ms(uint64_t wait_ms, double ahead_ms,
                                double slot_ms, double unit) {
  constexpr double cap_ms = 3600 * 1000.0;
  auto sane = [&](double v) { return v > 0 ? std::min(v, cap_ms) : 0.0; };
  unit = std::clamp(unit, 0.0, 1.0);
  auto ms = static_cast<double>(wait_ms) + sane(ahead_ms)
            + sane(slot_ms) * unit;
  return static_cast<uint64_t>(std::min(std::ceil(ms), cap_ms));
}

/// A token bucket whose refusals carry spread-out retry hints: it counts
/// the refused cost not yet drained at the rate (the backlog), and tells
/// each refusal to come back after the backlog ahead of it, jittered within
/// its own slot (spread_retry_ms). Every limit of Parley uses one, so every
/// RATE_LIMITED hint follows the same rule.
class spreading_bucket {
public:
  /// Takes `cost` tokens at `now_ms`: 0 if it could, else the retry hint.
  /// `unit` is a uniform draw in [0, 1) (the caller's random source, so
  /// that simulations stay deterministic).
  uint64_t take(const bucket_spec& spec, int64_t now_ms, double unit,
                double cost = 1) {
    return take(spec, now_ms, [unit] { return unit; }, cost);
  }

  /// As above, with `draw` yielding the unit, called only for a refusal
  /// (an allowed take draws nothing).
  template <class Draw,
            class = std::enable_if_t<std::is_invocable_r_v<double, Draw&>>>
  uint64_t take(const bucket_spec& spec, int64_t now_ms, Draw&& draw,
                double cost = 1) {
    auto wait = bucket_.take(spec, now_ms, cost);
    if (wait == 0)
      return 0;
    if (now_ms > backlog_ms_) {
      backlog_ = std::max(0.0, backlog_
                                 - (now_ms - backlog_ms_) * spec.rate / 1000.0);
      backlog_ms_ = now_ms;
    }
    auto ahead_ms = backlog_ * 1000.0 / spec.rate;
    auto share = std::min(cost, spec.burst);
    // At most two minutes of drain (or a burst) are kept (a storm of
    // 10,000 connects at 100/s spreads over 90 s): a client retrying
    // too early, or many on a shared key, must not push everyone's hint
    // towards the hour long after the bucket itself has refilled. Past
    // that, a refusal is spread over the whole window, not bunched at
    // its end.
    auto cap = std::max(spec.burst, spec.rate * max_backlog_s);
    if (backlog_ + share > cap)
      return spread_retry_ms(wait, 0, cap * 1000.0 / spec.rate, draw());
    backlog_ += share;
    return spread_retry_ms(wait, ahead_ms, share * 1000.0 / spec.rate,
                           draw());
  }

  void refund(const bucket_spec& spec, int64_t now_ms, double cost = 1) {
    bucket_.refund(spec, now_ms, cost);
  }

  bool full(const bucket_spec& spec, int64_t now_ms) const {
    return bucket_.full(spec, now_ms);
  }

  /// Seconds of drain the backlog holds at most.
  static constexpr double max_backlog_s = 120;

private:
  token_bucket bucket_;
  double backlog_ = 0;     ///< refused cost not yet drained at the rate
  int64_t backlog_ms_ = 0; ///< when `backlog_` was last brought up to date
};

} // namespace parley
