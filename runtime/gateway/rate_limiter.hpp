#pragma once

// Rate limits shared by every connection and HTTP request of a node:
// token buckets by key ("send/device/<user>/<device>", "login/ip/<addr>",
// …), sharded under 16 mutexes. Buckets that refilled completely are
// dropped now and then, so memory follows the active keys only.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <string>
#include <unordered_map>

#include "actors/token_bucket.hpp"

namespace parley::gateway {

/// The node's limits (config: parley.rate-*). Rates per second; 0 = none.
struct rate_limits {
  bool enabled = true;
  bucket_spec send_device{100, 200};      ///< messages per device
  bucket_spec send_user{300, 600};        ///< messages per user, all devices
  bucket_spec group_create{10.0 / 60, 10};    ///< groups per user
  bucket_spec member_add{2000.0 / 60, 2000};  ///< members added per user
  bucket_spec connect_ip{100, 1000};      ///< WebSocket upgrades per address
  bucket_spec login_ip{10, 100};          ///< logins and sign-ups per address
  bucket_spec login_account{10.0 / 60, 10};   ///< logins per username
};

/// Parses a limit as configured: "N/s,BURST", "N/min,BURST" (N and BURST
/// positive numbers; BURST defaults to max(N, 1)), or "off". Empty on
/// anything else.
std::optional<bucket_spec> parse_bucket_spec(std::string_view text);

/// The configured form of `spec` ("10/s,20", "off").
std::string to_string(const bucket_spec& spec);

/// The retry hint of a refusal (actors/token_bucket.hpp): the same rule
/// for every limit.
using parley::spread_retry_ms;

class rate_limiter {
public:
  using clock_fn = std::function<int64_t()>; ///< milliseconds

  /// `seed` drives the hints' jitter (0: a random seed).
  explicit rate_limiter(rate_limits limits, clock_fn clock = {},
                        uint64_t seed = 0);

  /// Takes `cost` tokens from `key`'s bucket; 0 if allowed, else the
  /// milliseconds the client should wait before it retries (its
  /// retry_after_ms): the time until the bucket could allow it, plus the
  /// time the key's earlier refusals need to drain, jittered (see
  /// spread_retry_ms), so that refused clients come back spread out and
  /// not all at the moment the next token arrives.
  uint64_t take(const std::string& key, const bucket_spec& spec,
                double cost = 1);

  /// Gives back `cost` tokens that `take` took from `key`'s bucket for a
  /// request that turned out to cost nothing (e.g. a deduplicated retry).
  /// Never fills a bucket beyond its burst; a key without a bucket is full
  /// already, so nothing happens.
  void refund(const std::string& key, const bucket_spec& spec,
              double cost = 1);

  const rate_limits& limits() const {
    return limits_;
  }

  /// Buckets currently kept (tests, metrics).
  size_t size() const;

private:
  struct slot {
    spreading_bucket bucket;
    bucket_spec spec;
  };

  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<std::string, slot> buckets;
    uint64_t ops = 0;
    std::minstd_rand rng;
  };

  rate_limits limits_;
  clock_fn clock_;
  std::array<shard, 16> shards_;
};

} // namespace parley::gateway
