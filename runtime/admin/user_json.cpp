#include "runtime/admin/user_json.hpp"

#include <caf/sec.hpp>

#include "runtime/admin/json_text.hpp"
#include "runtime/core/errors.hpp"

namespace parley::admin {

namespace {

/// The message the actor gave with `err`, or `fallback`.
std::string message_of(const caf::error& err, const std::string& fallback) {
  auto& ctx = err.context();
  if (ctx.size() >= 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return fallback;
}

} // namespace

std::optional<uint64_t> parse_user_id(const std::string& text) {
  if (text.empty() || text.size() > 19)
    return std::nullopt;
  uint64_t x = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    x = x * 10 + static_cast<uint64_t>(c - '0');
  }
  if (x == 0 || x > (uint64_t{1} << 63) - 1)
    return std::nullopt;
  return x;
}

std::optional<send_limit> parse_send_limit(const std::string& text) {
  if (text == "off")
    return send_limit{};
  auto slash = text.find('/');
  if (slash == std::string::npos)
    return std::nullopt;
  auto n = parse_user_id(text.substr(0, slash));
  auto unit = text.substr(slash + 1);
  uint64_t period = unit == "s"     ? 1000
                    : unit == "min" ? 60 * 1000
                    : unit == "h"   ? 3600 * 1000
                                    : 0;
  if (!n || *n > 1000000 || period == 0)
    return std::nullopt;
  return send_limit{*n, period};
}

std::string limit_text(const send_limit& l) {
  if (l.is_default())
    return "default";
  auto n = std::to_string(l.count);
  switch (l.period_ms) {
    case 1000: return n + "/s";
    case 60 * 1000: return n + "/min";
    case 3600 * 1000: return n + "/h";
    default: return n + "/" + std::to_string(l.period_ms) + "ms";
  }
}

std::string devices_json(const account_view& v,
                         const std::map<device_id, bool>& online) {
  std::string out = "[";
  for (auto& d : v.devices) {
    if (out.size() > 1)
      out += ",";
    auto i = online.find(d.device);
    bool on = !d.revoked && i != online.end() && i->second;
    out += "{\"device\":" + std::to_string(d.device)
           + ",\"name\":" + json_quote(d.name)
           + ",\"created_ms\":" + std::to_string(d.created_at_ms)
           + ",\"last_seen_ms\":" + std::to_string(d.last_seen_ms)
           + ",\"online\":" + (on ? "true" : "false")
           + ",\"revoked\":" + (d.revoked ? "true" : "false") + "}";
  }
  return out + "]";
}

std::string user_json(const account_view& v,
                      const std::map<device_id, bool>& online) {
  return "{\"user_id\":" + std::to_string(v.user)
         + ",\"name\":" + json_quote(v.name)
         + ",\"blocked\":" + (v.blocked ? "true" : "false")
         + ",\"send_limit\":" + json_quote(limit_text(v.send))
         + ",\"devices\":" + devices_json(v, online) + "}";
}

result error_result(const caf::error& err, const std::string& what) {
  if (err == caf::sec::request_timeout)
    return {503, what + ": the node did not answer in time; retry"};
  if (err.category() != caf::atom("parley"))
    return {503, what + ": " + to_string(err) + "; retry"};
  auto code = static_cast<errc>(err.code());
  switch (code) {
    case errc::not_found:
      return {404, message_of(err, what + ": not found")};
    case errc::conflict:
      return {409, what + ": " + message_of(err, "already exists")};
    case errc::bad_request:
      return {400, what + ": " + message_of(err, "bad request")};
    case errc::forbidden:
      return {403, what + ": " + message_of(err, "not allowed")};
    case errc::unavailable:
    case errc::shutting_down:
    case errc::storage_failed:
    case errc::storage_fenced:
      return {503, what + ": " + message_of(err, "unavailable")
                     + "; retry"};
    default:
      return {500, what + ": " + to_string(code)};
  }
}

} // namespace parley::admin
