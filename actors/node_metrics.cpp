#include "actors/node_metrics.hpp"

#include <cstdio>

namespace parley {

std::string latency_histogram::render(const std::string& name,
                                      const std::string& help) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name
                    + " histogram\n";
  uint64_t cumulative = 0;
  char buf[64];
  for (size_t i = 0; i <= bounds_us.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    if (i < bounds_us.size())
      std::snprintf(buf, sizeof buf, "%g", bounds_us[i] / 1e6);
    out += name + "_bucket{le=\"" + (i < bounds_us.size() ? buf : "+Inf")
           + "\"} " + std::to_string(cumulative) + "\n";
  }
  std::snprintf(buf, sizeof buf, "%.6f",
                sum_us_.load(std::memory_order_relaxed) / 1e6);
  out += name + "_sum " + buf + "\n";
  out += name + "_count " + std::to_string(cumulative) + "\n";
  return out;
}

namespace {

/// One metric in Prometheus text format.
std::string metric(const char* name, const char* type, const char* help,
                   int64_t value) {
  std::string n = name;
  return "# HELP " + n + " " + help + "\n# TYPE " + n + " " + type + "\n" + n
         + " " + std::to_string(value) + "\n";
}

} // namespace

std::string node_metrics::render() const {
  std::string out = commit_latency.render(
    "parley_commit_latency_seconds", "Duration of each synced storage write.");
  out += send_latency.render(
    "parley_send_latency_seconds",
    "From a Send frame taken off its socket to its conversation's Accepted "
    "answer, for each new message (the server's share of a send).");
  out += metric("parley_outbox_backlog", "gauge",
                "Committed messages not yet emitted for delivery.",
                outbox_backlog.load());
  out += metric("parley_messages_delivered_total", "counter",
                "Messages pushed to connected devices.",
                static_cast<int64_t>(messages_delivered.load()));
  out += metric("parley_devices_online", "gauge",
                "Devices with an attached connection.", devices_online.load());
  out += metric("parley_deliveries_unacked", "gauge",
                "Messages pushed to devices and not yet acknowledged.",
                deliveries_unacked.load());
  out += metric("parley_fanout_backlog", "gauge",
                "Large-group deliveries waiting in fan-out shards (users).",
                fanout_backlog.load());
  out += metric("parley_projection_backlog", "gauge",
                "Message and receipt events waiting for the inbox projection.",
                projection_backlog.load());
  out += metric("parley_fanout_pushes_total", "counter",
                "Large-group messages pushed by fan-out shards.",
                static_cast<int64_t>(fanout_pushes.load()));
  return out;
}

} // namespace parley
