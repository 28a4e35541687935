#pragma once

// admin_listener: the operator's HTTP port of every node (issue 23), apart
// from the client port: loopback by default (--parley.admin-listen,
// 127.0.0.1:8090), on when at least one admin token is configured
// (runtime/admin/admin_tokens.hpp). Every request carries
// `Authorization: Bearer TOKEN`; no token is 401, a token the node does not
// know is 403. The routes are the command table's
// (runtime/admin/command_table.hpp): admin::from_request checks the
// request and its arguments, then the command's handler from the
// handler_table answers. Every command is logged with the token's name,
// the peer, the command, its arguments (passwords hidden) and the status:
// at info, except the answered polls parleyctl repeats (`metrics top`, and
// GET of a followed job: `job watch`), which log at debug; a command the
// node refuses (non-2xx) at info always; a missing or unknown token as a
// warning. Answers are JSON; errors {"error":{"status":N,"message":"..."}}.

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/admin/handlers.hpp"

namespace parley {

namespace admin {
class token_store;
} // namespace admin

class admin_listener {
public:
  /// `table`'s handlers may keep references to the env they were made
  /// with: it must outlive this listener.
  admin_listener(std::string address, uint16_t port,
                 std::shared_ptr<admin::token_store> tokens,
                 admin::handler_table table);
  ~admin_listener();

  /// Binds and serves. Returns an error message, or empty.
  std::string start();

  /// The bound port (useful with port 0).
  uint16_t port() const;

  /// Stops serving; answers of handlers still running are dropped.
  void stop();

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// The JSON error body {"error":{"status":N,"message":"..."}}.
std::string admin_error_body(unsigned status, const std::string& message);

} // namespace parley
