#include "runtime/gateway/metrics.hpp"

namespace parley::gateway {

std::string metrics::render() const {
  std::string out;
  auto add = [&](const char* name, const char* type, const char* help,
                 uint64_t value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
  };
  add("parley_connections_open", "gauge", "Open WebSocket connections.",
      connections_open.load());
  add("parley_connections_total", "counter", "WebSocket connections accepted.",
      connections_total.load());
  add("parley_frames_in_total", "counter", "WebSocket frames received.",
      frames_in.load());
  add("parley_frames_out_total", "counter", "WebSocket frames sent.",
      frames_out.load());
  add("parley_errors_out_total", "counter", "Error frames sent.",
      errors_out.load());
  add("parley_messages_accepted_total", "counter",
      "Sends answered with Accepted (deduplicated repeats included).",
      messages_accepted.load());
  add("parley_http_requests_total", "counter", "HTTP requests served.",
      http_requests.load());
  add("parley_rate_limited_total", "counter",
      "Requests, frames and connections refused by a rate limit.",
      rate_limited.load());
  add("parley_sync_requests_total", "counter", "Sync pages requested.",
      sync_requests.load());
  add("parley_logins_total", "counter",
      "Logins answered with a device token (POST /v1/login).",
      logins.load());
  add("parley_slow_disconnects_total", "counter",
      "Connections closed because their outbound queue overflowed (the "
      "device resumes by sync).",
      slow_disconnects.load());
  return out;
}

} // namespace parley::gateway
