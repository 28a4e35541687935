#pragma once

// Counters that actors of a node update and /metrics exports. Lock-free;
// handed to actors at spawn (nullable: tests may leave them out).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace parley {

/// Steady-clock nanoseconds since its epoch: a time one thread takes and
/// another measures from.
inline int64_t steady_ns() {
  return std::chrono::steady_clock::now().time_since_epoch().count();
}

/// A latency histogram with fixed buckets (Prometheus-style, cumulative on
/// output).
class latency_histogram {
public:
  /// Upper bounds of the buckets in microseconds.
  static constexpr std::array<uint64_t, 12> bounds_us{
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000};

  void observe(uint64_t us) {
    size_t i = 0;
    while (i < bounds_us.size() && us > bounds_us[i])
      ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(us, std::memory_order_relaxed);
  }

  /// Observes the time since `start` (a steady_ns() value).
  void observe_since(int64_t start) {
    auto ns = steady_ns() - start;
    observe(static_cast<uint64_t>(ns > 0 ? ns / 1000 : 0));
  }

  /// Prometheus text for histogram `name` (seconds).
  std::string render(const std::string& name, const std::string& help) const;

  /// Observations per bucket, not cumulative (bounds_us.size() + 1 of
  /// them: the last counts those above every bound), for the admin port.
  std::array<uint64_t, bounds_us.size() + 1> counts() const {
    std::array<uint64_t, bounds_us.size() + 1> out{};
    for (size_t i = 0; i < out.size(); ++i)
      out[i] = counts_[i].load(std::memory_order_relaxed);
    return out;
  }

  /// Sum of every observation in microseconds.
  uint64_t sum_us() const {
    return sum_us_.load(std::memory_order_relaxed);
  }

private:
  std::array<std::atomic<uint64_t>, bounds_us.size() + 1> counts_{};
  std::atomic<uint64_t> sum_us_{0};
};

struct node_metrics {
  /// Duration of each synced write of the store writer.
  latency_histogram commit_latency;
  /// Server side of a send: from the gateway taking a Send frame to the
  /// conversation's Accepted answer, for each new message (on the direct
  /// path the answer is written to the socket there; otherwise the
  /// connection actor writes it next).
  latency_histogram send_latency;
  /// Committed messages not yet emitted for delivery, over all
  /// conversations (grows after a restart until the outbox relay is done).
  std::atomic<int64_t> outbox_backlog{0};
  /// Messages pushed to connected devices.
  std::atomic<uint64_t> messages_delivered{0};
  /// Devices with a connection attached to their device actor.
  std::atomic<int64_t> devices_online{0};
  /// Messages pushed to connected devices and not yet acknowledged.
  std::atomic<int64_t> deliveries_unacked{0};
  /// Large-group deliveries handed to fan-out shards and not yet done
  /// (users), and pushes the shards made.
  std::atomic<int64_t> fanout_backlog{0};
  std::atomic<uint64_t> fanout_pushes{0};
  /// Message and receipt events waiting for the inbox projection.
  std::atomic<int64_t> projection_backlog{0};

  std::string render() const;
};

} // namespace parley
