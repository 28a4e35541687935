#pragma once

// user_json: the user and device commands' pieces that need no actor
// (runtime/admin/handlers_users.cpp): their JSON answers, the rate and id
// arguments, and how an accounts error becomes an HTTP status.

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <caf/error.hpp>

#include "runtime/admin/handlers.hpp"
#include "runtime/core/account_steps.hpp"

namespace parley::admin {

/// A user id typed as digits (1 .. 2^63-1); nullopt for anything else.
std::optional<uint64_t> parse_user_id(const std::string& text);

/// "N/s", "N/min", "N/h" (N 1-1000000) as a send limit, "off" as the
/// default (count 0); nullopt for anything else.
std::optional<send_limit> parse_send_limit(const std::string& text);

/// "50/s", "10/min", "100/h" ("N/Pms" for another period), or "default".
std::string limit_text(const send_limit& l);

/// The devices of `v` as a JSON array of rows: device, name, created_ms,
/// last_seen_ms (0: not seen since it was recorded), online (`online`
/// says; revoked devices are never online), revoked.
std::string devices_json(const account_view& v,
                         const std::map<device_id, bool>& online);

/// `user show`: user_id, name, blocked, send_limit, devices.
std::string user_json(const account_view& v,
                      const std::map<device_id, bool>& online);

/// An accounts error as an HTTP answer: not_found 404, conflict 409,
/// bad_request 400, forbidden 403, a timeout or an unreachable owner 503
/// (retry), anything else 500. `what` names the object asked about.
result error_result(const caf::error& err, const std::string& what);

} // namespace parley::admin
