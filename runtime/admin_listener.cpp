#include "runtime/admin_listener.hpp"

#include <atomic>
#include <exception>
#include <mutex>

#include <spdlog/spdlog.h>

#include "runtime/admin/admin_tokens.hpp"
#include "runtime/admin/json_text.hpp"
#include "runtime/gateway/server.hpp"

namespace parley {

namespace {

using gateway::http_request;
using gateway::http_response;

http_response error(unsigned status, const std::string& message) {
  return {status, "application/json", admin_error_body(status, message), {}};
}

/// "user=alice password=<hidden>": the arguments as the log shows them.
std::string args_text(const admin::command_spec& spec,
                      const admin::arg_values& args) {
  std::string out;
  for (auto& [key, value] : args) {
    bool secret = false;
    for (auto& a : spec.args)
      if (a.name == key && a.kind == admin::arg_kind::password)
        secret = true;
    out += (out.empty() ? "" : " ") + key + "="
           + (secret ? std::string{"<hidden>"} : value);
  }
  return out;
}

/// The request line as logged: method and path, never the query (it may
/// hold arguments).
std::string request_text(const http_request& req) {
  return req.method + " " + req.target.substr(0, req.target.find('?'));
}

} // namespace

std::string admin_error_body(unsigned status, const std::string& message) {
  return "{\"error\":{\"status\":" + std::to_string(status)
         + ",\"message\":" + json_quote(message) + "}}";
}

struct admin_listener::impl {
  std::shared_ptr<admin::token_store> tokens;
  admin::handler_table table;
  std::unique_ptr<gateway::server> server;
  // Answers pass through the gate: after stop() they are dropped, never
  // posted to a server that is gone (a handler may answer late, from an
  // actor that outlives the listener).
  struct gate {
    std::mutex mu;
    bool open = true;
  };
  std::shared_ptr<gate> gate_ = std::make_shared<gate>();

  void handle(const http_request& req, gateway::respond_fn respond);
};

void admin_listener::impl::handle(const http_request& req,
                                  gateway::respond_fn respond) {
  spdlog::debug("admin: request {} from={}", request_text(req), req.remote);
  const std::string bearer = "Bearer ";
  auto token = req.authorization.rfind(bearer, 0) == 0
                 ? req.authorization.substr(bearer.size())
                 : std::string{};
  if (token.empty()) {
    spdlog::warn("admin: refused without a token from={} request=\"{}\" "
                 "status=401",
                 req.remote, request_text(req));
    respond(error(401, "an admin token is required (Authorization: Bearer "
                       "TOKEN)"));
    return;
  }
  auto name = tokens->match(token);
  if (name.empty()) {
    spdlog::warn("admin: refused an unknown token from={} request=\"{}\" "
                 "status=403",
                 req.remote, request_text(req));
    respond(error(403, "not an admin token of this node"));
    return;
  }
  auto parsed = admin::from_request(req.method, req.target, req.body);
  if (auto* no = std::get_if<admin::refusal>(&parsed)) {
    spdlog::info("admin: token={} from={} request=\"{}\" status={} "
                 "error={}",
                 name, req.remote, request_text(req), no->status,
                 json_quote(no->message));
    respond(error(no->status, no->message));
    return;
  }
  auto& cmd = std::get<admin::parsed_command>(parsed);
  admin::call c{cmd.spec, std::move(cmd.args), name, req.remote};
  auto* h = table.find(c.spec->name);
  if (!h) {
    spdlog::info("admin: token={} from={} command=\"{}\" status=501", name,
                 req.remote, c.spec->name);
    respond(error(501, "this node has no handler for " + c.spec->name));
    return;
  }
  auto what = "command=\"" + c.spec->name + "\"";
  if (auto a = args_text(*c.spec, c.args); !a.empty())
    what += " " + a;
  // parleyctl re-asks `metrics top` every second and a followed job every
  // half second: those reads log at debug, every other command at info.
  auto level = c.spec->mode == admin::client_mode::top
                   || (c.spec->mode == admin::client_mode::job
                       && c.spec->method == "GET")
                 ? spdlog::level::debug
                 : spdlog::level::info;
  auto answered = std::make_shared<std::atomic<bool>>(false);
  auto reply = [g = gate_, answered, name, remote = req.remote, what, level,
                respond](admin::result r) {
    if (answered->exchange(true))
      return; // a second answer: the first one stands
    if (r.status >= 200 && r.status < 300)
      spdlog::log(level, "admin: token={} from={} {} status={}", name, remote,
                  what, r.status);
    else
      spdlog::info("admin: token={} from={} {} status={} error={}", name,
                   remote, what, r.status, json_quote(r.body));
    http_response resp = r.status >= 200 && r.status < 300
                           ? http_response{r.status, "application/json",
                                           std::move(r.body), {}}
                           : error(r.status, r.body);
    std::lock_guard<std::mutex> guard{g->mu};
    if (g->open)
      respond(std::move(resp));
  };
  try {
    (*h)(c, reply);
  } catch (const std::exception& e) {
    reply({500, std::string{"the handler failed: "} + e.what()});
  }
}

admin_listener::admin_listener(std::string address, uint16_t port,
                               std::shared_ptr<admin::token_store> tokens,
                               admin::handler_table table)
  : impl_(std::make_shared<impl>()) {
  impl_->tokens = std::move(tokens);
  impl_->table = std::move(table);
  gateway::server_options so;
  so.address = std::move(address);
  so.port = port;
  so.threads = 1;
  std::weak_ptr<impl> weak = impl_;
  impl_->server = std::make_unique<gateway::server>(
    so,
    [weak](http_request req, gateway::respond_fn respond) {
      if (auto self = weak.lock())
        self->handle(req, std::move(respond));
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
  if (!impl_)
    return;
  {
    std::lock_guard<std::mutex> guard{impl_->gate_->mu};
    impl_->gate_->open = false;
  }
  if (impl_->server)
    impl_->server->stop();
}

} // namespace parley
