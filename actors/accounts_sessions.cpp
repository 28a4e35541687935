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
      auto& st = self->state;
      for (auto i = st.online.lower_bound({user, 0});
           i != st.online.end() && i->first.first == user; ++i)
        for (auto& addr : i->second)
          if (auto hdl = caf::actor_cast<caf::actor>(addr))
            caf::anon_send(hdl, caf::update_atom::value, on);
      spdlog::info("settings changed user={} read_receipts={}", user, on);
      rp.deliver(on);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

caf::result<principal> do_auth(self_ptr self, const std::string& token) {
  auto& st = self->state;
  auto refuse = caf::make_error(errc::unauthenticated, "invalid token");
  if (token.empty() || token.size() > 256)
    return refuse;
  auto named = credentials::token_user(token);
  if (!named)
    return refuse;
  auto hash = credentials::token_hash(token);
  // A token names its user: one step in the user's partition ('t', 'd',
  // 'a'). One issued before that is found by its hash alone, in the hash's
  // partition first.
  if (*named == 0) {
    auto p = partition_of_slot(keys::token_slot(hash), st.limits.partitions);
    if (auto err = own_step(self, p, "auth (old token)"))
      return err;
  } else if (auto err = own_step(self, user_partition(self, *named), "auth")) {
    return err;
  }
  auto owner = *named != 0 ? store::find_token(*st.kv, *named, hash)
                           : store::find_legacy_token(*st.kv, hash);
  if (!owner)
    return owner.error();
  if (!*owner)
    return refuse;
  principal who{(*owner)->user, (*owner)->device};
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
  if (auto sender = self->current_sender()) {
    auto addr = caf::actor_cast<caf::actor_addr>(sender);
    st.online[{who.user, who.device}].insert(addr);
    st.online_by_addr[addr] = {who.user, who.device};
    self->monitor(caf::actor_cast<caf::actor>(sender));
  }
  return who;
}

caf::result<bool> do_block(self_ptr self, const std::string& name,
                           bool blocked) {
  auto& st = self->state;
  // Step 1, the username's partition: name -> id.
  if (auto err = own_step(self, name_partition(self, name), "block (name)"))
    return err;
  auto id = store::find_user_id(*st.kv, name);
  if (!id)
    return id.error();
  if (!*id)
    return caf::make_error(errc::not_found, "no such user");
  // Step 2, the id's partition: the account record ('a').
  if (auto err = own_step(self, user_partition(self, **id), "block (user)"))
    return err;
  auto acct = store::find_account_by_id(*st.kv, **id);
  if (!acct)
    return acct.error();
  if (!*acct)
    return caf::make_error(errc::not_found, "no such user");
  auto rec = **acct;
  rec.blocked = blocked;
  write_batch batch;
  store::update_account(batch, rec);
  auto user = rec.user;
  auto rp = self->make_response_promise<bool>();
  commit(
    self, std::move(batch),
    [self, rp, user, blocked]() mutable {
      auto& st = self->state;
      size_t closed = 0;
      if (blocked)
        for (auto i = st.online.lower_bound({user, 0});
             i != st.online.end() && i->first.first == user; ++i)
          for (auto& addr : i->second)
            if (auto hdl = caf::actor_cast<caf::actor>(addr)) {
              caf::anon_send(hdl, caf::close_atom::value,
                             code_of(disconnect_cause::account_blocked),
                             std::string{"account blocked"});
              ++closed;
            }
      spdlog::warn("account {} user={} connections_closed={}",
                   blocked ? "blocked" : "unblocked", user, closed);
      rp.deliver(blocked);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
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
      auto& st = self->state;
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
      auto i = st.online.find({user, dev});
      if (i != st.online.end()) {
        for (auto& addr : i->second)
          if (auto hdl = caf::actor_cast<caf::actor>(addr))
            caf::anon_send(hdl, caf::close_atom::value,
                           code_of(disconnect_cause::device_revoked),
                           std::string{"device revoked"});
      }
      spdlog::info("device revoked user={} device={}", user, dev);
      rp.deliver(true);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

} // namespace parley::accounts_detail
