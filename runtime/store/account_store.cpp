#include "runtime/store/account_store.hpp"

#include <algorithm>

#include "parley/v1/store.pb.h"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/records.hpp"

namespace parley::store {

namespace {

namespace pb = parley::store::v1;

/// The user id counter's name in table 'n' before ids were allocated per
/// partition. DO NOT CHANGE: kept on disk.
constexpr std::string_view user_counter = "user";

/// The name of a partition's user id counter in its first slot. DO NOT
/// CHANGE: kept on disk.
constexpr std::string_view partition_user_counter = "user_ids";

/// Ids stay below 2^31 (direct_conversation_id).
constexpr user_id id_limit = user_id{1} << 31;

std::string encode_counter(user_id value) {
  pb::Counter counter;
  counter.set_value(value);
  return counter.SerializeAsString();
}

/// The counter under `key`; nullopt if none.
caf::expected<std::optional<user_id>> read_counter(kv_backend& kv,
                                                   const std::string& key) {
  auto c = read_record<pb::Counter>(kv, key);
  if (!c)
    return c.error();
  if (!*c)
    return std::optional<user_id>{};
  return std::optional<user_id>{(*c)->value()};
}

std::string encode(const account& acct) {
  pb::AccountRecord rec;
  rec.set_user_id(acct.user);
  rec.set_password_hash(acct.password_hash);
  rec.set_created_at_ms(acct.created_at_ms);
  rec.set_blocked(acct.blocked);
  rec.set_read_receipts_off(acct.read_receipts_off);
  return rec.SerializeAsString();
}

/// The 'u' value of layout 3: the user id only.
std::string encode_name_entry(user_id user) {
  pb::AccountRecord rec;
  rec.set_user_id(user);
  return rec.SerializeAsString();
}

account decode(std::string_view name, const pb::AccountRecord& rec) {
  return account{std::string{name},   rec.user_id(),
                 rec.password_hash(), rec.created_at_ms(),
                 rec.blocked(),       rec.read_receipts_off()};
}

std::string encode(const device_record& dev) {
  pb::DeviceRecord rec;
  rec.set_name(dev.name);
  rec.set_token_hash(dev.token_hash);
  rec.set_created_at_ms(dev.created_at_ms);
  rec.set_revoked(dev.revoked);
  return rec.SerializeAsString();
}

device_record decode(device_id id, const pb::DeviceRecord& rec) {
  return device_record{id, rec.name(), rec.token_hash(), rec.created_at_ms(),
                       rec.revoked()};
}

} // namespace

// -- writes ------------------------------------------------------------------

void add_account(write_batch& batch, const account& acct,
                 uint32_t partitions) {
  auto p = partition_of(placement_key::username(acct.name), partitions);
  batch.put(keys::account(acct.name), encode_name_entry(acct.user));
  batch.put(keys::user_account(acct.user), encode(acct));
  batch.put(keys::user_name(acct.user), acct.name);
  batch.put(user_counter_key(p, partitions), encode_counter(acct.user));
}

void update_account(write_batch& batch, const account& acct) {
  batch.put(keys::user_account(acct.user), encode(acct));
}

void add_device(write_batch& batch, user_id user, const device_record& dev) {
  pb::TokenRecord token;
  token.set_user_id(user);
  token.set_device_id(dev.device);
  batch.put(keys::device(user, dev.device), encode(dev));
  batch.put(keys::token(user, dev.token_hash), token.SerializeAsString());
}

void revoke_device(write_batch& batch, user_id user, device_record dev) {
  dev.revoked = true;
  batch.put(keys::device(user, dev.device), encode(dev));
  batch.erase(keys::token(user, dev.token_hash));
}

void drop_legacy_token(write_batch& batch, std::string_view token_hash) {
  batch.erase(keys::token(token_hash));
}

void set_send_limit(write_batch& batch, user_id user, const send_limit& l) {
  if (l.is_default()) {
    batch.erase(keys::user_limits(user));
    return;
  }
  std::string v;
  keys::append_u64(v, l.count);
  keys::append_u64(v, l.period_ms);
  batch.put(keys::user_limits(user), std::move(v));
}

void add_last_seen(write_batch& batch, user_id user, device_id dev,
                   int64_t ms) {
  std::string v;
  keys::append_u64(v, static_cast<uint64_t>(std::max<int64_t>(ms, 0)));
  batch.max_u64(keys::last_seen(user, dev), std::move(v));
}

void add_delivered_cursor(write_batch& batch, user_id user, device_id dev,
                          conversation_id conv, sequence seq) {
  std::string v;
  keys::append_u64(v, seq);
  batch.max_u64(keys::delivered(user, dev, conv), std::move(v));
}

// -- reads -------------------------------------------------------------------

uint64_t max_id_tries(uint32_t partitions) {
  return uint64_t{64} * std::max(partitions, uint32_t{1});
}

caf::expected<user_id> next_user_id(user_id after, uint32_t p,
                                    uint32_t partitions) {
  auto tries = max_id_tries(partitions);
  for (auto x = after + 1; tries > 0 && x > after && x < id_limit;
       ++x, --tries)
    if (partition_of(placement_key::user(x), partitions) == p)
      return x;
  return caf::make_error(errc::forbidden,
                         "no user id left for this username's partition");
}

std::string user_counter_key(uint32_t p, uint32_t partitions) {
  auto first = slot_range(p, partitions).first;
  return keys::counter(static_cast<uint16_t>(first), partition_user_counter);
}

caf::expected<user_id> last_user_id(kv_backend& kv, uint32_t p,
                                    uint32_t partitions) {
  auto own = read_counter(kv, user_counter_key(p, partitions));
  if (!own)
    return own.error();
  if (*own)
    return **own;
  return legacy_last_user_id(kv);
}

caf::expected<user_id> own_last_user_id(kv_backend& kv, uint32_t p,
                                        uint32_t partitions) {
  auto own = read_counter(kv, user_counter_key(p, partitions));
  if (!own)
    return own.error();
  return own->value_or(0);
}

caf::expected<user_id> legacy_last_user_id(kv_backend& kv) {
  auto c = read_counter(kv, keys::counter(user_counter));
  if (!c)
    return c.error();
  return c->value_or(0);
}

caf::error settle_user_counters(kv_backend& kv, uint32_t partitions) {
  auto legacy = read_counter(kv, keys::counter(user_counter));
  if (!legacy)
    return legacy.error();
  if (!*legacy)
    return {};
  for (uint32_t p = 0; p < partitions; ++p) {
    auto key = user_counter_key(p, partitions);
    auto own = kv.get(key);
    if (!own)
      return own.error();
    if (*own)
      continue;
    write_batch batch;
    batch.put(std::move(key), encode_counter(**legacy));
    if (auto err = kv.write(batch, true))
      return err;
  }
  return {};
}

caf::expected<bool> account_exists(kv_backend& kv, std::string_view name) {
  auto bytes = kv.get(keys::account(name));
  if (!bytes)
    return bytes.error();
  return bytes->has_value();
}

caf::expected<std::optional<user_id>> find_user_id(kv_backend& kv,
                                                   std::string_view name) {
  auto rec = read_record<pb::AccountRecord>(kv, keys::account(name));
  if (!rec)
    return rec.error();
  if (!*rec)
    return std::optional<user_id>{};
  return std::optional<user_id>{(*rec)->user_id()};
}

caf::expected<std::optional<account>> find_account(kv_backend& kv,
                                                   std::string_view name) {
  auto id = find_user_id(kv, name);
  if (!id)
    return id.error();
  if (!*id)
    return std::optional<account>{};
  return find_account_by_id(kv, **id);
}

caf::expected<std::optional<std::string>> user_name(kv_backend& kv,
                                                    user_id user) {
  return kv.get(keys::user_name(user));
}

caf::expected<std::optional<account>> find_account_by_id(kv_backend& kv,
                                                         user_id user) {
  auto rec = read_record<pb::AccountRecord>(kv, keys::user_account(user));
  if (!rec)
    return rec.error();
  if (!*rec)
    return std::optional<account>{};
  auto name = user_name(kv, user);
  if (!name)
    return name.error();
  auto acct = decode(name->value_or(std::string{}), **rec);
  acct.user = user;
  return std::optional<account>{std::move(acct)};
}

caf::expected<account_v3> account_to_v3(std::string_view value) {
  pb::AccountRecord rec;
  if (!rec.ParseFromArray(value.data(), static_cast<int>(value.size()))
      || rec.user_id() == 0)
    return caf::make_error(errc::storage_corrupt,
                           "not an account record with a user id");
  account_v3 out;
  out.name_value = encode_name_entry(rec.user_id());
  out.record_key = keys::user_account(rec.user_id());
  out.record_value = std::string(value);
  out.slim = value == out.name_value;
  return out;
}

caf::expected<device_id> last_device_id(kv_backend& kv, user_id user) {
  auto last = kv.last(keys::device(user, 0),
                      keys::prefix_end(keys::user_records(keys::devices_tag,
                                                          user)));
  if (!last)
    return last.error();
  if (!*last)
    return device_id{0};
  auto ids = keys::decode_device((*last)->first);
  return ids ? ids->second : device_id{0};
}

caf::expected<std::optional<device_record>>
find_device(kv_backend& kv, user_id user, device_id dev) {
  auto rec = read_record<pb::DeviceRecord>(kv, keys::device(user, dev));
  if (!rec)
    return rec.error();
  if (!*rec)
    return std::optional<device_record>{};
  return std::optional<device_record>{decode(dev, **rec)};
}

caf::expected<std::vector<device_record>> list_devices(kv_backend& kv,
                                                       user_id user) {
  std::vector<device_record> out;
  auto err = kv.scan(keys::device(user, 0),
                     keys::prefix_end(keys::user_records(keys::devices_tag,
                                                         user)),
                     [&](std::string_view k, std::string_view v) {
                       pb::DeviceRecord rec;
                       if (rec.ParseFromArray(v.data(),
                                              static_cast<int>(v.size())))
                         out.push_back(decode(
                           keys::decode_device(k).value_or(
                             std::pair<user_id, device_id>{}).second, rec));
                       return true;
                     });
  if (err)
    return err;
  return out;
}

caf::expected<send_limit> find_send_limit(kv_backend& kv, user_id user) {
  auto bytes = kv.get(keys::user_limits(user));
  if (!bytes)
    return bytes.error();
  send_limit out;
  if (!*bytes)
    return out;
  auto count = keys::read_u64(**bytes, 0);
  auto period = keys::read_u64(**bytes, 8);
  if (!count || !period || (*bytes)->size() != 16)
    return caf::make_error(errc::storage_corrupt,
                           "user limits of " + std::to_string(user));
  out.count = *count;
  out.period_ms = *period;
  return out;
}

caf::expected<std::map<device_id, int64_t>> last_seen(kv_backend& kv,
                                                      user_id user) {
  std::map<device_id, int64_t> out;
  auto first = keys::last_seen(user, 0);
  auto err = kv.scan(first,
                     keys::prefix_end(keys::user_records(keys::last_seen_tag,
                                                         user)),
                     [&](std::string_view k, std::string_view v) {
                       auto dev = keys::read_u64(k, first.size() - 8);
                       auto ms = keys::read_u64(v, 0);
                       if (dev && ms)
                         out[*dev] = static_cast<int64_t>(*ms);
                       return true;
                     });
  if (err)
    return err;
  return out;
}

namespace {

caf::expected<std::optional<token_owner>> read_token(kv_backend& kv,
                                                     const std::string& key) {
  auto rec = read_record<pb::TokenRecord>(kv, key);
  if (!rec)
    return rec.error();
  if (!*rec)
    return std::optional<token_owner>{};
  return std::optional<token_owner>{
    token_owner{(*rec)->user_id(), (*rec)->device_id()}};
}

} // namespace

caf::expected<std::optional<token_owner>>
find_token(kv_backend& kv, user_id user, std::string_view token_hash) {
  auto owner = read_token(kv, keys::token(user, token_hash));
  if (owner && *owner && (*owner)->user != user)
    return std::optional<token_owner>{}; // not this user's token
  return owner;
}

caf::expected<std::optional<token_owner>>
find_legacy_token(kv_backend& kv, std::string_view token_hash) {
  return read_token(kv, keys::token(token_hash));
}

} // namespace parley::store
