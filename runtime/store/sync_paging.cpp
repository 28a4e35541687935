#include "runtime/store/sync_paging.hpp"

#include <sodium.h>

namespace parley::store {

namespace {

// -- size bounds ---------------------------------------------------------------

/// Every field of a message but its payload and client id, in JSON at its
/// widest (20-digit integers as strings, enum names, field names), with
/// room to spare for fields still to come.
constexpr size_t message_fixed = 1024;

/// The same for an inbox entry (its `latest` included) and a receipt.
constexpr size_t inbox_fixed = 512;
constexpr size_t receipt_fixed = 384;

/// JSON escapes a control character as \u00XX: six bytes for one.
constexpr size_t json_escape_factor = 6;

size_t base64_len(size_t n) {
  return (n + 2) / 3 * 4;
}

// -- token bytes ----------------------------------------------------------------

constexpr uint8_t token_version = 2; // 2: page size, cursors_only
constexpr uint8_t flag_started = 0x80;
constexpr uint8_t flag_cursors_only = 0x40;
constexpr uint8_t phase_mask = 0x03;

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

/// Reads a varint of at most 10 bytes that fits 64 bits.
bool get_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (in.empty())
      return false;
    auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    if (shift == 63 && b > 1)
      return false;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80))
      return true;
  }
  return false;
}

/// FNV-1a: catches truncated and garbled tokens (not a signature: a token
/// grants nothing).
uint32_t checksum(std::string_view bytes) {
  uint32_t h = 2166136261u;
  for (auto c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

std::string to_base64url(const std::string& bin) {
  auto variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bin.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(),
                    reinterpret_cast<const unsigned char*>(bin.data()),
                    bin.size(), variant);
  out.resize(out.size() - 1); // the terminating NUL
  return out;
}

std::optional<std::string> from_base64url(std::string_view text) {
  std::string bin(text.size() * 3 / 4 + 1, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()),
                        bin.size(), text.data(), text.size(), nullptr, &len,
                        &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        != 0
      || end != text.data() + text.size())
    return std::nullopt;
  bin.resize(len);
  return bin;
}

} // namespace

size_t wire_size_bound(const stored_message& m) {
  size_t body = m.kind == message_kind_membership
                  ? json_escape_factor * m.payload.size()
                  : base64_len(m.payload.size());
  return message_fixed + json_escape_factor * m.client_message_id.size()
         + body;
}

size_t wire_size_bound(const inbox_entry&) {
  return inbox_fixed;
}

size_t wire_size_bound(const receipt_event&) {
  return receipt_fixed;
}

size_t min_server_frame_bytes(size_t max_payload_bytes) {
  stored_message largest;
  largest.client_message_id.assign(128, 'x'); // the longest accepted
  largest.payload.assign(max_payload_bytes, 'x');
  return wire_size_bound(largest) + sync_frame_overhead
         + max_continuation_bytes;
}

std::string encode_continuation(const sync_position& p) {
  std::string bin;
  bin.push_back(static_cast<char>(token_version));
  bin.push_back(static_cast<char>(static_cast<uint8_t>(p.phase)
                                  | (p.started ? flag_started : 0)
                                  | (p.cursors_only ? flag_cursors_only : 0)));
  put_varint(bin, p.page_size);
  put_varint(bin, p.conv);
  put_varint(bin, p.after);
  put_varint(bin, p.cursors.size());
  conversation_id prev = 0;
  for (auto& [conv, after] : p.cursors) {
    put_varint(bin, conv - prev);
    put_varint(bin, after);
    prev = conv;
  }
  auto sum = checksum(bin);
  for (int i = 3; i >= 0; --i)
    bin.push_back(static_cast<char>(sum >> (8 * i)));
  return to_base64url(bin);
}

std::optional<sync_position> decode_continuation(std::string_view token) {
  if (token.empty() || token.size() > max_continuation_bytes)
    return std::nullopt;
  auto bin = from_base64url(token);
  if (!bin || bin->size() < 2 + 4 + 4)
    return std::nullopt;
  std::string_view body{bin->data(), bin->size() - 4};
  uint32_t sum = 0;
  for (size_t i = body.size(); i < bin->size(); ++i)
    sum = (sum << 8) | static_cast<uint8_t>((*bin)[i]);
  if (sum != checksum(body))
    return std::nullopt;
  std::string_view in = body;
  auto version = static_cast<uint8_t>(in[0]);
  auto flags = static_cast<uint8_t>(in[1]);
  in.remove_prefix(2);
  if (version != token_version
      || (flags & ~(flag_started | flag_cursors_only | phase_mask))
      || (flags & phase_mask) > static_cast<uint8_t>(sync_phase::messages))
    return std::nullopt;
  sync_position p;
  p.phase = static_cast<sync_phase>(flags & phase_mask);
  p.started = (flags & flag_started) != 0;
  p.cursors_only = (flags & flag_cursors_only) != 0;
  uint64_t page_size = 0;
  uint64_t n = 0;
  if (!get_varint(in, page_size) || page_size == 0
      || page_size > max_sync_page_size || !get_varint(in, p.conv)
      || !get_varint(in, p.after) || !get_varint(in, n) || n > in.size() / 2)
    return std::nullopt;
  p.page_size = static_cast<uint32_t>(page_size);
  // cursors_only skips the inbox and the receipts.
  if (p.cursors_only && p.phase != sync_phase::messages)
    return std::nullopt;
  if (!p.started && (p.conv != 0 || p.after != 0))
    return std::nullopt;
  conversation_id prev = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t delta = 0;
    uint64_t after = 0;
    // Ids strictly increase: each delta is at least 1 and does not wrap.
    if (!get_varint(in, delta) || !get_varint(in, after) || delta == 0
        || delta > UINT64_MAX - prev)
      return std::nullopt;
    prev += delta;
    p.cursors.emplace_back(prev, after);
  }
  if (!in.empty())
    return std::nullopt;
  return p;
}

size_t continuation_reserve(
  const std::vector<std::pair<conversation_id, sequence>>& cursors) {
  sync_position widest;
  widest.phase = sync_phase::messages;
  widest.started = true;
  widest.cursors_only = true;
  widest.page_size = max_sync_page_size;
  widest.conv = UINT64_MAX;
  widest.after = UINT64_MAX;
  widest.cursors = cursors;
  return encode_continuation(widest).size();
}

} // namespace parley::store
