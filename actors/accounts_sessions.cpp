#include "actors/accounts_detail.hpp"

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/disconnect.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"

namespace parley::accounts_detail {

uint32_t user_partition(self_ptr self, user_id user) {
  return partition_of(placement_key::user(user), self->state.limits.partitions);
}

uint32_t name_partition(self_ptr self, const std::string& name) {
  return partition_of(placement_key::username(name),
                      self->state.limits.partitions);
}

bool owns(self_ptr self, uint32_t p) {
  return self->state.where.map.owner(p) == self->state.where.self;
}

void close_connections(self_ptr self, user_id user, device_id dev,
                       disconnect_cause cause, const std::string& why) {
  auto& st = self->state;
  size_t closed = 0;
  for (auto i = st.online.lower_bound({user, dev});
       i != st.online.end() && i->first.first == user
       && (dev == 0 || i->first.second == dev);
       ++i)
    for (auto& addr : i->second)
      if (auto hdl = caf::actor_cast<caf::actor>(addr)) {
        caf::anon_send(hdl, caf::close_atom::value, code_of(cause), why);
        ++closed;
      }
  spdlog::info("connections closed user={} device={} count={} ({})", user,
               dev, closed, why);
}

void tell_peers(self_ptr self, user_id user, device_id dev,
                disconnect_cause cause) {
  for (auto& peer : self->state.peers)
    caf::anon_send(caf::actor_cast<accounts_actor>(peer.second),
                   caf::close_atom::value, user, dev, code_of(cause));
}

void tell_setting(self_ptr self, user_id user, bool on) {
  auto& st = self->state;
  for (auto i = st.online.lower_bound({user, 0});
       i != st.online.end() && i->first.first == user; ++i)
    for (auto& addr : i->second)
      if (auto hdl = caf::actor_cast<caf::actor>(addr))
        caf::anon_send(hdl, caf::update_atom::value, on);
}

void tell_limit(self_ptr self, user_id user, send_limit limit) {
  auto& st = self->state;
  for (auto i = st.online.lower_bound({user, 0});
       i != st.online.end() && i->first.first == user; ++i)
    for (auto& addr : i->second)
      if (auto hdl = caf::actor_cast<caf::actor>(addr))
        caf::anon_send(hdl, caf::update_atom::value, limit);
}

void remember(self_ptr self, const caf::strong_actor_ptr& sender,
              const principal& who) {
  if (!sender)
    return;
  auto& st = self->state;
  auto addr = caf::actor_cast<caf::actor_addr>(sender);
  st.online[{who.user, who.device}].insert(addr);
  st.online_by_addr[addr] = {who.user, who.device};
  self->monitor(caf::actor_cast<caf::actor>(sender));
}

caf::error own_step(self_ptr self, uint32_t p, const char* what) {
  auto& where = self->state.where;
  auto owner = where.map.owner(p);
  if (owner == where.self)
    return {};
  return caf::make_error(errc::unavailable,
                         std::string{what} + ": partition "
                           + std::to_string(p) + " is owned by node "
                           + std::to_string(owner) + " (map epoch "
                           + std::to_string(where.map.map_epoch) + ")");
}

/// Sets whether `user` shares and sees read receipts; the user's open
/// connections are told at once. One step in the user's partition ('a').
caf::result<bool> do_set_read_receipts(self_ptr self, user_id user, bool on) {
  auto& st = self->state;
  if (auto err = own_step(self, user_partition(self, user), "settings"))
    return err;
  auto acct = store::find_account_by_id(*st.kv, user);
  if (!acct)
    return acct.error();
  if (!*acct)
    return caf::make_error(errc::not_found, "no such user");
  auto rec = **acct;
  rec.read_receipts_off = !on;
  write_batch batch;
  store::update_account(batch, rec);
  auto rp = self->make_response_promise<bool>();
  commit(
    self, std::move(batch),
    [self, rp, user, on]() mutable {
      tell_setting(self, user, on);
      spdlog::info("settings changed user={} read_receipts={}", user, on);
      rp.deliver(on);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

std::optional<uint32_t> token_partition(self_ptr self,
                                        const std::string& token) {
  if (token.empty() || token.size() > 256)
    return std::nullopt;
  auto named = credentials::token_user(token);
  if (!named)
    return std::nullopt;
  if (*named != 0)
    return user_partition(self, *named);
  return partition_of_slot(keys::token_slot(credentials::token_hash(token)),
                           self->state.limits.partitions);
}

caf::expected<principal> check_token(self_ptr self, const std::string& token) {
  auto& st = self->state;
  auto refuse = caf::make_error(errc::unauthenticated, "invalid token");
  auto p = token_partition(self, token);
  if (!p)
    return refuse;
  auto named = credentials::token_user(token);
  auto hash = credentials::token_hash(token);
  // A token names its user: one step in the user's partition ('t', 'd',
  // 'a'). One issued before that is found by its hash alone, in the hash's
  // partition first.
  if (auto err = own_step(self, *p, *named == 0 ? "auth (old token)" : "auth"))
    return err;
  auto owner = *named != 0 ? store::find_token(*st.kv, *named, hash)
                           : store::find_legacy_token(*st.kv, hash);
  if (!owner)
    return owner.error();
  if (!*owner)
    return refuse;
  principal who;
  who.user = (*owner)->user;
  who.device = (*owner)->device;
  if (*named == 0)
    if (auto err = own_step(self, user_partition(self, who.user), "auth"))
      return err;
  auto dev = store::find_device(*st.kv, who.user, who.device);
  if (!dev)
    return dev.error();
  if (!*dev || (*dev)->revoked)
    return refuse;
  auto acct = store::find_account_by_id(*st.kv, who.user);
  if (!acct)
    return acct.error();
  if (*acct && (*acct)->blocked)
    return caf::make_error(errc::unauthenticated, "account blocked");
  if (*acct)
    who.read_receipts = !(*acct)->read_receipts_off;
  auto limit = store::find_send_limit(*st.kv, who.user);
  if (!limit)
    return limit.error();
  who.send = *limit;
  return who;
}

void block_by_id(self_ptr self, caf::typed_response_promise<bool> rp,
                 const account_block_step& step) {
  auto& st = self->state;
  // Block's second step, the id's partition: the account record ('a').
  if (auto err = own_step(self, user_partition(self, step.user),
                          "block (user)")) {
    rp.deliver(err);
    return;
  }
  auto acct = store::find_account_by_id(*st.kv, step.user);
  if (!acct) {
    rp.deliver(acct.error());
    return;
  }
  if (!*acct) {
    rp.deliver(caf::make_error(errc::not_found, "no such user"));
    return;
  }
  auto rec = **acct;
  auto blocked = step.blocked;
  rec.blocked = blocked;
  write_batch batch;
  store::update_account(batch, rec);
  auto user = rec.user;
  commit(
    self, std::move(batch),
    [self, rp, user, blocked]() mutable {
      if (blocked) {
        close_connections(self, user, 0, disconnect_cause::account_blocked,
                          "account blocked");
        tell_peers(self, user, 0, disconnect_cause::account_blocked);
      }
      spdlog::warn("account {} user={}", blocked ? "blocked" : "unblocked",
                   user);
      rp.deliver(blocked);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
}

caf::result<bool> do_revoke(self_ptr self, user_id user, device_id dev) {
  auto& st = self->state;
  if (auto err = own_step(self, user_partition(self, user), "revoke"))
    return err;
  auto rec = store::find_device(*st.kv, user, dev);
  if (!rec)
    return rec.error();
  if (!*rec || (*rec)->revoked)
    return caf::make_error(errc::not_found, "no such active device");
  // A token issued before tokens named their user has its record in
  // another partition: it stops working with the device record (auth
  // checks it), and its record is erased by a second batch.
  // A second step, in the old token's partition, if this node owns it.
  auto legacy_p = partition_of_slot(keys::token_slot((*rec)->token_hash),
                                    st.limits.partitions);
  auto legacy = own_step(self, legacy_p, "revoke (old token)")
                  ? caf::expected<std::optional<store::token_owner>>{
                    std::optional<store::token_owner>{}}
                  : store::find_legacy_token(*st.kv, (*rec)->token_hash);
  bool drop_legacy = legacy && *legacy && (*legacy)->user == user
                     && (*legacy)->device == dev;
  auto legacy_hash = (*rec)->token_hash;
  write_batch batch;
  store::revoke_device(batch, user, **rec);
  auto rp = self->make_response_promise<bool>();
  commit(
    self, std::move(batch),
    [self, rp, user, dev, drop_legacy, legacy_hash]() mutable {
      if (drop_legacy) {
        write_batch drop;
        store::drop_legacy_token(drop, legacy_hash);
        commit(
          self, std::move(drop), [] {},
          [user, dev](caf::error& err) {
            spdlog::warn("old token record of user={} device={} not erased "
                         "(the device is revoked all the same): {}",
                         user, dev, to_string(err));
          });
      }
      close_connections(self, user, dev, disconnect_cause::device_revoked,
                        "device revoked");
      tell_peers(self, user, dev, disconnect_cause::device_revoked);
      spdlog::info("device revoked user={} device={}", user, dev);
      rp.deliver(true);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

} // namespace parley::accounts_detail
