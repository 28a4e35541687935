#pragma once

// Small helpers the WebSocket benchmark modes share: a blocking HTTP POST
// and a monotonic clock in nanoseconds.

#include <cstdint>
#include <string>

namespace parley::bench {

/// POSTs `body` to http://host:port/target and returns the response body.
std::string http_post(const std::string& host, uint16_t port,
                      const std::string& target, const std::string& body);

/// The value of "key":"value" or "key":value in a JSON text; empty if absent.
std::string json_value(const std::string& json, const std::string& key);

/// Monotonic nanoseconds.
int64_t now_ns();

/// user + system CPU seconds of this process.
double self_cpu();

/// user + system CPU seconds of process `pid` (from /proc), or -1.
double proc_cpu(int64_t pid);

} // namespace parley::bench
