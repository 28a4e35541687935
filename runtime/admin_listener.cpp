#include "runtime/admin_listener.hpp"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>

#include "runtime/accounts/credentials.hpp"
#include "runtime/cluster_member.hpp"
#include "runtime/cluster_member_detail.hpp"
#include "runtime/gateway/server.hpp"

namespace parley {

namespace {

using gateway::http_request;
using gateway::http_response;

http_response error(unsigned status, const std::string& message) {
  return {status, "application/json",
          "{\"error\":{\"status\":" + std::to_string(status)
            + ",\"message\":" + json_quote(message) + "}}",
          {}};
}

/// "/v1/admin/partitions/P/move" -> P; nullopt for anything else.
std::optional<uint32_t> move_target(const std::string& path) {
  const std::string head = "/v1/admin/partitions/";
  const std::string tail = "/move";
  if (path.size() <= head.size() + tail.size() || path.rfind(head, 0) != 0
      || path.compare(path.size() - tail.size(), tail.size(), tail) != 0)
    return std::nullopt;
  auto digits = path.substr(head.size(),
                            path.size() - head.size() - tail.size());
  if (digits.empty() || digits.size() > 5
      || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return static_cast<uint32_t>(std::stoul(digits));
}

/// {"to":N} -> N (1-65535); nullopt if malformed.
std::optional<uint64_t> parse_to(const std::string& body) {
  google::protobuf::Struct obj;
  if (body.size() > 4096
      || !google::protobuf::util::JsonStringToMessage(body, &obj).ok())
    return std::nullopt;
  auto i = obj.fields().find("to");
  if (i == obj.fields().end() || !i->second.has_number_value())
    return std::nullopt;
  auto x = i->second.number_value();
  if (!(x >= 1 && x <= 65535) || x != static_cast<double>(uint64_t(x)))
    return std::nullopt;
  return static_cast<uint64_t>(x);
}

} // namespace

struct admin_listener::impl {
  std::string token_hash;
  cluster_member& member;
  std::unique_ptr<gateway::server> server;

  http_response handle(const http_request& req) {
    const std::string bearer = "Bearer ";
    auto token = req.authorization.rfind(bearer, 0) == 0
                   ? req.authorization.substr(bearer.size())
                   : std::string{};
    if (token.empty())
      return error(401, "an operator token is required (Authorization: "
                        "Bearer TOKEN)");
    if (!credentials::token_matches(token, token_hash)) {
      spdlog::warn("admin: refused a wrong token from={} {} {}", req.remote,
                   req.method, req.target);
      return error(403, "not the operator's token");
    }
    auto path = req.target.substr(0, req.target.find('?'));
    if (path == "/v1/admin/cluster" && req.method == "GET")
      return {200, "application/json",
              "{" + member.health_fields() + ",\"moves\":"
                + member.moves_json() + "}",
              {}};
    if (path == "/v1/admin/moves" && req.method == "GET")
      return {200, "application/json",
              "{\"moves\":" + member.moves_json() + "}", {}};
    if (auto p = move_target(path)) {
      if (req.method != "POST")
        return error(405, "POST a move");
      auto to = parse_to(req.body);
      if (!to)
        return error(400, "the body must be {\"to\":NODE} with a node id "
                          "1-65535");
      auto [status, text] = member.start_move(*p, *to);
      spdlog::info("admin: move partition={} to={} from={} status={}", *p,
                   *to, req.remote, status);
      if (status != 202)
        return error(status, text);
      return {202, "application/json", text, {}};
    }
    return error(404, "no such admin endpoint: " + req.method + " " + path);
  }
};

admin_listener::admin_listener(std::string address, uint16_t port,
                               std::string token_hash,
                               cluster_member& member)
  : impl_(new impl{std::move(token_hash), member, nullptr}) {
  gateway::server_options so;
  so.address = std::move(address);
  so.port = port;
  so.threads = 1;
  auto* self = impl_.get();
  impl_->server = std::make_unique<gateway::server>(
    so,
    [self](http_request req, gateway::respond_fn respond) {
      respond(self->handle(req));
    },
    [](std::shared_ptr<gateway::ws_link> link, const http_request&) {
      link->close(1008, "no WebSocket on the admin port");
      return gateway::ws_handlers{};
    });
}

admin_listener::~admin_listener() {
  stop();
}

std::string admin_listener::start() {
  return impl_->server->start();
}

uint16_t admin_listener::port() const {
  return impl_->server->port();
}

void admin_listener::stop() {
  if (impl_ && impl_->server)
    impl_->server->stop();
}

} // namespace parley
