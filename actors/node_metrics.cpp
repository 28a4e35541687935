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

std::string node_metrics::render() const {
  std::string out = commit_latency.render(
    "parley_commit_latency_seconds", "Duration of each synced storage write.");
  out += "# HELP parley_outbox_backlog Committed messages not yet emitted "
         "for delivery.\n# TYPE parley_outbox_backlog gauge\n"
         "parley_outbox_backlog "
         + std::to_string(outbox_backlog.load()) + "\n";
  out += "# HELP parley_messages_delivered_total Messages pushed to "
         "connected devices.\n# TYPE parley_messages_delivered_total "
         "counter\nparley_messages_delivered_total "
         + std::to_string(messages_delivered.load()) + "\n";
  out += "# HELP parley_devices_online Devices with an attached "
         "connection.\n# TYPE parley_devices_online gauge\n"
         "parley_devices_online "
         + std::to_string(devices_online.load()) + "\n";
  out += "# HELP parley_deliveries_unacked Messages pushed to devices and "
         "not yet acknowledged.\n# TYPE parley_deliveries_unacked gauge\n"
         "parley_deliveries_unacked "
         + std::to_string(deliveries_unacked.load()) + "\n";
  return out;
}

} // namespace parley
