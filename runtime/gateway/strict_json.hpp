#pragma once

// A strict JSON check (RFC 8259) for text that came from outside, run
// before protobuf's JSON parser, which accepts more than JSON (single
// quotes, unquoted keys, trailing commas, bad escapes). It only validates:
// one value, optionally surrounded by whitespace, in well-formed UTF-8.
// Iterative, with bounded nesting, so no input can exhaust the stack.

#include <cstddef>
#include <string>
#include <string_view>

namespace parley::gateway {

/// Bounds of strict_json_error.
struct json_limits {
  size_t max_bytes = 1 << 20; ///< longer text is refused unread
  size_t max_depth = 64;      ///< nested objects and arrays
};

/// Empty if `text` is exactly one JSON value (RFC 8259), else why not,
/// naming the byte offset ("at byte 7: trailing comma"). Never throws.
std::string strict_json_error(std::string_view text, json_limits lim = {});

} // namespace parley::gateway
