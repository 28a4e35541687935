#pragma once

// Account tables: accounts ('u' name, 'v' id), the user id counter ('n'),
// devices ('d'), bearer tokens ('t') and devices' delivered cursors ('r').
// Turns these records (protobuf, schema/parley/v1/store.proto) into Parley
// structs and back; the only code that knows both their key layouts
// (keys.hpp) and their record formats. Secrets arrive hashed
// (runtime/accounts/credentials.hpp): nothing here sees a password or token.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// An account: 'u' name -> AccountRecord, and 'v' user -> name.
struct account {
  std::string name;
  user_id user = 0;
  std::string password_hash; ///< crypto_pwhash_str (Argon2id)
  int64_t created_at_ms = 0;
  bool blocked = false;
  bool read_receipts_off = false; ///< neither share nor see reads in 1:1
};

/// A logged-in device: 'd' user device -> DeviceRecord.
struct device_record {
  device_id device = 0;
  std::string name;
  std::string token_hash; ///< BLAKE2b-256 of the bearer token (32 bytes)
  int64_t created_at_ms = 0;
  bool revoked = false;
};

/// Whose bearer token a token hash is: 't' token_hash -> TokenRecord.
struct token_owner {
  user_id user = 0;
  device_id device = 0;
};

// -- writes: append to a batch -----------------------------------------------

/// Adds a new account: its record under its name, its name under its id,
/// and the user id counter set to its id (ids are handed out in order, so
/// the newest account holds the highest).
void add_account(write_batch& batch, const account& acct);

/// Replaces the record of an existing account (`acct.name`); the name and
/// the counter stay.
void update_account(write_batch& batch, const account& acct);

/// Adds a new device of `user` (`dev.device`) and its token record.
void add_device(write_batch& batch, user_id user, const device_record& dev);

/// Marks `dev` of `user` revoked (the record stays, so the id is never
/// handed out again) and deletes its token record: the token stops working.
void revoke_device(write_batch& batch, user_id user, device_record dev);

/// Adds a device's delivered cursor of `conv` (max-merged: never moves
/// backwards).
void add_delivered_cursor(write_batch& batch, user_id user, device_id dev,
                          conversation_id conv, sequence seq);

// -- reads -------------------------------------------------------------------

/// The last user id handed out (0: none yet).
caf::expected<user_id> last_user_id(kv_backend& kv);

/// True if an account record is kept under `name` (it is not parsed).
caf::expected<bool> account_exists(kv_backend& kv, std::string_view name);

/// The account named `name`; nullopt if none. Error: storage_corrupt.
caf::expected<std::optional<account>> find_account(kv_backend& kv,
                                                   std::string_view name);

/// The name of `user`; nullopt if no such user.
caf::expected<std::optional<std::string>> user_name(kv_backend& kv,
                                                    user_id user);

/// The account of `user`; nullopt if none. Error: storage_corrupt.
caf::expected<std::optional<account>> find_account_by_id(kv_backend& kv,
                                                         user_id user);

/// The highest device id `user` ever had (revoked ones too; 0: none).
caf::expected<device_id> last_device_id(kv_backend& kv, user_id user);

/// Device `dev` of `user`; nullopt if none. Error: storage_corrupt.
caf::expected<std::optional<device_record>>
find_device(kv_backend& kv, user_id user, device_id dev);

/// Every device of `user` (revoked ones too) in device id order. A record
/// that does not parse is left out.
caf::expected<std::vector<device_record>> list_devices(kv_backend& kv,
                                                       user_id user);

/// The device whose token hashes to `token_hash`; nullopt if none (never
/// issued, or revoked). Error: storage_corrupt.
caf::expected<std::optional<token_owner>>
find_token(kv_backend& kv, std::string_view token_hash);

} // namespace parley::store
