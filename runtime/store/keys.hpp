#pragma once

// Key layouts of Parley's LevelDB tables (layout version 3).
//
// DO NOT CHANGE: these layouts are on disk; a change is a new layout
// version with a migration (runtime/store/layout_migration.hpp), never a
// silent one. Every partitioned key starts with 'P' and its owner's slot
// (runtime/core/placement.hpp: slot_of, the top 16 bits of the owner's
// placement hash, u16 big-endian), then the table tag and the fields, so
// that all of a partition's records are one range of keys
// (runtime/store/layout.hpp: partition_range). Integers are fixed-width
// big-endian so that LevelDB's bytewise order is numeric order. Add tables
// with new tags; never reuse a tag. Every key of a new table must start
// with its owner's slot (an unprefixed key other than meta stops the
// migration: it looks like layout 1).
//
//  tag  table          key = 'P' slot:u16 then                     value
//  'b'  members        'b' conv:u64 user:u64                       MemberRecord
//  'c'  conversations  'c' conv:u64                                ConversationRecord
//  'e'  sweep mark     'e' conv:u64                                IdempotencySweep
//  'i'  idempotency    'i' conv:u64 user:u64 device:u64 cmid:bytes IdempotencyRecord
//  'm'  messages       'm' conv:u64 seq:u64                        MessageRecord
//  'o'  outbox         'o' conv:u64                                OutboxWatermark
//  'd'  devices        'd' user:u64 device:u64                     DeviceRecord
//  'n'  counters       'n' name:bytes                              Counter
//  't'  tokens         't' user:u64 token_hash:32 bytes            TokenRecord
//                      't' token_hash:32 bytes (issued before tokens named
//                          their user; read and erased only)
//  'u'  usernames      'u' username:bytes                          AccountRecord
//                          (user_id only: the name's index, layout 3)
//  'a'  accounts       'a' user:u64                                AccountRecord
//                          (authoritative: password hash, created,
//                          blocked, read_receipts_off; layout 3)
//  'v'  user names     'v' user:u64                                username (raw)
//  'y'  memberships    'y' user:u64 conv:u64                       MemberRecord
//  'g'  member events  'g' conv:u64 user:u64 version:u64           MemberRecord
//                          (conversation side: a change not yet acked
//                          by the user's side; runtime/core/
//                          membership_events.hpp)
//  'h'  member versions 'h' user:u64 conv:u64                      version:u64 (raw)
//                          (user side: the version of the 'y' row)
//  'r'  delivered      'r' user:u64 device:u64 conv:u64            seq:u64 (raw, max-merged)
//  's'  receipts       's' conv:u64 user:u64 kind:u8               seq:u64 (raw, max-merged)
//  'x'  inbox          'x' user:u64 conv:u64                       InboxRecord
//  'f'  inbox flags    'f' user:u64 conv:u64                       InboxFlags
//  'l'  user limits    'l' user:u64                                count:u64 period_ms:u64 (raw)
//                          (an operator's send limit of the user;
//                          absent: the node's default)
//  'w'  last seen      'w' user:u64 device:u64                     ms:u64 (raw, max-merged)
//  'z'  meta           'z' name:bytes (no 'P' slot prefix)         per name (below)
//
// The owner whose slot prefixes a key (one function per table below):
//  conversation tables b c e g i m o s: the conversation (conversation_slot);
//  user tables d v y h r x f a l w: the user (user_slot); 'u': the username
//  (account_slot, placement_key::username); 't': the user named in the
//  key (user_slot; a token names its user, runtime/accounts/
//  credentials.hpp), or for a token from before that, token_slot (from
//  the hash); 'n': a partition's user id counter ("user_ids") sits in the
//  partition's first slot (store::user_counter_key), the old global
//  counter ("user", read only) in counter_slot (from the name).
//
// Layout 1 (until issue 21) had no 'P' slot prefix: every key started with
// its table tag. Layout 2 kept the whole AccountRecord in 'u' (the
// username's partition) and had no 'a'. Only the migration still reads
// them (runtime/store/layout_migration.hpp).
//
// Meta keys hold what a node fixes at its first start and must never change
// afterwards (names are ASCII):
//  'z' "partitions"  the deployment's partition count, u64 big-endian
//                    (runtime/core/placement.hpp; runtime/store/meta_store.hpp)
//  'z' "layout"      the key layout version, u64 big-endian (3; missing on
//                    a store with data: 1; runtime/store/layout_migration.hpp)
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
inline constexpr char user_accounts_tag = 'a';
inline constexpr char user_names_tag = 'v';
inline constexpr char memberships_tag = 'y';
inline constexpr char member_events_tag = 'g';
inline constexpr char member_versions_tag = 'h';
inline constexpr char delivered_tag = 'r';
inline constexpr char receipts_tag = 's';
inline constexpr char inbox_tag = 'x';
inline constexpr char inbox_flags_tag = 'f';
inline constexpr char user_limits_tag = 'l';
inline constexpr char last_seen_tag = 'w';
inline constexpr char meta_tag = 'z';
/// The first byte of every partitioned key (then slot:u16, then the tag).
inline constexpr char partitioned_tag = 'P';
/// Where a partitioned key's table tag is ('P' slot:u16 before it).
inline constexpr size_t tag_pos = 3;
/// Where a partitioned key's first field starts.
inline constexpr size_t fields_pos = 4;
/// The key layout this binary reads and writes.
inline constexpr uint64_t layout_version = 3;

/// Receipt kinds (as wire ReceiptKind): a member's user-level cursors.
inline constexpr uint8_t receipt_delivered = 1; ///< some device of the user has it
inline constexpr uint8_t receipt_read = 2;      ///< the user read up to here

/// Appends `x` as 8 big-endian bytes.
void append_u64(std::string& out, uint64_t x);

/// Reads 8 big-endian bytes at `pos`; nullopt if `in` is too short.
std::optional<uint64_t> read_u64(std::string_view in, size_t pos);

/// The owners' slots, one function per kind of owner (see the table).
uint16_t conversation_slot(conversation_id conv);
uint16_t user_slot(user_id user);
uint16_t account_slot(std::string_view username);
uint16_t token_slot(std::string_view token_hash);
uint16_t counter_slot(std::string_view name);

/// 'P' slot tag: where table `tag` starts in `slot` (0-65535; 65536 gives
/// the end of every slot, "Q").
std::string table_start(uint32_t slot, char tag);

/// 'P' slot(conv) tag conv: the prefix of `conv`'s records in table `tag`.
std::string conversation_records(char tag, conversation_id conv);

/// 'P' slot(user) tag user: the prefix of `user`'s records in table `tag`.
std::string user_records(char tag, user_id user);

/// The slot of a partitioned key; nullopt for any other key.
std::optional<uint16_t> slot_of_key(std::string_view key);

/// The table tag of a key: the byte after the slot of a partitioned key,
/// meta_tag for a meta key, '\0' for anything else.
char table_of(std::string_view key);

/// 'P' slot(conv) 'm' conv seq (every builder below prefixes its owner's
/// slot, as the table says)
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

/// 'u' username: the username's index entry (its user id).
std::string account(std::string_view username);

/// 'a' user: the user's account record, in the user's slot.
std::string user_account(user_id user);

/// 'v' user
std::string user_name(user_id user);

/// 'd' user device
std::string device(user_id user, device_id dev);

/// 'l' user: the user's own limits.
std::string user_limits(user_id user);

/// 'w' user device: when the device was last seen.
std::string last_seen(user_id user, device_id dev);

/// 't' token_hash: a token issued before tokens named their user (its slot:
/// token_slot, from the hash); read and erased, never written any more.
std::string token(std::string_view token_hash);

/// 't' user token_hash, in the user's slot: a token that names its user
/// (runtime/accounts/credentials.hpp), so its user's partition holds it.
std::string token(user_id user, std::string_view token_hash);

/// 'n' name (its slot: counter_slot, from the name): the counter of
/// user ids before they were allocated per partition; read only.
std::string counter(std::string_view name);

/// 'n' name in `slot`: a counter owned by the slot's partition (the user
/// id counter of a partition sits in its first slot: account_store.hpp).
std::string counter(uint16_t slot, std::string_view name);

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

/// (user, conv) of a 'y' key.
std::optional<std::pair<user_id, conversation_id>>
decode_membership(std::string_view key);

/// 'g' conv user version: a membership event of `conv` for `user`'s
/// index that the user's side has not acked yet (conversation side).
std::string member_event(conversation_id conv, user_id user,
                         uint64_t version);

/// (user, version) of a 'g' key.
std::optional<std::pair<user_id, uint64_t>>
decode_member_event(std::string_view key);

/// 'h' user conv: the version of `user`'s 'y' row of `conv` (user side).
std::string member_version(user_id user, conversation_id conv);

/// (user, device) of a 'd' key.
std::optional<std::pair<user_id, device_id>>
decode_device(std::string_view key);

/// The conversation of a 'c' key.
std::optional<conversation_id> decode_conversation(std::string_view key);

/// The smallest key greater than every key starting with `prefix`.
std::string prefix_end(std::string prefix);

} // namespace parley::keys
