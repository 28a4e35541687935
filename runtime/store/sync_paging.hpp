#pragma once

// Bounds and resume tokens of sync pages (pure functions, no storage).
//
// Every SyncPage frame stays within the node's `max-server-frame-bytes`,
// announced in Welcome. The page builder (store::user_sync) adds items
// while the sum of their bounds below fits; the bounds are upper limits of
// an item's encoded size in the larger of the two wire formats (canonical
// JSON: base64 payloads, 64-bit integers as strings, escaped strings, field
// names), checked against the real encoder by
// tests/unit/sync_paging_test.cpp.
//
// A continuation is the whole rest of a request, not a handle on server
// state: the phase and position where the next page starts, plus every
// cursor still needed. Any node can resume it; it grants nothing (each page
// re-reads the user's memberships, and a cursor outside them is refused).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/core/messages.hpp"

namespace parley::store {

/// The longest continuation (base64url characters) a page may carry. A
/// request whose cursors need more is refused (too_large): the client
/// splits it over several Syncs. A Sync frame must be able to carry it
/// back, so `max-frame-bytes` is at least this plus a little.
inline constexpr size_t max_continuation_bytes = 32 * 1024;

/// A SyncPage frame's bytes besides its items and its continuation
/// (request id, event sequence, field names, brackets, total_unread).
inline constexpr size_t sync_frame_overhead = 512;

/// Upper bounds of one item's encoded size inside a SyncPage, separators
/// included. A membership event's payload is shown structured: its user
/// ids and name may grow up to 6 times in JSON.
size_t wire_size_bound(const stored_message& m);
size_t wire_size_bound(const inbox_entry& e);
size_t wire_size_bound(const receipt_event& r);

/// The smallest `max-server-frame-bytes` that holds one message of
/// `max_payload_bytes` with the longest continuation: every page then has
/// room for at least one item.
size_t min_server_frame_bytes(size_t max_payload_bytes);

/// Messages per page: when the request names none, and at most.
inline constexpr uint32_t default_sync_page_size = 100;
inline constexpr uint32_t max_sync_page_size = 1000;

/// What a sync lists, in this order. The first page starts with the inbox
/// (with cursors_only: with the messages).
enum class sync_phase : uint8_t {
  inbox = 0,    ///< one entry per conversation, in conversation-id order
  receipts = 1, ///< other members' cursors of direct conversations
  messages = 2, ///< messages after each cursor, conversation by conversation
};

/// Where a sync resumes, and the rest of the request: the cursors it still
/// needs, the page size, whether only conversations with a cursor count.
struct sync_position {
  sync_phase phase = sync_phase::inbox;
  /// False: the phase starts at its beginning (conv and after are 0).
  bool started = false;
  /// Only conversations with a cursor are synced (no inbox, no receipts).
  bool cursors_only = false;
  /// Messages per page, 1 to max_sync_page_size.
  uint32_t page_size = default_sync_page_size;
  /// inbox, receipts: conversations up to this one are listed; messages:
  /// the conversation to resume in.
  conversation_id conv = 0;
  /// messages: the last sequence of `conv` already sent.
  sequence after = 0;
  /// The client's cursors still needed (conversation -> after), by id,
  /// each id once.
  std::vector<std::pair<conversation_id, sequence>> cursors;

  friend bool operator==(const sync_position& a, const sync_position& b) {
    return a.phase == b.phase && a.started == b.started
           && a.cursors_only == b.cursors_only && a.page_size == b.page_size
           && a.conv == b.conv && a.after == b.after && a.cursors == b.cursors;
  }
};

/// Encodes `p` as a continuation: base64url (no padding) of version 2,
/// phase and flags (started, cursors_only), varint page size, conv and
/// after, a varint count of cursors and each as (varint id delta, varint
/// after), then a 4-byte checksum. Version 1 (no page size) is refused.
std::string encode_continuation(const sync_position& p);

/// Decodes a continuation; nullopt if it is not one encode_continuation
/// wrote (bad base64, version, flags, page size, varint, order, checksum,
/// trailing bytes).
std::optional<sync_position> decode_continuation(std::string_view token);

/// The longest continuation a sync with these cursors can emit (at any
/// position): the room a page keeps for it.
size_t continuation_reserve(
  const std::vector<std::pair<conversation_id, sequence>>& cursors);

} // namespace parley::store
