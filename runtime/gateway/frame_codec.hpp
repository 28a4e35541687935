#pragma once

// Wire frames at the gateway's edge: decoding ClientFrames from binary
// (protobuf) or text (canonical JSON) WebSocket messages, encoding
// ServerFrames, and the one mapping from Parley's errors to wire Errors.
// Every byte here came from outside: nothing is trusted, nothing throws.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <caf/error.hpp>

#include "parley/v1/wire.pb.h"

namespace parley::gateway {

enum class frame_format { binary, json };

/// A decoded frame, or the Error to answer with.
struct decoded_frame {
  bool ok = false;
  v1::ClientFrame frame;
  v1::Error::Code code = v1::Error::CODE_UNSPECIFIED;
  std::string message;
};

/// Decodes one client frame of at most `max_bytes` encoded bytes. Checks
/// what every frame needs: a body of a known type and a non-zero
/// request_id. Errors: TOO_LARGE, BAD_FRAME, UNIMPLEMENTED (a body this
/// server does not know).
decoded_frame decode_client_frame(std::string_view data, frame_format fmt,
                                  size_t max_bytes);

/// The field number of a binary ClientFrame's body (the last body field on
/// the wire wins, as in protobuf's oneof), found without decoding it; 0 if
/// there is none or the bytes are not a well-formed message. A cheap look
/// that lets the I/O thread pick out Send frames (field 11).
int peek_client_frame_body(std::string_view data);

/// Encodes any protobuf message: binary, or canonical JSON (lowerCamelCase
/// keys, 64-bit integers as strings).
std::string encode_message(const google::protobuf::Message& m,
                           frame_format fmt);

/// Parses JSON into `out`, ignoring unknown fields (newer peers); the text
/// must be strict JSON (RFC 8259). Returns an error description, or empty
/// on success.
std::string parse_json_lenient(std::string_view data,
                               google::protobuf::Message& out);

/// Encodes a server frame in `fmt`.
std::string encode_server_frame(const v1::ServerFrame& frame,
                                frame_format fmt);

/// Encodes a client frame (for clients and tests).
std::string encode_client_frame(const v1::ClientFrame& frame,
                                frame_format fmt);

/// Decodes a server frame (for clients and tests); nullopt if malformed.
std::optional<v1::ServerFrame> decode_server_frame(std::string_view data,
                                                   frame_format fmt);

/// An Error frame answering `request_id`.
v1::ServerFrame error_frame(uint32_t request_id, v1::Error::Code code,
                            std::string message, bool retryable = false,
                            std::optional<uint32_t> retry_after_ms = {});

/// The Error frame answering `request_id` with `err` (see to_wire_error).
v1::ServerFrame error_frame(uint32_t request_id, const caf::error& err);

/// The Error answering a request refused by a rate limit.
v1::ServerFrame rate_limited_frame(uint32_t request_id, uint64_t wait_ms);

/// Why a Send cannot be taken as it stands, or nullptr. A media message
/// is refused (UNIMPLEMENTED) until media are built: storing it would
/// throw its reference away.
const char* refused_send(const v1::Send& s);

/// The retryAfterMs of a retryable UNAVAILABLE (a partition's node away,
/// its lease fenced, a move switching, a timeout): about a third of a
/// lease; clients add jitter.
inline constexpr uint32_t unavailable_retry_ms = 500;

/// Maps a Parley or CAF error to the wire Error: the one place that does.
v1::Error to_wire_error(const caf::error& err);

/// Routes protobuf's own log lines (e.g. invalid UTF-8 in a client's frame)
/// to spdlog at debug level, so clients cannot flood the server's log.
void route_protobuf_logs();

/// Stable name of a wire error code, e.g. "BAD_FRAME".
std::string code_name(v1::Error::Code code);

} // namespace parley::gateway
