#pragma once

// admin_listener: the operator's HTTP port of a clustered node (issue 22),
// apart from the client port: loopback by default (--parley.admin-listen),
// on only with an operator token (--parley.admin-token-hash), every request
// authenticated with `Authorization: Bearer TOKEN`. Every action is logged
// with what was asked and the outcome. Answers are JSON, errors
// {"error":{"status":N,"message":"..."}}.
//
//   GET  /v1/admin/cluster                  the node's cluster view (as
//                                           /healthz) and its moves
//   POST /v1/admin/partitions/P/move        body {"to":N}: starts moving
//                                           partition P to node N (202)
//   GET  /v1/admin/moves                    the moves this node drove
//
// The admin shell of the next issue calls these.

#include <memory>
#include <string>

namespace parley {

class cluster_member;

class admin_listener {
public:
  /// `token_hash`: the raw 32-byte BLAKE2b-256 of the operator's token.
  admin_listener(std::string address, uint16_t port, std::string token_hash,
                 cluster_member& member);
  ~admin_listener();

  /// Binds and serves. Returns an error message, or empty.
  std::string start();
  uint16_t port() const;
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace parley
