#pragma once

// Account tables: accounts ('a' id), usernames ('u' name -> id), user
// names ('v' id -> name), the user id counters ('n'),
// devices ('d'), bearer tokens ('t') and devices' delivered cursors ('r').
// Turns these records (protobuf, schema/parley/v1/store.proto) into Parley
// structs and back; the only code that knows both their key layouts
// (keys.hpp) and their record formats. Secrets arrive hashed
// (runtime/accounts/credentials.hpp): nothing here sees a password or token.
//
// Placement (runtime/core/placement.hpp): every write below touches one
// partition. 'u' belongs to the username's partition; 'a', 'v', 'd', 't'
// and 'r' to the user id's; a partition's user id counter to the
// partition. A new user gets an id of its username's partition
// (next_user_id), so its 'u', 'a', 'v' and counter records share one
// partition; users registered before ids were allocated per partition keep
// theirs ('u' may then sit in another partition than the rest). Since key
// layout 3 'u' holds only the user id (the name's index) and everything an
// account operation checks after that ('a': password hash, blocked, read
// receipts) is in the id's partition, so each operation is a step in the
// username's partition (name -> id) and steps in the id's.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/expected.hpp>

#include "runtime/core/messages.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::store {

/// An account: 'a' user -> AccountRecord (authoritative), 'u' name -> its
/// user id, and 'v' user -> name.
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

/// Whose bearer token a token hash is: 't' user token_hash -> TokenRecord
/// (or 't' token_hash for a token from before tokens named their user).
struct token_owner {
  user_id user = 0;
  device_id device = 0;
};

// -- writes: append to a batch -----------------------------------------------

/// Adds a new account: its record under its id ('a'), its id under its name
/// ('u'), its name under its id ('v'), and the user id counter of the username's partition set to its id (ids
/// are handed out in order per partition, so the newest account of a
/// partition holds its highest). Precondition: `acct.user` comes from
/// next_user_id for that partition (then the batch touches one partition).
void add_account(write_batch& batch, const account& acct,
                 uint32_t partitions);

/// Replaces the record of an existing account (`acct.user`: 'a', in the
/// user's partition); its name, its 'u' entry and the counter stay.
void update_account(write_batch& batch, const account& acct);

/// Adds a new device of `user` (`dev.device`) and its token record (the
/// token names `user`: keys::token(user, hash)), both in the user's
/// partition.
void add_device(write_batch& batch, user_id user, const device_record& dev);

/// Marks `dev` of `user` revoked (the record stays, so the id is never
/// handed out again) and deletes its token record: the token stops working.
/// A token issued before tokens named their user keeps a record elsewhere
/// (legacy_token): it stops working all the same, since authentication
/// checks the device record; drop_legacy_token erases it.
void revoke_device(write_batch& batch, user_id user, device_record dev);

/// Erases the record of a token issued before tokens named their user.
void drop_legacy_token(write_batch& batch, std::string_view token_hash);

/// Sets `user`'s own send limit ('l', the user's partition); a default
/// limit (count 0) erases it.
void set_send_limit(write_batch& batch, user_id user, const send_limit& l);

/// Records that device `dev` of `user` was seen at `ms` ('w', max-merged:
/// a late write never moves it back).
void add_last_seen(write_batch& batch, user_id user, device_id dev,
                   int64_t ms);

/// Adds a device's delivered cursor of `conv` (max-merged: never moves
/// backwards).
void add_delivered_cursor(write_batch& batch, user_id user, device_id dev,
                          conversation_id conv, sequence seq);

// -- reads -------------------------------------------------------------------

// -- user ids ----------------------------------------------------------------

/// The most ids next_user_id tries: 64 * partitions (a partition's ids are
/// about every partitions-th number; missing one in 64 * P tries has
/// probability about e^-64).
uint64_t max_id_tries(uint32_t partitions);

/// The smallest id above `after` placed in partition `p` of `partitions`
/// (partition_of(placement_key::user(id)) == p). Error: errc::forbidden
/// if none is found within max_id_tries (never seen) or below 2^31
/// (direct_conversation_id needs user ids below 2^31): registration then
/// refuses, as when it is closed.
caf::expected<user_id> next_user_id(user_id after, uint32_t p,
                                    uint32_t partitions);

/// The key of partition `p`'s user id counter: 'n' "user_ids" in the
/// partition's first slot (DO NOT CHANGE: on disk).
std::string user_counter_key(uint32_t p, uint32_t partitions);

/// The last user id partition `p` handed out. A partition without its own
/// counter answers the counter from before ids were allocated per
/// partition (legacy_last_user_id: every id it handed out is at most that),
/// so new ids never collide with old ones; 0 if neither exists.
caf::expected<user_id> last_user_id(kv_backend& kv, uint32_t p,
                                    uint32_t partitions);

/// The last user id partition `p` handed out, from its own counter only
/// (0 if it has none): one read in the partition. Correct once
/// settle_user_counters ran (every start does, before actors run): then a
/// partition without its own counter has no legacy floor either.
caf::expected<user_id> own_last_user_id(kv_backend& kv, uint32_t p,
                                        uint32_t partitions);

/// The single user id counter of stores from before ids were allocated
/// per partition ('n' "user"; 0 if none). Read only.
caf::expected<user_id> legacy_last_user_id(kv_backend& kv);

/// Gives every partition without its own counter the legacy counter's
/// value, so each partition carries its floor wherever it moves. One synced
/// single-partition write per partition; does nothing without a legacy
/// counter, and nothing twice. For bootstrap code, before actors run.
caf::error settle_user_counters(kv_backend& kv, uint32_t partitions);

// -- accounts, devices, tokens ------------------------------------------------

/// True if a username entry is kept under `name` (it is not parsed).
caf::expected<bool> account_exists(kv_backend& kv, std::string_view name);

/// The user id of `name` ('u': the username's partition only); nullopt if
/// none. Error: storage_corrupt.
caf::expected<std::optional<user_id>> find_user_id(kv_backend& kv,
                                                   std::string_view name);

/// The account named `name`: find_user_id, then find_account_by_id. Reads
/// two partitions when they differ: for tools and tests (the accounts
/// actor takes the two steps itself). nullopt if none. Error:
/// storage_corrupt.
caf::expected<std::optional<account>> find_account(kv_backend& kv,
                                                   std::string_view name);

/// The name of `user`; nullopt if no such user.
caf::expected<std::optional<std::string>> user_name(kv_backend& kv,
                                                    user_id user);

/// The account of `user` ('a' and 'v': the user's partition only); nullopt
/// if none. Error: storage_corrupt.
caf::expected<std::optional<account>> find_account_by_id(kv_backend& kv,
                                                         user_id user);

/// The key layout 3 form of a layout-2 username entry (the whole account
/// record under 'u' `name`): the slim 'u' value (user id only) and the
/// 'a' key and value (runtime/store/layout_migration.hpp). Error:
/// storage_corrupt (not an AccountRecord, or user id 0).
struct account_v3 {
  std::string name_value;  ///< the new 'u' value
  std::string record_key;  ///< 'a' user
  std::string record_value;
  bool slim = false;       ///< `value` was already the slim form
};
caf::expected<account_v3> account_to_v3(std::string_view value);

/// The highest device id `user` ever had (revoked ones too; 0: none).
caf::expected<device_id> last_device_id(kv_backend& kv, user_id user);

/// Device `dev` of `user`; nullopt if none. Error: storage_corrupt.
caf::expected<std::optional<device_record>>
find_device(kv_backend& kv, user_id user, device_id dev);

/// Every device of `user` (revoked ones too) in device id order. A record
/// that does not parse is left out.
caf::expected<std::vector<device_record>> list_devices(kv_backend& kv,
                                                       user_id user);

/// `user`'s own send limit (the default, count 0, if none is set).
caf::expected<send_limit> find_send_limit(kv_backend& kv, user_id user);

/// When each device of `user` was last seen (epoch ms), by device id;
/// devices never seen since it was recorded are absent.
caf::expected<std::map<device_id, int64_t>> last_seen(kv_backend& kv,
                                                      user_id user);

/// The device of `user` whose token hashes to `token_hash` (a token that
/// names `user`); nullopt if none (never issued, revoked, or another
/// user's). Error: storage_corrupt.
caf::expected<std::optional<token_owner>>
find_token(kv_backend& kv, user_id user, std::string_view token_hash);

/// The device whose token, issued before tokens named their user, hashes
/// to `token_hash`; nullopt if none. Error: storage_corrupt.
caf::expected<std::optional<token_owner>>
find_legacy_token(kv_backend& kv, std::string_view token_hash);

} // namespace parley::store
