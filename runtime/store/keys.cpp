#include "runtime/store/keys.hpp"

#include <initializer_list>

namespace parley::keys {

namespace {

/// `tag`, then each of `parts` (big-endian), with room reserved for `more`
/// bytes the caller appends: one allocation per key.
std::string tagged(char tag, std::initializer_list<uint64_t> parts,
                   size_t more = 0) {
  std::string out;
  out.reserve(1 + 8 * parts.size() + more);
  out.push_back(tag);
  for (auto x : parts)
    append_u64(out, x);
  return out;
}

std::optional<std::pair<uint64_t, uint64_t>>
decode_pair(char tag, std::string_view key) {
  if (key.size() != 17 || key[0] != tag)
    return std::nullopt;
  return std::make_pair(*read_u64(key, 1), *read_u64(key, 9));
}

} // namespace

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
  return tagged(messages_tag, {conv, seq});
}

std::optional<std::pair<conversation_id, sequence>>
decode_message(std::string_view key) {
  return decode_pair(messages_tag, key);
}

std::string idempotency(conversation_id conv, user_id user, device_id device,
                        std::string_view client_message_id) {
  auto out = tagged(idempotency_tag, {conv, user, device},
                    client_message_id.size());
  out.append(client_message_id);
  return out;
}

std::string conversation(conversation_id conv) {
  return tagged(conversations_tag, {conv});
}

std::string outbox(conversation_id conv) {
  return tagged(outbox_tag, {conv});
}

std::string sweep(conversation_id conv) {
  return tagged(sweep_tag, {conv});
}

std::string member(conversation_id conv, user_id user) {
  return tagged(members_tag, {conv, user});
}

std::optional<std::pair<conversation_id, user_id>>
decode_member(std::string_view key) {
  return decode_pair(members_tag, key);
}

std::string account(std::string_view username) {
  std::string out(1, accounts_tag);
  out.append(username);
  return out;
}

std::string user_name(user_id user) {
  return tagged(user_names_tag, {user});
}

std::string device(user_id user, device_id dev) {
  return tagged(devices_tag, {user, dev});
}

std::string token(std::string_view token_hash) {
  std::string out(1, tokens_tag);
  out.append(token_hash);
  return out;
}

std::string delivered(user_id user, device_id dev, conversation_id conv) {
  return tagged(delivered_tag, {user, dev, conv});
}

std::string receipt(conversation_id conv, user_id user, uint8_t kind) {
  auto out = tagged(receipts_tag, {conv, user}, 1);
  out.push_back(static_cast<char>(kind));
  return out;
}

std::optional<std::pair<user_id, uint8_t>>
decode_receipt(std::string_view key) {
  if (key.size() != 18 || key[0] != receipts_tag)
    return std::nullopt;
  auto user = read_u64(key, 9);
  if (!user)
    return std::nullopt;
  return std::make_pair(*user, static_cast<uint8_t>(key[17]));
}

std::string inbox(user_id user, conversation_id conv) {
  return tagged(inbox_tag, {user, conv});
}

std::string inbox_flags(user_id user, conversation_id conv) {
  return tagged(inbox_flags_tag, {user, conv});
}

std::string membership(user_id user, conversation_id conv) {
  return tagged(memberships_tag, {user, conv});
}

std::string counter(std::string_view name) {
  std::string out(1, counters_tag);
  out.append(name);
  return out;
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
