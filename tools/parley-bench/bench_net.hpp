#pragma once

// Small helpers the WebSocket benchmark modes share: a blocking HTTP POST,
// bulk sign-ups and logins, a monotonic clock in nanoseconds, CPU times,
// and the machine's wake-up cost.

#include <cstdint>
#include <string>
#include <vector>

namespace parley::bench {

/// POSTs `body` to http://host:port/target and returns the response body.
std::string http_post(const std::string& host, uint16_t port,
                      const std::string& target, const std::string& body);

/// GETs http://host:port/target and returns the response body.
std::string http_get(const std::string& host, uint16_t port,
                     const std::string& target);

/// The value of "key":"value" or "key":value in a JSON text; empty if absent.
std::string json_value(const std::string& json, const std::string& key);

/// Monotonic nanoseconds.
int64_t now_ns();

/// user + system CPU seconds of this process.
double self_cpu();

/// user + system CPU seconds of process `pid` (from /proc), or -1.
double proc_cpu(int64_t pid);

/// Signs up accounts `names` (password "bench password"; 8 threads of
/// HTTP); returns their user ids. Throws if any sign-up fails.
std::vector<uint64_t> register_all(const std::string& host, uint16_t port,
                                   const std::vector<std::string>& names);

/// Logs one device of each of `names` in (8 threads); returns the tokens.
/// Throws if any login fails.
std::vector<std::string> login_all(const std::string& host, uint16_t port,
                                   const std::vector<std::string>& names);

/// Microseconds for one round trip between two threads on different cores
/// over a pair of pipes (as `perf bench sched pipe`), the median of
/// `rounds`: what the
/// machine charges for waking a thread on another core. On this VM it
/// ranges from ~15 to ~90 us within an hour, and every number the server
/// makes moves with it (a message crosses threads several times), so each
/// mode prints it before and after its measurement.
double wake_round_trip_us(int rounds = 2000);

/// Prints "machine: wake round trip N us (label)".
void print_wake_cost(const char* label);

} // namespace parley::bench
