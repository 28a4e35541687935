#include "runtime/gateway/frame_codec.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/wire_format_lite.h>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <caf/sec.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/gateway/strict_json.hpp"

namespace parley::gateway {

namespace {

namespace pbu = google::protobuf::util;

decoded_frame refuse(v1::Error::Code code, std::string message) {
  decoded_frame r;
  r.code = code;
  r.message = std::move(message);
  return r;
}

bool has_unknown_fields(const google::protobuf::Message& m) {
  return m.GetReflection()->GetUnknownFields(m).field_count() > 0;
}

/// Whether an oversized frame looks like a Sync, without decoding it: its
/// body field (binary), or a "sync" key (JSON; inside a string the quotes
/// would be escaped). Only words the refusal with advice.
bool looks_like_sync(std::string_view data, frame_format fmt) {
  if (fmt == frame_format::binary)
    return peek_client_frame_body(data) == v1::ClientFrame::kSyncFieldNumber;
  for (auto i = data.find("\"sync\""); i != std::string_view::npos;
       i = data.find("\"sync\"", i + 1)) {
    auto j = data.find_first_not_of(" \t\r\n", i + 6);
    if ((i == 0 || data[i - 1] != '\\') && j != std::string_view::npos
        && data[j] == ':')
      return true;
  }
  return false;
}

} // namespace

decoded_frame decode_client_frame(std::string_view data, frame_format fmt,
                                  size_t max_bytes) {
  if (data.size() > max_bytes)
    return refuse(v1::Error::CODE_TOO_LARGE,
                  "frame of " + std::to_string(data.size())
                    + " bytes exceeds the limit of "
                    + std::to_string(max_bytes)
                    + (looks_like_sync(data, fmt)
                         ? ": a Sync this large has too many cursors; split "
                           "them over several Syncs, the first as usual (it "
                           "carries the inbox), the others with cursorsOnly"
                         : ""));
  decoded_frame r;
  bool unknown = false;
  if (fmt == frame_format::binary) {
    if (!r.frame.ParseFromArray(data.data(), static_cast<int>(data.size())))
      return refuse(v1::Error::CODE_BAD_FRAME, "not a protobuf ClientFrame");
    unknown = has_unknown_fields(r.frame);
  } else {
    // protobuf's parser takes more than JSON (single quotes, bare keys,
    // trailing commas): only RFC 8259 text gets that far.
    if (auto why = strict_json_error(data, json_limits{max_bytes});
        !why.empty())
      return refuse(v1::Error::CODE_BAD_FRAME, "not JSON: " + why);
    pbu::JsonParseOptions strict;
    auto st = pbu::JsonStringToMessage(
      google::protobuf::StringPiece{data.data(), data.size()}, &r.frame,
      strict);
    if (!st.ok()) {
      // Retry leniently: unknown fields are allowed (newer clients), but
      // then an unset body means a frame type this server does not know.
      r.frame.Clear();
      if (!parse_json_lenient(data, r.frame).empty())
        return refuse(v1::Error::CODE_BAD_FRAME,
                      "not a ClientFrame in JSON: "
                        + std::string(st.message().substr(0, 200)));
      unknown = true;
    }
  }
  if (r.frame.body_case() == v1::ClientFrame::BODY_NOT_SET)
    return unknown ? refuse(v1::Error::CODE_UNIMPLEMENTED,
                            "unknown frame type")
                   : refuse(v1::Error::CODE_BAD_FRAME, "frame has no body");
  if (r.frame.request_id() == 0)
    return refuse(v1::Error::CODE_BAD_FRAME, "request_id must be non-zero");
  r.ok = true;
  return r;
}

int peek_client_frame_body(std::string_view data) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in{
    reinterpret_cast<const uint8_t*>(data.data()),
    static_cast<int>(data.size())};
  int body = 0;
  while (true) {
    auto tag = in.ReadTag();
    if (tag == 0)
      return in.ConsumedEntireMessage() ? body : 0;
    auto field = static_cast<int>(WireFormatLite::GetTagFieldNumber(tag));
    if (field >= 10 && field < 100)
      body = field;
    if (!WireFormatLite::SkipField(&in, tag))
      return 0;
  }
}

std::string parse_json_lenient(std::string_view data,
                               google::protobuf::Message& out) {
  if (auto why = strict_json_error(data); !why.empty())
    return "not JSON: " + why;
  pbu::JsonParseOptions lenient;
  lenient.ignore_unknown_fields = true;
  auto st = pbu::JsonStringToMessage(
    google::protobuf::StringPiece{data.data(), data.size()}, &out, lenient);
  return st.ok() ? std::string{} : std::string(st.message().substr(0, 200));
}

std::string encode_message(const google::protobuf::Message& m,
                           frame_format fmt) {
  if (fmt == frame_format::binary)
    return m.SerializeAsString();
  std::string out; // canonical JSON: lowerCamelCase keys
  (void) pbu::MessageToJsonString(m, &out, {});
  return out;
}

std::string encode_server_frame(const v1::ServerFrame& frame,
                                frame_format fmt) {
  return encode_message(frame, fmt);
}

std::string encode_client_frame(const v1::ClientFrame& frame,
                                frame_format fmt) {
  return encode_message(frame, fmt);
}

std::optional<v1::ServerFrame> decode_server_frame(std::string_view data,
                                                   frame_format fmt) {
  v1::ServerFrame frame;
  if (fmt == frame_format::binary) {
    if (!frame.ParseFromArray(data.data(), static_cast<int>(data.size())))
      return std::nullopt;
    return frame;
  }
  if (!parse_json_lenient(data, frame).empty())
    return std::nullopt;
  return frame;
}

v1::ServerFrame error_frame(uint32_t request_id, v1::Error::Code code,
                            std::string message, bool retryable,
                            std::optional<uint32_t> retry_after_ms) {
  v1::ServerFrame f;
  f.set_request_id(request_id);
  auto* e = f.mutable_error();
  e->set_code(code);
  e->set_message(std::move(message));
  e->set_retryable(retryable);
  if (retry_after_ms)
    e->set_retry_after_ms(*retry_after_ms);
  return f;
}

v1::Error to_wire_error(const caf::error& err) {
  v1::Error out;
  auto set = [&](v1::Error::Code c, const char* msg, bool retry) {
    out.set_code(c);
    out.set_message(msg);
    out.set_retryable(retry);
  };
  if (err.category() == caf::atom("parley")) {
    switch (static_cast<errc>(err.code())) {
      case errc::not_member:
        set(v1::Error::CODE_FORBIDDEN, "not a member of this conversation",
            false);
        break;
      case errc::not_found:
        set(v1::Error::CODE_NOT_FOUND, "no such object", false);
        break;
      case errc::too_large:
        set(v1::Error::CODE_TOO_LARGE, "payload too large", false);
        break;
      case errc::bad_request:
        set(v1::Error::CODE_BAD_FRAME, "malformed request", false);
        break;
      case errc::storage_failed:
      case errc::storage_fenced:
        set(v1::Error::CODE_UNAVAILABLE, "storage failed; retry the send",
            true);
        break;
      case errc::shutting_down:
        set(v1::Error::CODE_UNAVAILABLE, "server shutting down", true);
        break;
      case errc::unavailable:
        set(v1::Error::CODE_UNAVAILABLE, "temporarily unavailable; retry",
            true);
        break;
      case errc::unauthenticated:
        set(v1::Error::CODE_UNAUTHENTICATED, "not authenticated", false);
        break;
      case errc::conflict:
        set(v1::Error::CODE_CONFLICT, "already exists", false);
        break;
      case errc::forbidden:
        set(v1::Error::CODE_FORBIDDEN, "not allowed", false);
        break;
      case errc::cursor_ahead:
        set(v1::Error::CODE_CURSOR_AHEAD,
            "a cursor is past the conversation's head; resync", false);
        break;
      case errc::rate_limited: {
        set(v1::Error::CODE_RATE_LIMITED, "rate limited", true);
        auto& ctx = err.context();
        if (ctx.size() >= 2 && ctx.match_element<uint64_t>(1))
          out.set_retry_after_ms(
            static_cast<uint32_t>(ctx.get_as<uint64_t>(1)));
        break;
      }
      case errc::storage_corrupt:
      default:
        set(v1::Error::CODE_INTERNAL, "internal error", false);
    }
    // A retryable UNAVAILABLE says when to try again: a partition whose
    // node is away, fenced or switching in a move comes back in about a
    // lease renewal or a move's switch.
    if (out.code() == v1::Error::CODE_UNAVAILABLE && out.retry_after_ms() == 0)
      out.set_retry_after_ms(unavailable_retry_ms);
    // The actor's own words say more than the code ("only admins manage
    // the group"); internal details stay in the logs.
    auto& ctx = err.context();
    if (out.code() != v1::Error::CODE_INTERNAL && ctx.size() >= 1
        && ctx.match_element<std::string>(0))
      out.set_message(ctx.get_as<std::string>(0));
    return out;
  }
  if (err == caf::sec::request_timeout)
    set(v1::Error::CODE_UNAVAILABLE, "request timed out; retry", true);
  else
    set(v1::Error::CODE_UNAVAILABLE, "temporarily unavailable; retry", true);
  out.set_retry_after_ms(unavailable_retry_ms);
  return out;
}

v1::ServerFrame error_frame(uint32_t request_id, const caf::error& err) {
  v1::ServerFrame f;
  f.set_request_id(request_id);
  *f.mutable_error() = to_wire_error(err);
  return f;
}

const char* refused_send(const v1::Send& s) {
  if (s.kind() == v1::MESSAGE_KIND_MEDIA || s.has_media())
    return "media messages are not supported yet: nothing was stored";
  return nullptr;
}

v1::ServerFrame rate_limited_frame(uint32_t request_id, uint64_t wait_ms) {
  return error_frame(request_id, v1::Error::CODE_RATE_LIMITED,
                     "rate limited: retry after " + std::to_string(wait_ms)
                       + " ms",
                     true, static_cast<uint32_t>(wait_ms));
}

void route_protobuf_logs() {
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel level,
                                     const char* file, int line,
                                     const std::string& msg) {
    if (level >= google::protobuf::LOGLEVEL_FATAL)
      spdlog::critical("protobuf {}:{} {}", file, line, msg);
    else
      spdlog::debug("protobuf {}", msg);
  });
}

std::string code_name(v1::Error::Code code) {
  auto name = v1::Error::Code_Name(code);
  return name.rfind("CODE_", 0) == 0 ? name.substr(5) : name;
}

} // namespace parley::gateway
