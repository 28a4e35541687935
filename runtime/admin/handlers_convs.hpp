#pragma once

// What the conversation handlers (handlers_convs.cpp) and the inbox
// rebuild (handlers_inbox.cpp) share: how long they wait for an actor and
// how an actor's error becomes the operator's answer.

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/error.hpp>

#include "runtime/admin/handlers.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley::admin {

/// How long a question to another actor (maybe on another node) may take
/// before the operator is told to retry (parleyctl waits 10 s for the
/// whole answer).
inline constexpr auto admin_ask = timeouts::client;

/// The whole answer's bound (a conv tail asks several times): past it, 503
/// with a retry message.
inline constexpr auto answer_within = std::chrono::seconds(8);

using deadline = std::chrono::steady_clock::time_point;

/// The timeout for one more question before `d`: admin_ask, or what is
/// left if less (0 if none).
caf::timespan ask_within(deadline d);

/// The numeric argument `name` of `c` (checked by the parser), 0 if absent.
uint64_t number_arg(const call& c, const std::string& name);

/// An actor's error about `what` as the answer: 404 not found; 503 with
/// "try again in a moment" for a timeout or a retryable error (another
/// node away, a partition moving); else 500 with the error's message.
result failure(const std::string& what, const caf::error& err);

/// Registers `inbox rebuild` (handlers_inbox.cpp).
void add_inbox_handlers(handler_table& t, env& e);

} // namespace parley::admin
