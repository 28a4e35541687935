#pragma once

// accounts: users, their devices and bearer tokens. Owns registration,
// password checks (Argon2id: slow on purpose, so node.cpp runs this actor
// detached), device logins, token authentication and revocation, and which
// connections are authenticated as which device, so a revoked device's
// connections are closed at once. Writes go through the store writer;
// secrets are stored hashed only.
//
// Placement: every operation is a sequence of steps, each of which reads
// and writes one partition (runtime/store/account_store.hpp says which
// record lives where; writes are one single-partition batch each), and
// each step runs only if this node owns its partition under the actor's
// partition map; a step of another node's partition is handed to that
// node's accounts actor (`peers`; actors/accounts_forward.cpp), or
// refused (errc::unavailable, retryable). In the username's
// partition (placement_key::username): register (the new id is in it: one
// batch 'u' + 'a' + 'v' + counter), the first step of login and block
// (name -> id), resolve of names. In the user id's (placement_key::user):
// login's second step (password against 'a', blocked, device and token),
// block's second step and the read-receipts setting ('a'), token auth
// ('t', 'd', 'a'), devices, revoke, resolve of ids. A token issued before
// tokens named their user is found in its hash's partition first
// (keys::token_slot). For a new account the two partitions are one.
//
// The map: a newer partition map (caf::put_atom) makes the actor forget
// what it cached of partitions it no longer owns (the last user id handed
// out, users' last device ids); a partition it gets back is read afresh.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/store_writer.hpp"
#include "runtime/core/account_steps.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/core/type_ids.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley {

using accounts_actor = caf::typed_actor<
  /// Creates an account (username, password); replies its user id.
  /// Errors: bad_request (invalid name or password), conflict (taken),
  /// forbidden (registration closed).
  caf::replies_to<register_atom, std::string, std::string>::with<user_id>,
  /// Logs a device in (username, password, device name). Errors:
  /// unauthenticated (wrong name or password), forbidden (device limit).
  caf::replies_to<login_atom, std::string, std::string,
                  std::string>::with<login_result>,
  /// Authenticates a bearer token; the sender is then closed (it receives
  /// `caf::close_atom` with disconnect_cause::device_revoked, or
  /// account_blocked) when the device is revoked or the account blocked.
  /// Error: unauthenticated.
  caf::replies_to<auth_atom, std::string>::with<principal>,
  /// Looks a username up. Error: not_found.
  caf::replies_to<caf::resolve_atom, std::string>::with<user_id>,
  /// Resolves usernames and checks user ids, each at its partition's
  /// owner (account_name_step, account_id_step); replies them all (names
  /// first, in order). Error not_found names an unknown one.
  caf::replies_to<caf::resolve_atom, std::vector<std::string>,
                  std::vector<uint64_t>>::with<std::vector<uint64_t>>,
  /// Lists a user's devices.
  caf::replies_to<devices_atom, user_id>::with<std::vector<device_info>>,
  /// Revokes one of the user's devices. Error: not_found.
  caf::replies_to<revoke_atom, user_id, device_id>::with<bool>,
  /// Sets whether the user shares and sees read receipts (1:1); replies
  /// the setting. The user's authenticated senders get
  /// (caf::update_atom, bool). Error: not_found.
  caf::replies_to<caf::put_atom, user_id, bool>::with<bool>,
  /// An operator blocks (true) or unblocks a user by name: a blocked user
  /// cannot log in or authenticate, and their open connections close at
  /// once. Replies the new state. Error: not_found.
  caf::replies_to<block_atom, std::string, bool>::with<bool>,
  /// Replaces the partition map with `next` (same partition count, higher
  /// map_epoch); replies the new epoch. Cached counters and device ids of
  /// partitions that left this node are dropped. Errors: conflict (an
  /// epoch not above the current one), bad_request.
  caf::replies_to<caf::put_atom, partition_map>::with<uint64_t>,
  /// Sets (or, with a null handle, drops) the accounts actor of node `n`
  /// that steps of its partitions are handed to (none: such a step is
  /// refused, unavailable); replies how many peers are known. A plain
  /// value, so that it needs no type of its own.
  caf::replies_to<caf::put_atom, node_id, caf::actor>::with<uint64_t>,
  /// One step of an operation (runtime/core/account_steps.hpp): run here if
  /// this node owns its partition, else handed to the owner's accounts
  /// actor unless it was itself forwarded (errc::unavailable: no peer for
  /// the owner, a forwarded step of a partition not owned here, or no
  /// answer within its timeout). The operations above run as these.
  caf::replies_to<account_name_step>::with<user_id>,
  caf::replies_to<account_register_step>::with<user_id>,
  caf::replies_to<account_login_step>::with<login_result>,
  caf::replies_to<account_block_step>::with<bool>,
  caf::replies_to<account_setting_step>::with<bool>,
  caf::replies_to<account_auth_step>::with<principal>,
  caf::replies_to<account_devices_step>::with<std::vector<device_info>>,
  caf::replies_to<account_revoke_step>::with<bool>,
  caf::replies_to<account_id_step>::with<user_id>,
  /// An operator's view of an account, and its own send limit (stored
  /// with the account, so every node's connections apply it; the user's
  /// connections here and on every peer get (caf::update_atom,
  /// send_limit) at once). Error: not_found.
  caf::replies_to<account_show_step>::with<account_view>,
  caf::replies_to<account_limit_step>::with<account_view>,
  /// From another node's accounts actor that changed `user`'s send limit:
  /// tells this node's connections of the user.
  caf::reacts_to<caf::update_atom, user_id, send_limit>,
  /// From another node's accounts actor that blocked `user` (device 0) or
  /// revoked one of its devices: closes this node's connections of them
  /// (disconnect cause `cause`; actors/disconnect.hpp).
  caf::reacts_to<caf::close_atom, user_id, device_id, uint32_t>>;

/// Tunables of the accounts actor (config: parley.*).
struct accounts_limits {
  /// The deployment's partition count (kept in the store's meta): user ids
  /// are allocated per partition (runtime/store/account_store.hpp).
  uint32_t partitions = default_partitions;
  /// This node (the partition map says which partitions it owns; until a
  /// map arrives, all of them).
  node_id self = single_node_id;
  /// The map to start with (a cluster's); empty: `self` owns every
  /// partition, at epoch 1.
  partition_map map;
  bool registration_open = true;
  uint64_t max_devices = 8;
  std::string hash_strength = "interactive"; ///< or "min" (tests only)
};

struct accounts_state {
  std::shared_ptr<kv_backend> kv;
  store_writer_actor writer;
  accounts_limits limits;
  std::function<int64_t()> clock;
  uint64_t epoch = 1;
  placement where; ///< this node and the newest partition map
  /// Accounts actors of other nodes (caf::actor handles of accounts_actor).
  std::map<node_id, caf::actor> peers;
  std::map<uint32_t, user_id> last_user; ///< per partition, loaded lazily
  std::set<std::string> pending_names;            ///< commits under way
  std::map<user_id, device_id> last_device;       ///< loaded lazily
  std::map<std::pair<user_id, device_id>, std::set<caf::actor_addr>> online;
  std::map<caf::actor_addr, std::pair<user_id, device_id>> online_by_addr;

  static inline const char* name = "accounts";
};

accounts_actor::behavior_type
accounts_impl(accounts_actor::stateful_pointer<accounts_state> self,
              std::shared_ptr<kv_backend> kv, store_writer_actor writer,
              accounts_limits limits, std::function<int64_t()> clock);

/// The stable id of the direct conversation between two users (order does
/// not matter): the top bit set, then the two user ids. Needs user ids
/// below 2^31; group ids stay below 2^63.
conversation_id direct_conversation_id(user_id a, user_id b);

} // namespace parley
