#include "runtime/core/errors.hpp"

namespace parley {

const char* to_string(errc x) {
  switch (x) {
    case errc::none: return "none";
    case errc::not_member: return "not_member";
    case errc::not_found: return "not_found";
    case errc::too_large: return "too_large";
    case errc::bad_request: return "bad_request";
    case errc::storage_failed: return "storage_failed";
    case errc::storage_fenced: return "storage_fenced";
    case errc::storage_corrupt: return "storage_corrupt";
    case errc::shutting_down: return "shutting_down";
    case errc::unauthenticated: return "unauthenticated";
    case errc::conflict: return "conflict";
    case errc::forbidden: return "forbidden";
    case errc::cursor_ahead: return "cursor_ahead";
    case errc::rate_limited: return "rate_limited";
    case errc::unavailable: return "unavailable";
  }
  return "unknown";
}

bool retryable(errc x) {
  switch (x) {
    case errc::storage_failed:
    case errc::storage_fenced:
    case errc::shutting_down:
    case errc::rate_limited:
    case errc::unavailable:
      return true;
    default:
      return false;
  }
}

bool is(const caf::error& err, errc x) {
  return err && err.category() == caf::atom("parley")
         && err.code() == static_cast<uint8_t>(x);
}

} // namespace parley
