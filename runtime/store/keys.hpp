#pragma once

// Key layouts of Parley's LevelDB tables.
//
// DO NOT CHANGE: these layouts are on disk. Every key starts with a one-byte
// table tag; integers are fixed-width big-endian so that LevelDB's bytewise
// order is numeric order. Add tables with new tags; never reuse a tag.
//
//  tag  table          key                                         value
//  'b'  members        'b' conv:u64 user:u64                       MemberRecord
//  'c'  conversations  'c' conv:u64                                ConversationRecord
//  'e'  sweep mark     'e' conv:u64                                IdempotencySweep
//  'i'  idempotency    'i' conv:u64 user:u64 device:u64 cmid:bytes IdempotencyRecord
//  'm'  messages       'm' conv:u64 seq:u64                        MessageRecord
//  'o'  outbox         'o' conv:u64                                OutboxWatermark
//  'd'  devices        'd' user:u64 device:u64                     DeviceRecord
//  'n'  counters       'n' name:bytes                              Counter
//  't'  tokens         't' token_hash:32 bytes                     TokenRecord
//  'u'  accounts       'u' username:bytes                          AccountRecord
//  'v'  user names     'v' user:u64                                username (raw)
//  'y'  memberships    'y' user:u64 conv:u64                       MemberRecord
//  'r'  delivered      'r' user:u64 device:u64 conv:u64            seq:u64 (raw, max-merged)
//  's'  receipts       's' conv:u64 user:u64 kind:u8               seq:u64 (raw, max-merged)
//  'x'  inbox          'x' user:u64 conv:u64                       InboxRecord
//  'f'  inbox flags    'f' user:u64 conv:u64                       InboxFlags
//  'z'  meta           'z' name:bytes                              per name (below)
//
// Meta keys hold what a node fixes at its first start and must never change
// afterwards (names are ASCII):
//  'z' "partitions"  the deployment's partition count, u64 big-endian
//                    (runtime/core/placement.hpp; runtime/store/meta_store.hpp)
//
// Idempotency is scoped to the conversation: the conversation actor is the
// one that checks it, and a client_message_id reused in another
// conversation is a different message there.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "runtime/core/messages.hpp"

namespace parley::keys {

inline constexpr char members_tag = 'b';
inline constexpr char conversations_tag = 'c';
inline constexpr char sweep_tag = 'e';
inline constexpr char idempotency_tag = 'i';
inline constexpr char messages_tag = 'm';
inline constexpr char outbox_tag = 'o';
inline constexpr char devices_tag = 'd';
inline constexpr char counters_tag = 'n';
inline constexpr char tokens_tag = 't';
inline constexpr char accounts_tag = 'u';
inline constexpr char user_names_tag = 'v';
inline constexpr char memberships_tag = 'y';
inline constexpr char delivered_tag = 'r';
inline constexpr char receipts_tag = 's';
inline constexpr char inbox_tag = 'x';
inline constexpr char inbox_flags_tag = 'f';
inline constexpr char meta_tag = 'z';

/// Receipt kinds (as wire ReceiptKind): a member's user-level cursors.
inline constexpr uint8_t receipt_delivered = 1; ///< some device of the user has it
inline constexpr uint8_t receipt_read = 2;      ///< the user read up to here

/// Appends `x` as 8 big-endian bytes.
void append_u64(std::string& out, uint64_t x);

/// Reads 8 big-endian bytes at `pos`; nullopt if `in` is too short.
std::optional<uint64_t> read_u64(std::string_view in, size_t pos);

/// 'm' conv seq
std::string message(conversation_id conv, sequence seq);

/// Decodes a messages-table key; nullopt if `key` is not one.
std::optional<std::pair<conversation_id, sequence>>
decode_message(std::string_view key);

/// 'i' conv user device cmid
std::string idempotency(conversation_id conv, user_id user, device_id device,
                        std::string_view client_message_id);

/// 'c' conv
std::string conversation(conversation_id conv);

/// 'o' conv
std::string outbox(conversation_id conv);

/// 'e' conv
std::string sweep(conversation_id conv);

/// 'b' conv user
std::string member(conversation_id conv, user_id user);

/// Decodes a members-table key; nullopt if `key` is not one.
std::optional<std::pair<conversation_id, user_id>>
decode_member(std::string_view key);

/// 'u' username
std::string account(std::string_view username);

/// 'v' user
std::string user_name(user_id user);

/// 'd' user device
std::string device(user_id user, device_id dev);

/// 't' token_hash
std::string token(std::string_view token_hash);

/// 'n' name
std::string counter(std::string_view name);

/// 'r' user device conv: the device's delivered cursor.
std::string delivered(user_id user, device_id dev, conversation_id conv);

/// 's' conv user kind: a member's receipt cursor (receipt_delivered or
/// receipt_read).
std::string receipt(conversation_id conv, user_id user, uint8_t kind);

/// (user, kind) of an 's' key.
std::optional<std::pair<user_id, uint8_t>>
decode_receipt(std::string_view key);

/// 'x' user conv: the user's inbox entry of a conversation.
std::string inbox(user_id user, conversation_id conv);

/// 'f' user conv: the flags the user set on a conversation.
std::string inbox_flags(user_id user, conversation_id conv);

/// 'z' name: a meta key (see the table above for the names in use).
std::string meta(std::string_view name);

/// 'y' user conv: the user's side of a membership (sync lists these).
std::string membership(user_id user, conversation_id conv);

/// The smallest key greater than every key starting with `prefix`.
std::string prefix_end(std::string prefix);

} // namespace parley::keys
