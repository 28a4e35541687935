#pragma once

// One HTTP/1.1 POST over a fresh loopback/LAN connection, with a deadline
// on the whole exchange (connect, write, read). Boost.Beast underneath; no
// Beast type leaks out of this header.

#include "runtime/cluster/control_plane.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace parley::cluster {

/// Where etcd's client URL listens: a numeric IP address (or "localhost")
/// and a port.
struct endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 2379;
};

/// A whole HTTP answer.
struct http_answer {
  unsigned status = 0;
  std::string body;
};

/// POSTs `body` (JSON) to `target`; the answer, or unreachable / timeout /
/// closed (connection ended early, truncated answer) / http (malformed
/// HTTP) / bad_answer (body over etcd_json::max_answer_bytes).
cp_result<http_answer> http_post(const endpoint& to, const std::string& target,
                                 const std::string& body,
                                 std::chrono::milliseconds deadline);

/// The same for GET (used for /health).
cp_result<http_answer> http_get(const endpoint& to, const std::string& target,
                                std::chrono::milliseconds deadline);

} // namespace parley::cluster
