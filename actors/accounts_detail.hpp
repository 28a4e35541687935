#pragma once

// The accounts actor's parts (actors/accounts.cpp: registration, logins,
// lookups and the dispatch; actors/accounts_sessions.cpp: what concerns
// authenticated connections: token authentication, revocation, blocking
// and the read-receipts setting) and what they share. Internal to the
// accounts actor.

#include <algorithm>
#include <optional>
#include <string>

#include "actors/accounts.hpp"
#include "actors/disconnect.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"

namespace parley::accounts_detail {

using self_ptr = accounts_actor::stateful_pointer<accounts_state>;

/// The store writer's fence id for account writes.
inline constexpr uint64_t accounts_writer_id = writer_ids::accounts();

/// Commits `batch` as the accounts writer; a failure starts a new epoch so
/// the writer's fence does not refuse later account writes. A timeout
/// (request_timeout) is a failure whose batch may still land: every account
/// write is a whole record written once (a new account, device or token)
/// or a whole-record overwrite that the writer orders before any later
/// commit of this actor, so a late landing never undoes a newer write; the
/// caller keeps anything it reserved until the writer settles it (see
/// do_register).
template <class OnOk, class OnErr>
void commit(self_ptr self, write_batch batch, OnOk on_ok, OnErr on_err) {
  auto epoch = self->state.epoch;
  self->request(self->state.writer, timeouts::commit, commit_atom::value,
                accounts_writer_id, epoch, std::move(batch))
    .then([on_ok](uint64_t) mutable { on_ok(); },
          [self, epoch, on_err](caf::error& err) mutable {
            auto& cur = self->state.epoch;
            cur = std::max(cur, next_epoch(err, epoch));
            on_err(err);
          });
}

/// The partition of `user`'s records ('a', 'v', 'd', 't').
uint32_t user_partition(self_ptr self, user_id user);

/// The partition of username `name`'s entry ('u').
uint32_t name_partition(self_ptr self, const std::string& name);

/// Starts a step in partition `p`: an error (unavailable, retryable) unless
/// this node owns `p` under the actor's map; `what` names the step.
caf::error own_step(self_ptr self, uint32_t p, const char* what);

/// Whether this node owns partition `p` under the actor's map.
bool owns(self_ptr self, uint32_t p);

/// Hands `step` (marked forwarded) to the accounts actor of the node that
/// owns partition `p` and passes its answer to `on_ok`, or an error to
/// `on_err`: unavailable if no handle for that node is known or it does
/// not answer within `timeout`.
template <class T, class Step, class OnOk, class OnErr>
void ask_owner(self_ptr self, uint32_t p, Step step, caf::timespan timeout,
               OnOk on_ok, OnErr on_err) {
  auto owner = self->state.where.map.owner(p);
  auto i = self->state.peers.find(owner);
  if (i == self->state.peers.end() || !i->second) {
    auto err = own_step(self, p, "forward (no handle for the owner)");
    on_err(err);
    return;
  }
  step.forwarded = true;
  self->request(caf::actor_cast<accounts_actor>(i->second), timeout,
                std::move(step))
    .then([on_ok](T& x) mutable { on_ok(x); },
          [on_err, p, owner](caf::error& err) mutable {
            if (err == caf::sec::request_timeout)
              err = caf::make_error(errc::unavailable,
                                    "partition " + std::to_string(p)
                                      + ": node " + std::to_string(owner)
                                      + " did not answer in time");
            on_err(err);
          });
}

/// Closes `user`'s connections on this node (all of them, or those of
/// `dev` if not 0) with `cause`.
void close_connections(self_ptr self, user_id user, device_id dev,
                       disconnect_cause cause, const std::string& why);

/// Tells the accounts actors of other nodes to close `user`'s connections
/// there (all, or those of `dev` if not 0).
void tell_peers(self_ptr self, user_id user, device_id dev,
                disconnect_cause cause);

/// Tells `user`'s connections on this node the read-receipts setting.
void tell_setting(self_ptr self, user_id user, bool on);

/// Tells `user`'s connections on this node their new send limit.
void tell_limit(self_ptr self, user_id user, send_limit limit);

/// The operator's steps (actors/accounts_admin.cpp): `user show` and
/// `user limit`, each here or at the id's owner.
caf::result<account_view> show_step(self_ptr self, account_show_step s);
caf::result<account_view> limit_step(self_ptr self, account_limit_step s);

/// Remembers `sender` as a connection of `who`'s device.
void remember(self_ptr self, const caf::strong_actor_ptr& sender,
              const principal& who);

/// The setting step in this node's partition; the user's connections here
/// are told at once.
caf::result<bool> do_set_read_receipts(self_ptr self, user_id user, bool on);

/// Checks `token` in this node's partitions.
caf::expected<principal> check_token(self_ptr self, const std::string& token);

/// The partition a token's first step reads (none: not a token).
std::optional<uint32_t> token_partition(self_ptr self,
                                        const std::string& token);

/// Login's second step in this node's partition, answered through `rp`.
void login_by_id(self_ptr self, caf::typed_response_promise<login_result> rp,
                 const account_login_step& step);

/// Block's second step in this node's partition, answered through `rp`;
/// blocking closes the user's connections here.
void block_by_id(self_ptr self, caf::typed_response_promise<bool> rp,
                 const account_block_step& step);

/// Login's refusal of an unknown user, after as long as a real check.
caf::error no_such_login(self_ptr self, const std::string& password);

/// Registration in this node's partition.
caf::result<user_id> do_register(self_ptr self, const std::string& name,
                                 const std::string& password,
                                 bool by_operator = false);

/// The step handlers (actors/accounts_forward.cpp): each runs its step
/// here or hands it to the owner.
caf::result<user_id> name_step(self_ptr self, account_name_step step);
caf::result<user_id> id_step(self_ptr self, account_id_step s);

/// Resolves `names` and checks `ids`, each as a step of its own (here or
/// at its partition's owner, all at once); replies the ids, names first,
/// once all have answered, or the first error (not_found names it).
caf::result<std::vector<uint64_t>>
resolve_all(self_ptr self, const std::vector<std::string>& names,
            const std::vector<uint64_t>& ids);
caf::result<user_id> register_step(self_ptr self, account_register_step s);
caf::result<login_result> login_step(self_ptr self, account_login_step s);
caf::result<bool> block_step(self_ptr self, account_block_step s);
caf::result<bool> setting_step(self_ptr self, account_setting_step s);
caf::result<principal> auth_step(self_ptr self, account_auth_step s);
caf::result<std::vector<device_info>> devices_step(self_ptr self,
                                                   account_devices_step s);
caf::result<bool> revoke_step(self_ptr self, account_revoke_step s);

/// Login and block by name: the name's step, then the id's, each here or
/// at its owner.
caf::result<login_result> login(self_ptr self, const std::string& name,
                                const std::string& password,
                                const std::string& device_name);
caf::result<bool> block(self_ptr self, const std::string& name, bool blocked);

/// Revokes `dev` of `user` and closes its connections.
caf::result<bool> do_revoke(self_ptr self, user_id user, device_id dev);

} // namespace parley::accounts_detail
