#include "runtime/gateway/gateway.hpp"

#include <algorithm>


#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "actors/disconnect.hpp"
#include "runtime/core/errors.hpp"
#include "parley/v1/api.pb.h"
#include "runtime/gateway/connection.hpp"

namespace parley::gateway {

namespace {

using namespace std::chrono_literals;

std::string to_json(const google::protobuf::Message& m) {
  return encode_message(m, frame_format::json);
}

http_response error_response(v1::Error::Code code, std::string message) {
  api::v1::ErrorBody body;
  body.mutable_error()->set_code(code);
  body.mutable_error()->set_message(std::move(message));
  return http_response{http_status(code), "application/json", to_json(body),
                       {}};
}

http_response error_response(const caf::error& err) {
  api::v1::ErrorBody body;
  *body.mutable_error() = to_wire_error(err);
  auto code = body.error().code();
  http_response r{http_status(code), "application/json", to_json(body), {}};
  return r;
}

template <class Message>
bool parse_body(const std::string& body, Message& out, const respond_fn& respond) {
  auto err = parse_json_lenient(body, out);
  if (!err.empty()) {
    respond(error_response(v1::Error::CODE_BAD_FRAME,
                           "request body is not the expected JSON: " + err));
    return false;
  }
  return true;
}

/// 429 with a JSON error carrying retryAfterMs and a Retry-After header
/// (whole seconds, rounded up).
http_response rate_limited_response(uint64_t wait_ms, std::string message) {
  api::v1::ErrorBody body;
  auto* e = body.mutable_error();
  e->set_code(v1::Error::CODE_RATE_LIMITED);
  e->set_message(std::move(message));
  e->set_retryable(true);
  e->set_retry_after_ms(wait_ms);
  return http_response{429, "application/json", to_json(body),
                       {{"Retry-After", std::to_string((wait_ms + 999) / 1000)}}};
}

std::string bearer_of(const http_request& req) {
  const std::string prefix = "Bearer ";
  return req.authorization.rfind(prefix, 0) == 0
           ? req.authorization.substr(prefix.size())
           : std::string{};
}

} // namespace

unsigned http_status(v1::Error::Code code) {
  switch (code) {
    case v1::Error::CODE_BAD_FRAME: return 400;
    case v1::Error::CODE_UNAUTHENTICATED: return 401;
    case v1::Error::CODE_FORBIDDEN: return 403;
    case v1::Error::CODE_NOT_FOUND: return 404;
    case v1::Error::CODE_CONFLICT: return 409;
    case v1::Error::CODE_TOO_LARGE: return 413;
    case v1::Error::CODE_RATE_LIMITED: return 429;
    case v1::Error::CODE_UNIMPLEMENTED: return 501;
    case v1::Error::CODE_UNAVAILABLE:
    case v1::Error::CODE_OVERLOADED: return 503;
    default: return 500;
  }
}

gateway::gateway(caf::actor_system& sys, gateway_options opts,
                 gateway_actors actors)
  : sys_(sys),
    opts_(std::move(opts)),
    actors_(std::move(actors)),
    stats_(std::make_shared<metrics>()),
    limiter_(std::make_shared<rate_limiter>(opts_.limits)) {
  route_protobuf_logs();
  opts_.server.on_overflow = [stats = stats_] { stats->slow_disconnects++; };
  // Reconnect storms: WebSocket upgrades per source address.
  opts_.server.admit_upgrade = [this](const http_request& req)
    -> std::optional<http_response> {
    auto wait = limiter_->take("connect/ip/" + req.remote,
                               limiter_->limits().connect_ip);
    if (wait == 0)
      return std::nullopt;
    stats_->rate_limited++;
    return rate_limited_response(wait, "too many connections from "
                                         + req.remote);
  };
  auto http = [this](http_request req, respond_fn respond) {
    handle_http(std::move(req), std::move(respond));
  };
  auto ws = [this](std::shared_ptr<ws_link> link,
                   const http_request& req) -> ws_handlers {
    connection_deps deps{actors_.accounts, actors_.directory,
                         actors_.registry, actors_.reader,
                         stats_, actors_.node_stats,
                         opts_.server.max_frame_bytes,
                         opts_.hello_timeout, opts_.heartbeat_ms,
                         actors_.inbox, limiter_};
    deps.max_server_frame_bytes = opts_.max_server_frame_bytes;
    auto conn = sys_.spawn(connection_impl, deps, link, req.authorization);
    {
      std::lock_guard<std::mutex> guard{conns_mtx_};
      // Forget connections that ended, then remember this one.
      conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                  [](const caf::actor_addr& a) {
                                    return !caf::actor_cast<caf::actor>(a);
                                  }),
                   conns_.end());
      conns_.push_back(conn.address());
    }
    return ws_handlers{
      [conn](std::string data, bool binary) {
        caf::anon_send(conn, frame_atom::value, std::move(data), binary);
      },
      [conn] { caf::anon_send(conn, caf::leave_atom::value); },
      [conn] { // a slow consumer: Disconnect past the full queue, close
        caf::anon_send(conn, caf::close_atom::value,
                       code_of(disconnect_cause::slow_consumer),
                       std::string{slow_consumer_reason});
      }};
  };
  server_ = std::make_unique<server>(opts_.server, http, ws);
}

gateway::~gateway() {
  stop();
}

std::string gateway::start() {
  return server_->start();
}

void gateway::stop() {
  if (server_)
    server_->stop();
  // The sockets are gone with the I/O threads: end their actors too, and
  // wait, so that none touches a session after the server is destroyed.
  std::vector<caf::actor> live;
  {
    std::lock_guard<std::mutex> guard{conns_mtx_};
    for (auto& addr : conns_)
      if (auto hdl = caf::actor_cast<caf::actor>(addr))
        live.push_back(hdl);
    conns_.clear();
  }
  if (live.empty())
    return;
  caf::scoped_actor self{sys_};
  for (auto& hdl : live) {
    self->send_exit(hdl, caf::exit_reason::user_shutdown);
    self->wait_for(hdl);
  }
}

uint16_t gateway::port() const {
  return server_->port();
}

void gateway::handle_http(http_request req, respond_fn respond) {
  stats_->http_requests++;
  auto path = req.target.substr(0, req.target.find('?'));
  if (path == "/healthz" && req.method == "GET") {
    std::string body = R"({"status":"ok")";
    if (actors_.cluster.health_fields)
      body += "," + actors_.cluster.health_fields();
    respond({200, "application/json", body + "}", {}});
    return;
  }
  if (path == "/metrics" && req.method == "GET") {
    auto text = stats_->render();
    if (actors_.node_stats)
      text += actors_.node_stats->render();
    if (actors_.cluster.metrics)
      text += actors_.cluster.metrics();
    respond({200, "text/plain; version=0.0.4", std::move(text), {}});
    return;
  }
  auto accounts = actors_.accounts;
  // Logins and sign-ups per source address (password guessing, storms).
  auto limited = [&](const std::string& key, const bucket_spec& spec) {
    auto wait = limiter_->take(key, spec);
    if (wait == 0)
      return false;
    stats_->rate_limited++;
    respond(rate_limited_response(wait, "too many attempts; slow down"));
    return true;
  };
  if (path == "/v1/accounts" && req.method == "POST") {
    if (limited("login/ip/" + req.remote, limiter_->limits().login_ip))
      return;
    api::v1::CreateAccountRequest body;
    if (!parse_body(req.body, body, respond))
      return;
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(accounts, 60s, register_atom::value, body.username(),
                    body.password())
        .then(
          [=](user_id id) {
            api::v1::CreateAccountResponse out;
            out.set_user_id(id);
            respond({201, "application/json", to_json(out), {}});
          },
          [=](caf::error& err) { respond(error_response(err)); });
    });
    return;
  }
  if (path == "/v1/login" && req.method == "POST") {
    if (limited("login/ip/" + req.remote, limiter_->limits().login_ip))
      return;
    api::v1::LoginRequest body;
    if (!parse_body(req.body, body, respond))
      return;
    if (limited("login/user/" + body.username(),
                limiter_->limits().login_account))
      return;
    sys_.spawn([=, stats = stats_](caf::event_based_actor* self) {
      self->request(accounts, 60s, login_atom::value, body.username(),
                    body.password(), body.device_name())
        .then(
          [=](login_result& r) {
            stats->logins++;
            api::v1::LoginResponse out;
            out.set_user_id(r.user);
            out.set_device_id(r.device);
            out.set_token(r.token);
            respond({200, "application/json", to_json(out), {}});
          },
          [=](caf::error& err) { respond(error_response(err)); });
    });
    return;
  }
  const std::string devices = "/v1/devices";
  if (path.rfind(devices, 0) == 0) {
    auto rest = path.substr(devices.size());
    auto token = bearer_of(req);
    device_id target = 0;
    if (req.method == "DELETE") {
      if (rest.size() < 2 || rest[0] != '/') {
        respond(error_response(v1::Error::CODE_NOT_FOUND,
                               "DELETE /v1/devices/{device_id}"));
        return;
      }
      try {
        size_t pos = 0;
        target = std::stoull(rest.substr(1), &pos);
        if (pos != rest.size() - 1)
          throw std::invalid_argument("trailing characters");
      } catch (...) {
        respond(error_response(v1::Error::CODE_BAD_FRAME, "bad device id"));
        return;
      }
    } else if (req.method != "GET" || !rest.empty()) {
      respond(error_response(v1::Error::CODE_NOT_FOUND, "no such route"));
      return;
    }
    auto method = req.method;
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(accounts, 60s, auth_atom::value, token)
        .then(
          [=](principal& who) {
            if (method == "GET") {
              self->request(accounts, 60s, devices_atom::value, who.user)
                .then(
                  [=](std::vector<device_info>& list) {
                    api::v1::DeviceList out;
                    for (auto& d : list) {
                      auto* x = out.add_devices();
                      x->set_device_id(d.device);
                      x->set_name(d.name);
                      x->set_created_at_ms(d.created_at_ms);
                      x->set_revoked(d.revoked);
                    }
                    respond({200, "application/json", to_json(out), {}});
                  },
                  [=](caf::error& err) { respond(error_response(err)); });
              return;
            }
            self->request(accounts, 60s, revoke_atom::value, who.user, target)
              .then([=](bool) { respond({204, "application/json", "", {}}); },
                    [=](caf::error& err) { respond(error_response(err)); });
          },
          [=](caf::error& err) { respond(error_response(err)); });
    });
    return;
  }
  if (path == "/v1/settings" && (req.method == "GET" || req.method == "PUT")) {
    api::v1::Settings body;
    if (req.method == "PUT") {
      if (!parse_body(req.body, body, respond))
        return;
      if (!body.has_read_receipts()) {
        respond(error_response(v1::Error::CODE_BAD_FRAME,
                               "settings: readReceipts (true or false)"));
        return;
      }
    }
    auto token = bearer_of(req);
    auto put = req.method == "PUT";
    auto answer = [respond](bool on) {
      respond({200, "application/json",
               std::string{R"({"readReceipts":)"} + (on ? "true" : "false")
                 + "}",
               {}});
    };
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(accounts, 60s, auth_atom::value, token)
        .then(
          [=](principal& who) {
            if (!put) {
              answer(who.read_receipts);
              return;
            }
            self
              ->request(accounts, 60s, caf::put_atom::value, who.user,
                        body.read_receipts())
              .then([=](bool on) { answer(on); },
                    [=](caf::error& err) { respond(error_response(err)); });
          },
          [=](caf::error& err) { respond(error_response(err)); });
    });
    return;
  }
  respond(error_response(v1::Error::CODE_NOT_FOUND, "no such route"));
}

} // namespace parley::gateway
