// The accounts actor's operator steps (issue 23: `user show`, `user
// limit`): each runs in the user id's partition, here or at its owner
// (as the other steps, actors/accounts_forward.cpp). A changed send limit
// is told to the user's connections on this node and on every peer, so
// open connections apply it at once; new ones get it with their principal.

#include "actors/accounts_detail.hpp"

#include <spdlog/spdlog.h>

#include <caf/send.hpp>

#include "runtime/store/account_store.hpp"

namespace parley::accounts_detail {

namespace {

/// The view of `user` from this node's store (the caller owns the
/// partition).
caf::expected<account_view> read_view(self_ptr self, user_id user) {
  auto& kv = *self->state.kv;
  auto acct = store::find_account_by_id(kv, user);
  if (!acct)
    return acct.error();
  if (!*acct)
    return caf::make_error(errc::not_found,
                           "no such user id: " + std::to_string(user));
  auto limit = store::find_send_limit(kv, user);
  if (!limit)
    return limit.error();
  auto devices = store::list_devices(kv, user);
  if (!devices)
    return devices.error();
  auto seen = store::last_seen(kv, user);
  if (!seen)
    return seen.error();
  account_view out;
  out.user = user;
  out.name = (*acct)->name;
  out.blocked = (*acct)->blocked;
  out.send = *limit;
  for (auto& d : *devices) {
    auto i = seen->find(d.device);
    out.devices.push_back(device_info{d.device, d.name, d.created_at_ms,
                                      d.revoked,
                                      i == seen->end() ? 0 : i->second});
  }
  return out;
}

/// Tells the accounts actors of other nodes `user`'s new send limit.
void tell_peers_limit(self_ptr self, user_id user, send_limit limit) {
  for (auto& peer : self->state.peers)
    caf::anon_send(caf::actor_cast<accounts_actor>(peer.second),
                   caf::update_atom::value, user, limit);
}

} // namespace

caf::result<account_view> show_step(self_ptr self, account_show_step s) {
  auto p = user_partition(self, s.user);
  if (!s.forwarded && !owns(self, p)) {
    auto rp = self->make_response_promise<account_view>();
    ask_owner<account_view>(
      self, p, s, timeouts::ask,
      [rp](account_view& v) mutable { rp.deliver(v); },
      [rp](caf::error& err) mutable { rp.deliver(err); });
    return rp;
  }
  if (auto err = own_step(self, p, "user show"))
    return err;
  auto view = read_view(self, s.user);
  if (!view)
    return std::move(view.error());
  return std::move(*view);
}

caf::result<account_view> limit_step(self_ptr self, account_limit_step s) {
  auto p = user_partition(self, s.user);
  auto user = s.user;
  auto limit = s.send;
  if (!s.forwarded && !owns(self, p)) {
    auto rp = self->make_response_promise<account_view>();
    ask_owner<account_view>(
      self, p, s, timeouts::commit,
      [self, rp, user, limit](account_view& v) mutable {
        tell_limit(self, user, limit); // this node's own connections
        rp.deliver(v);
      },
      [rp](caf::error& err) mutable { rp.deliver(err); });
    return rp;
  }
  if (auto err = own_step(self, p, "user limit"))
    return err;
  auto view = read_view(self, user);
  if (!view)
    return std::move(view.error());
  write_batch batch;
  store::set_send_limit(batch, user, limit);
  auto v = std::move(*view);
  v.send = limit.is_default() ? send_limit{} : limit;
  auto rp = self->make_response_promise<account_view>();
  commit(
    self, std::move(batch),
    [self, rp, user, v]() mutable {
      tell_limit(self, user, v.send);
      tell_peers_limit(self, user, v.send);
      spdlog::warn("send limit of user={} set to {}", user,
                   v.send.is_default()
                     ? std::string{"the default"}
                     : std::to_string(v.send.count) + " per "
                         + std::to_string(v.send.period_ms) + " ms");
      rp.deliver(v);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

} // namespace parley::accounts_detail
