// The accounts actor's steps, each run here or handed to the accounts actor
// of the node that owns its partition (runtime/core/account_steps.hpp).
// A step that came forwarded is run here only: if this node does not own
// its partition after all (the two nodes' maps disagree), it is refused
// (errc::unavailable) rather than handed back. The node that got the
// operation keeps its connections: it remembers an authenticated sender
// and tells or closes its own connections when a forwarded setting, block
// or revocation succeeds (the owner does the same for its own).

#include "actors/accounts_detail.hpp"

#include <functional>

#include "runtime/store/account_store.hpp"

namespace parley::accounts_detail {

namespace {

/// Whether `step` runs here: this node owns `p`, or the step was
/// forwarded (then it is run here, and refused there if `p` is not owned).
template <class Step>
bool here(self_ptr self, uint32_t p, const Step& step) {
  return step.forwarded || owns(self, p);
}

/// Hands `step` to the owner of `p` and answers with its answer.
template <class T, class Step>
caf::result<T> forward(self_ptr self, uint32_t p, Step step,
                       caf::timespan timeout) {
  auto rp = self->make_response_promise<T>();
  ask_owner<T>(
    self, p, std::move(step), timeout, [rp](T& x) mutable { rp.deliver(x); },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

caf::expected<user_id> find_name(self_ptr self, const std::string& name) {
  if (auto err = own_step(self, name_partition(self, name), "name"))
    return err;
  auto id = store::find_user_id(*self->state.kv, name);
  if (!id)
    return id.error();
  if (!*id)
    return caf::make_error(errc::not_found, "no such user: " + name);
  return **id;
}

/// Runs `then(id)` with `name`'s id, found here or at the name's owner;
/// errors go to `rp`.
template <class Promise, class Then>
void with_id(self_ptr self, Promise rp, const std::string& name, Then then,
             std::function<caf::error(caf::error)> map_err) {
  auto p = name_partition(self, name);
  if (owns(self, p)) {
    auto id = find_name(self, name);
    if (id)
      then(*id);
    else
      rp.deliver(map_err(id.error()));
    return;
  }
  ask_owner<user_id>(
    self, p, account_name_step{name}, timeouts::ask,
    [then](user_id& id) mutable { then(id); },
    [rp, map_err](caf::error& err) mutable { rp.deliver(map_err(err)); });
}

/// Login's second step here, or at the id's owner.
void login_at_owner(self_ptr self, caf::typed_response_promise<login_result> rp,
                    account_login_step s) {
  auto p = user_partition(self, s.user);
  if (here(self, p, s)) {
    login_by_id(self, rp, s);
    return;
  }
  ask_owner<login_result>(
    self, p, std::move(s), timeouts::commit,
    [rp](login_result& r) mutable { rp.deliver(r); },
    [rp](caf::error& err) mutable { rp.deliver(err); });
}

/// Block's second step here, or at the id's owner (then this node's
/// connections of the user are closed as well).
void block_at_owner(self_ptr self, caf::typed_response_promise<bool> rp,
                    account_block_step s) {
  auto p = user_partition(self, s.user);
  if (here(self, p, s)) {
    block_by_id(self, rp, s);
    return;
  }
  auto user = s.user;
  ask_owner<bool>(
    self, p, s, timeouts::commit,
    [self, rp, user](bool& blocked) mutable {
      if (blocked)
        close_connections(self, user, 0, disconnect_cause::account_blocked,
                          "account blocked");
      rp.deliver(blocked);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
}

} // namespace

caf::result<user_id> name_step(self_ptr self, account_name_step step) {
  auto p = name_partition(self, step.name);
  if (!here(self, p, step))
    return forward<user_id>(self, p, std::move(step), timeouts::ask);
  auto id = find_name(self, step.name);
  if (!id)
    return std::move(id.error());
  return *id;
}

caf::result<user_id> id_step(self_ptr self, account_id_step s) {
  auto p = user_partition(self, s.user);
  if (!here(self, p, s))
    return forward<user_id>(self, p, s, timeouts::ask);
  if (auto err = own_step(self, p, "resolve"))
    return err;
  auto name = store::user_name(*self->state.kv, s.user);
  if (!name)
    return std::move(name.error());
  if (!*name)
    return caf::make_error(errc::not_found,
                           "no such user id: " + std::to_string(s.user));
  return s.user;
}

caf::result<std::vector<uint64_t>>
resolve_all(self_ptr self, const std::vector<std::string>& names,
            const std::vector<uint64_t>& ids) {
  struct gathering {
    caf::typed_response_promise<std::vector<uint64_t>> rp;
    std::vector<uint64_t> out;
    size_t missing = 0;
    bool failed = false;
  };
  if (names.empty() && ids.empty())
    return std::vector<uint64_t>{}; // before a promise takes the answer
  auto g = std::make_shared<gathering>();
  g->rp = self->make_response_promise<std::vector<uint64_t>>();
  g->out.resize(names.size() + ids.size());
  g->missing = g->out.size();
  auto me = caf::actor_cast<accounts_actor>(self);
  // Each through this actor's own step handler, which runs it here or
  // forwards it; the outer wait outlasts the forward's own timeout.
  auto ask = [self, me, g](size_t i, auto step) {
    self->request(me, timeouts::commit, std::move(step))
      .then(
        [g, i](user_id id) {
          g->out[i] = id;
          if (--g->missing == 0 && !g->failed)
            g->rp.deliver(std::move(g->out));
        },
        [g, i](caf::error& err) {
          if (std::exchange(g->failed, true))
            return;
          g->rp.deliver(std::move(err));
        });
  };
  for (size_t i = 0; i < names.size(); ++i)
    ask(i, account_name_step{names[i]});
  for (size_t i = 0; i < ids.size(); ++i)
    ask(names.size() + i, account_id_step{ids[i]});
  return g->rp;
}

caf::result<user_id> register_step(self_ptr self, account_register_step s) {
  auto p = name_partition(self, s.name);
  if (!here(self, p, s))
    return forward<user_id>(self, p, std::move(s), timeouts::commit);
  return do_register(self, s.name, s.password, s.by_operator);
}

caf::result<login_result> login_step(self_ptr self, account_login_step s) {
  auto rp = self->make_response_promise<login_result>();
  login_at_owner(self, rp, std::move(s));
  return rp;
}

caf::result<bool> block_step(self_ptr self, account_block_step s) {
  auto rp = self->make_response_promise<bool>();
  block_at_owner(self, rp, s);
  return rp;
}

caf::result<bool> setting_step(self_ptr self, account_setting_step s) {
  auto p = user_partition(self, s.user);
  if (here(self, p, s))
    return do_set_read_receipts(self, s.user, s.read_receipts);
  auto rp = self->make_response_promise<bool>();
  auto user = s.user;
  ask_owner<bool>(
    self, p, s, timeouts::commit,
    [self, rp, user](bool& on) mutable {
      tell_setting(self, user, on);
      rp.deliver(on);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

caf::result<principal> auth_step(self_ptr self, account_auth_step s) {
  auto p = token_partition(self, s.token);
  if (!p)
    return caf::make_error(errc::unauthenticated, "invalid token");
  auto sender = self->current_sender();
  if (here(self, *p, s)) {
    auto who = check_token(self, s.token);
    if (!who)
      return std::move(who.error());
    if (!s.forwarded) // a peer asking is no connection
      remember(self, sender, *who);
    return *who;
  }
  auto rp = self->make_response_promise<principal>();
  ask_owner<principal>(
    self, *p, std::move(s), timeouts::ask,
    [self, rp, sender](principal& who) mutable {
      remember(self, sender, who);
      rp.deliver(who);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

caf::result<std::vector<device_info>>
devices_step(self_ptr self, account_devices_step s) {
  auto p = user_partition(self, s.user);
  if (!here(self, p, s))
    return forward<std::vector<device_info>>(self, p, s, timeouts::ask);
  if (auto err = own_step(self, p, "devices"))
    return err;
  auto devices = store::list_devices(*self->state.kv, s.user);
  if (!devices)
    return std::move(devices.error());
  auto seen = store::last_seen(*self->state.kv, s.user);
  if (!seen)
    return std::move(seen.error());
  std::vector<device_info> out;
  for (auto& d : *devices) {
    auto i = seen->find(d.device);
    out.push_back(device_info{d.device, d.name, d.created_at_ms, d.revoked,
                              i == seen->end() ? 0 : i->second});
  }
  return out;
}

caf::result<bool> revoke_step(self_ptr self, account_revoke_step s) {
  auto p = user_partition(self, s.user);
  if (here(self, p, s))
    return do_revoke(self, s.user, s.device);
  auto rp = self->make_response_promise<bool>();
  auto user = s.user;
  auto dev = s.device;
  ask_owner<bool>(
    self, p, s, timeouts::commit,
    [self, rp, user, dev](bool& done) mutable {
      close_connections(self, user, dev, disconnect_cause::device_revoked,
                        "device revoked");
      rp.deliver(done);
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

caf::result<login_result> login(self_ptr self, const std::string& name,
                                const std::string& password,
                                const std::string& device_name) {
  if (device_name.empty() || device_name.size() > 64)
    return caf::make_error(errc::bad_request, "device name: 1-64 bytes");
  auto rp = self->make_response_promise<login_result>();
  // Step 1, the name's partition: name -> id (an unknown name is refused
  // as a wrong password is); step 2, the id's: the rest.
  account_login_step next{0, password, device_name};
  with_id(
    self, rp, name,
    [self, rp, next](user_id id) mutable {
      next.user = id;
      login_at_owner(self, rp, std::move(next));
    },
    [self, password](caf::error err) {
      return is(err, errc::not_found) ? no_such_login(self, password) : err;
    });
  return rp;
}

caf::result<bool> block(self_ptr self, const std::string& name,
                        bool blocked) {
  auto rp = self->make_response_promise<bool>();
  with_id(
    self, rp, name,
    [self, rp, blocked](user_id id) {
      block_at_owner(self, rp, account_block_step{id, blocked});
    },
    [](caf::error err) { return err; });
  return rp;
}

} // namespace parley::accounts_detail
