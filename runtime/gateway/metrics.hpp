#pragma once

// Gateway counters, exported at /metrics in Prometheus text format.
// Lock-free: bumped from I/O threads and actors alike.

#include <atomic>
#include <cstdint>
#include <string>

namespace parley::gateway {

struct metrics {
  std::atomic<uint64_t> connections_open{0};
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> frames_in{0};
  std::atomic<uint64_t> frames_out{0};
  std::atomic<uint64_t> errors_out{0};
  std::atomic<uint64_t> messages_accepted{0};
  std::atomic<uint64_t> http_requests{0};
  std::atomic<uint64_t> rate_limited{0};   ///< requests refused by a limit
  std::atomic<uint64_t> slow_disconnects{0}; ///< outbound queue overflowed
  std::atomic<uint64_t> sync_requests{0};
  std::atomic<uint64_t> logins{0}; ///< POST /v1/login answered with a token

  /// Renders every counter in Prometheus text exposition format.
  std::string render() const;
};

} // namespace parley::gateway
