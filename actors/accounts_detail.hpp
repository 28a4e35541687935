#pragma once

// The accounts actor's parts (actors/accounts.cpp: registration, logins,
// lookups and the dispatch; actors/accounts_sessions.cpp: what concerns
// authenticated connections: token authentication, revocation, blocking
// and the read-receipts setting) and what they share. Internal to the
// accounts actor.

#include <algorithm>
#include <string>

#include "actors/accounts.hpp"
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

/// Sets whether `user` shares and sees read receipts; the user's open
/// connections are told at once.
caf::result<bool> do_set_read_receipts(self_ptr self, user_id user, bool on);

/// Authenticates `token` and remembers the sender as that device's
/// connection.
caf::result<principal> do_auth(self_ptr self, const std::string& token);

/// Blocks or unblocks `name`; blocking closes the user's connections.
caf::result<bool> do_block(self_ptr self, const std::string& name,
                           bool blocked);

/// Revokes `dev` of `user` and closes its connections.
caf::result<bool> do_revoke(self_ptr self, user_id user, device_id dev);

} // namespace parley::accounts_detail
