#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace parley {

/// Parley's error codes (CAF category "parley"). Values are stable: they
/// cross BASP between nodes. The gateway maps them to wire Error codes in one
/// place; `retryable` below says which ones a client may simply retry.
enum class errc : uint8_t {
  /// Not an error.
  none = 0,
  /// The sender is not a member of the conversation.
  not_member,
  /// The conversation (or other object) does not exist.
  not_found,
  /// A payload or request exceeds a configured size limit.
  too_large,
  /// A request is malformed (empty client_message_id, bad key, ...).
  bad_request,
  /// The storage layer failed to write; nothing of the request was kept.
  /// Retryable with the same idempotency key.
  storage_failed,
  /// Refused without trying because an earlier write of the same writer
  /// failed and the writer has not yet rolled back. Retryable.
  storage_fenced,
  /// A storage record could not be decoded: on-disk corruption or a bug.
  storage_corrupt,
  /// The node is shutting down. Retryable (elsewhere or later).
  shutting_down,
  /// Credentials or token missing, wrong, or revoked.
  unauthenticated,
  /// The name or object already exists (e.g. a taken username).
  conflict,
  /// Not allowed for this user (e.g. registration closed, device limit).
  forbidden,
  /// A sync cursor is past the conversation's head: the client's state is
  /// from the future (another server's data); it must resync from scratch.
  cursor_ahead,
  /// A rate limit refused the request; the context carries a message and
  /// the milliseconds after which a retry can pass (uint64_t).
  rate_limited,
  /// The actor that owns the request's partition cannot be reached now: a
  /// stale route, a partition that moved or whose node is gone, or a
  /// request that timed out. Retryable with the same idempotency key.
  unavailable,
};

/// Returns a stable lowercase name for `x` (used in logs and errors).
const char* to_string(errc x);

/// True for errors a client may retry unchanged with the same
/// idempotency key.
bool retryable(errc x);

/// True if `err` is a Parley error equal to `x`.
bool is(const caf::error& err, errc x);

} // namespace parley

CAF_ERROR_CODE_ENUM(parley::errc, "parley")
