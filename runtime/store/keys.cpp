#include "runtime/store/keys.hpp"

#include <initializer_list>

#include "runtime/core/mix.hpp"
#include "runtime/core/placement.hpp"

namespace parley::keys {

namespace {

/// 'P' slot:u16 tag.
void start_key(std::string& out, uint32_t slot, char tag) {
  out.push_back(partitioned_tag);
  out.push_back(static_cast<char>((slot >> 8) & 0xFF));
  out.push_back(static_cast<char>(slot & 0xFF));
  out.push_back(tag);
}

/// 'P' slot tag, then each of `parts` (big-endian), with room reserved for
/// `more` bytes the caller appends: one allocation per key.
std::string tagged(uint16_t slot, char tag, std::initializer_list<uint64_t> parts,
                   size_t more = 0) {
  std::string out;
  out.reserve(fields_pos + 8 * parts.size() + more);
  start_key(out, slot, tag);
  for (auto x : parts)
    append_u64(out, x);
  return out;
}

/// 'P' slot tag bytes.
std::string with_bytes(uint16_t slot, char tag, std::string_view bytes) {
  std::string out;
  out.reserve(fields_pos + bytes.size());
  start_key(out, slot, tag);
  out.append(bytes);
  return out;
}

/// True if `key` is a partitioned key of table `tag`, `size` bytes long.
bool is_key(char tag, std::string_view key, size_t size) {
  return key.size() == size && key[0] == partitioned_tag
         && key[tag_pos] == tag;
}

std::optional<std::pair<uint64_t, uint64_t>>
decode_pair(char tag, std::string_view key) {
  if (!is_key(tag, key, fields_pos + 16))
    return std::nullopt;
  return std::make_pair(*read_u64(key, fields_pos),
                        *read_u64(key, fields_pos + 8));
}

/// A slot from a key's own bytes (tokens, counters): SplitMix64's finalizer
/// over their FNV-1a 64, top 16 bits.
uint16_t bytes_slot(std::string_view bytes) {
  return static_cast<uint16_t>(mix::fmix(fnv1a_64(bytes)) >> 48);
}

} // namespace

uint16_t conversation_slot(conversation_id conv) {
  return slot_of(placement_key::conversation(conv));
}

uint16_t user_slot(user_id user) {
  return slot_of(placement_key::user(user));
}

uint16_t account_slot(std::string_view username) {
  return slot_of(placement_key::username(username));
}

uint16_t token_slot(std::string_view token_hash) {
  return bytes_slot(token_hash);
}

uint16_t counter_slot(std::string_view name) {
  return bytes_slot(name);
}

std::string table_start(uint32_t slot, char tag) {
  if (slot >= slot_count)
    return std::string(1, static_cast<char>(partitioned_tag + 1));
  std::string out;
  start_key(out, slot, tag);
  return out;
}

std::string conversation_records(char tag, conversation_id conv) {
  return tagged(conversation_slot(conv), tag, {conv});
}

std::string user_records(char tag, user_id user) {
  return tagged(user_slot(user), tag, {user});
}

std::optional<uint16_t> slot_of_key(std::string_view key) {
  if (key.size() < tag_pos || key[0] != partitioned_tag)
    return std::nullopt;
  return static_cast<uint16_t>((static_cast<uint8_t>(key[1]) << 8)
                               | static_cast<uint8_t>(key[2]));
}

char table_of(std::string_view key) {
  if (key.empty())
    return '\0';
  if (key[0] == meta_tag)
    return meta_tag;
  if (key[0] == partitioned_tag && key.size() > tag_pos)
    return key[tag_pos];
  return '\0';
}

void append_u64(std::string& out, uint64_t x) {
  char bytes[8];
  for (int i = 7; i >= 0; --i, x >>= 8)
    bytes[i] = static_cast<char>(x & 0xFF);
  out.append(bytes, 8);
}

std::optional<uint64_t> read_u64(std::string_view in, size_t pos) {
  if (pos > in.size() || in.size() - pos < 8)
    return std::nullopt;
  uint64_t x = 0;
  for (size_t i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<uint8_t>(in[pos + i]);
  return x;
}

std::string message(conversation_id conv, sequence seq) {
  return tagged(conversation_slot(conv), messages_tag, {conv, seq});
}

std::optional<std::pair<conversation_id, sequence>>
decode_message(std::string_view key) {
  return decode_pair(messages_tag, key);
}

std::string idempotency(conversation_id conv, user_id user, device_id device,
                        std::string_view client_message_id) {
  auto out = tagged(conversation_slot(conv), idempotency_tag,
                    {conv, user, device}, client_message_id.size());
  out.append(client_message_id);
  return out;
}

std::string conversation(conversation_id conv) {
  return tagged(conversation_slot(conv), conversations_tag, {conv});
}

std::string outbox(conversation_id conv) {
  return tagged(conversation_slot(conv), outbox_tag, {conv});
}

std::string sweep(conversation_id conv) {
  return tagged(conversation_slot(conv), sweep_tag, {conv});
}

std::string member(conversation_id conv, user_id user) {
  return tagged(conversation_slot(conv), members_tag, {conv, user});
}

std::optional<std::pair<conversation_id, user_id>>
decode_member(std::string_view key) {
  return decode_pair(members_tag, key);
}

std::string account(std::string_view username) {
  return with_bytes(account_slot(username), accounts_tag, username);
}

std::string user_account(user_id user) {
  return tagged(user_slot(user), user_accounts_tag, {user});
}

std::string user_name(user_id user) {
  return tagged(user_slot(user), user_names_tag, {user});
}

std::string device(user_id user, device_id dev) {
  return tagged(user_slot(user), devices_tag, {user, dev});
}

std::string user_limits(user_id user) {
  return tagged(user_slot(user), user_limits_tag, {user});
}

std::string last_seen(user_id user, device_id dev) {
  return tagged(user_slot(user), last_seen_tag, {user, dev});
}

std::string token(std::string_view token_hash) {
  return with_bytes(token_slot(token_hash), tokens_tag, token_hash);
}

std::string token(user_id user, std::string_view token_hash) {
  auto out = tagged(user_slot(user), tokens_tag, {user}, token_hash.size());
  out.append(token_hash);
  return out;
}

std::string delivered(user_id user, device_id dev, conversation_id conv) {
  return tagged(user_slot(user), delivered_tag, {user, dev, conv});
}

std::string receipt(conversation_id conv, user_id user, uint8_t kind) {
  auto out = tagged(conversation_slot(conv), receipts_tag, {conv, user}, 1);
  out.push_back(static_cast<char>(kind));
  return out;
}

std::optional<std::pair<user_id, uint8_t>>
decode_receipt(std::string_view key) {
  if (!is_key(receipts_tag, key, fields_pos + 17))
    return std::nullopt;
  auto user = read_u64(key, fields_pos + 8);
  if (!user)
    return std::nullopt;
  return std::make_pair(*user, static_cast<uint8_t>(key[fields_pos + 16]));
}

std::string inbox(user_id user, conversation_id conv) {
  return tagged(user_slot(user), inbox_tag, {user, conv});
}

std::string inbox_flags(user_id user, conversation_id conv) {
  return tagged(user_slot(user), inbox_flags_tag, {user, conv});
}

std::string membership(user_id user, conversation_id conv) {
  return tagged(user_slot(user), memberships_tag, {user, conv});
}

std::optional<std::pair<user_id, conversation_id>>
decode_membership(std::string_view key) {
  return decode_pair(memberships_tag, key);
}

std::string member_event(conversation_id conv, user_id user,
                         uint64_t version) {
  return tagged(conversation_slot(conv), member_events_tag,
                {conv, user, version});
}

std::optional<std::pair<user_id, uint64_t>>
decode_member_event(std::string_view key) {
  if (!is_key(member_events_tag, key, fields_pos + 24))
    return std::nullopt;
  return std::make_pair(*read_u64(key, fields_pos + 8),
                        *read_u64(key, fields_pos + 16));
}

std::string member_version(user_id user, conversation_id conv) {
  return tagged(user_slot(user), member_versions_tag, {user, conv});
}

std::optional<std::pair<user_id, device_id>>
decode_device(std::string_view key) {
  return decode_pair(devices_tag, key);
}

std::optional<conversation_id> decode_conversation(std::string_view key) {
  if (!is_key(conversations_tag, key, fields_pos + 8))
    return std::nullopt;
  return read_u64(key, fields_pos);
}

std::string counter(std::string_view name) {
  return with_bytes(counter_slot(name), counters_tag, name);
}

std::string counter(uint16_t slot, std::string_view name) {
  return with_bytes(slot, counters_tag, name);
}

std::string meta(std::string_view name) {
  std::string out(1, meta_tag);
  out.append(name);
  return out;
}

std::string prefix_end(std::string prefix) {
  // Strip trailing 0xFF bytes, then increment the last byte.
  while (!prefix.empty() && static_cast<uint8_t>(prefix.back()) == 0xFF)
    prefix.pop_back();
  if (prefix.empty())
    return std::string(); // no upper bound
  prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
  return prefix;
}

} // namespace parley::keys
