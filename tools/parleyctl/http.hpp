#pragma once

// http: one admin request to a node over plain TCP (Boost.Beast), with a
// deadline, that a Ctrl-C can cut short.

#include <atomic>
#include <chrono>
#include <string>
#include <variant>

namespace parley::ctl {

struct endpoint {
  std::string host = "127.0.0.1";
  std::string port = "8090";
  std::string text() const; ///< "HOST:PORT" ("[::1]:8090" for IPv6)
};

/// "HOST:PORT", "[V6]:PORT", or "HOST" (port 8090); nullopt-like false on
/// a bad port.
bool parse_endpoint(const std::string& text, endpoint& out);

struct http_answer {
  unsigned status = 0;
  std::string body;
};

/// Why a request got no answer (connection refused, timeout, ...).
struct http_failure {
  std::string message;
  bool interrupted = false; ///< `stop` was set
};

/// Sends METHOD target (body as application/json when not empty) with
/// `Authorization: Bearer token`; waits at most `timeout` for the whole
/// exchange. Returns early when `stop` becomes true.
std::variant<http_answer, http_failure>
http_call(const endpoint& to, const std::string& method,
          const std::string& target, const std::string& body,
          const std::string& token, std::chrono::milliseconds timeout,
          const std::atomic<bool>* stop = nullptr);

} // namespace parley::ctl
