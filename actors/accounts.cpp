#include "actors/accounts.hpp"
#include "actors/accounts_detail.hpp"

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/store/account_store.hpp"

namespace parley {

namespace {

using namespace accounts_detail;

bool valid_username(const std::string& name) {
  if (name.size() < 3 || name.size() > 32)
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
          || c == '.' || c == '-'))
      return false;
  return true;
}

/// Frees `name` (reserved by a registration whose commit timed out) once
/// the writer answers a flush: it serves the flush after that commit (its
/// mailbox is FIFO), so from then on the disk says whether the name is
/// taken. Until then a second registration of the name gets CONFLICT rather
/// than writing a second account over the first.
void release_when_settled(self_ptr self, std::string name) {
  self->request(self->state.writer, timeouts::commit, caf::flush_atom::value)
    .then([self, name](uint64_t) { self->state.pending_names.erase(name); },
          [self, name](caf::error& err) {
            if (err == caf::sec::request_timeout)
              release_when_settled(self, name); // still unknown
            else
              self->state.pending_names.erase(name); // written or gone
          });
}

caf::expected<device_id> last_device_of(self_ptr self, user_id user) {
  auto& st = self->state;
  if (auto i = st.last_device.find(user); i != st.last_device.end())
    return i->second;
  auto dev = store::last_device_id(*st.kv, user);
  if (!dev)
    return dev.error();
  st.last_device[user] = *dev;
  return *dev;
}

/// The next user id of partition `p`: ids are allocated per partition, so
/// a user's own records share its username's partition.
caf::expected<user_id> next_user_of(self_ptr self, uint32_t p) {
  auto& st = self->state;
  auto i = st.last_user.find(p);
  if (i == st.last_user.end()) {
    // One read in p: the node settled every partition's counter at start
    // (store::settle_user_counters), legacy floor included.
    auto last = store::own_last_user_id(*st.kv, p, st.limits.partitions);
    if (!last)
      return last.error();
    i = st.last_user.emplace(p, *last).first;
  }
  auto id = store::next_user_id(i->second, p, st.limits.partitions);
  if (id)
    i->second = *id; // handed out: never again, even if the commit fails
  return id;
}

/// Drops what the actor cached of partitions this node no longer owns.
void forget_moved(self_ptr self) {
  auto& st = self->state;
  auto owned = [&](uint32_t p) {
    return st.where.map.owner(p) == st.where.self;
  };
  for (auto i = st.last_user.begin(); i != st.last_user.end();)
    i = owned(i->first) ? std::next(i) : st.last_user.erase(i);
  for (auto i = st.last_device.begin(); i != st.last_device.end();)
    i = owned(user_partition(self, i->first)) ? std::next(i)
                                              : st.last_device.erase(i);
}

} // namespace

caf::result<user_id> accounts_detail::do_register(self_ptr self,
                                                  const std::string& name,
                                                  const std::string& password,
                                                  bool by_operator) {
  auto& st = self->state;
  if (!st.limits.registration_open && !by_operator)
    return caf::make_error(errc::forbidden, "registration is closed");
  if (!valid_username(name))
    return caf::make_error(errc::bad_request,
                           "username: 3-32 of a-z 0-9 _ . -");
  if (password.size() < 8 || password.size() > 1024)
    return caf::make_error(errc::bad_request, "password: 8-1024 bytes");
  // One step in the username's partition: the new id is placed in it.
  auto p = name_partition(self, name);
  if (auto err = own_step(self, p, "registration"))
    return err;
  auto existing = store::account_exists(*st.kv, name);
  if (!existing)
    return existing.error();
  if (*existing || st.pending_names.count(name))
    return caf::make_error(errc::conflict, "username taken");
  auto hash = credentials::hash_password(password, st.limits.hash_strength);
  if (hash.empty())
    return caf::make_error(errc::storage_failed, "cannot hash password");
  auto next = next_user_of(self, p);
  if (!next)
    return next.error();
  auto id = *next;
  store::account acct;
  acct.name = name;
  acct.user = id;
  acct.password_hash = hash;
  acct.created_at_ms = st.clock();
  write_batch batch;
  store::add_account(batch, acct, st.limits.partitions);
  st.pending_names.insert(name);
  auto rp = self->make_response_promise<user_id>();
  commit(
    self, std::move(batch),
    [self, rp, name, id]() mutable {
      self->state.pending_names.erase(name);
      spdlog::info("account created user={} name={}", id, name);
      rp.deliver(id);
    },
    [self, rp, name](caf::error& err) mutable {
      if (err == caf::sec::request_timeout)
        release_when_settled(self, name);
      else
        self->state.pending_names.erase(name);
      rp.deliver(err);
    });
  return rp;
}

caf::error accounts_detail::no_such_login(self_ptr self,
                                          const std::string& password) {
  // Spend the same time as a real check: no user enumeration by timing.
  credentials::verify_password(
    credentials::hash_password("x", self->state.limits.hash_strength),
    password);
  return caf::make_error(errc::unauthenticated, "wrong username or password");
}

void accounts_detail::login_by_id(self_ptr self,
                                  caf::typed_response_promise<login_result> rp,
                                  const account_login_step& step) {
  auto& st = self->state;
  // Login's second step, the id's partition (the same one as the name's
  // for accounts registered since ids are placed by username): password,
  // blocked, device and token.
  auto user = step.user;
  auto acct = [&]() -> caf::expected<store::account> {
    if (auto err = own_step(self, user_partition(self, user), "login (user)"))
      return err;
    auto found = store::find_account_by_id(*st.kv, user);
    if (!found)
      return found.error();
    if (!*found)
      return no_such_login(self, step.password);
    if (!credentials::verify_password((*found)->password_hash, step.password))
      return caf::make_error(errc::unauthenticated,
                             "wrong username or password");
    if ((*found)->blocked)
      return caf::make_error(errc::forbidden, "account blocked");
    return **found;
  }();
  if (!acct) {
    rp.deliver(acct.error());
    return;
  }
  auto last = last_device_of(self, user);
  if (!last) {
    rp.deliver(last.error());
    return;
  }
  auto devices = store::list_devices(*st.kv, user);
  if (!devices) {
    rp.deliver(devices.error());
    return;
  }
  uint64_t active = 0;
  for (auto& d : *devices)
    if (!d.revoked)
      ++active;
  if (active >= st.limits.max_devices) {
    rp.deliver(caf::make_error(errc::forbidden,
                               "device limit reached; revoke one"));
    return;
  }
  auto dev = *last + 1;
  st.last_device[user] = dev;
  auto token = credentials::new_token(user);
  store::device_record drec;
  drec.device = dev;
  drec.name = step.device_name;
  drec.token_hash = credentials::token_hash(token);
  drec.created_at_ms = st.clock();
  write_batch batch;
  store::add_device(batch, user, drec);
  commit(
    self, std::move(batch),
    [rp, user, dev, token]() mutable {
      spdlog::info("device logged in user={} device={}", user, dev);
      rp.deliver(login_result{user, dev, token});
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
}

conversation_id direct_conversation_id(user_id a, user_id b) {
  if (a > b)
    std::swap(a, b);
  return (uint64_t{1} << 63) | ((a & 0x7FFFFFFFull) << 32)
         | (b & 0xFFFFFFFFull);
}

accounts_actor::behavior_type
accounts_impl(self_ptr self, std::shared_ptr<kv_backend> kv,
              store_writer_actor writer, accounts_limits limits,
              std::function<int64_t()> clock) {
  auto& st = self->state;
  st.kv = std::move(kv);
  st.writer = std::move(writer);
  st.limits = std::move(limits);
  st.clock = std::move(clock);
  st.where = st.limits.map.owners.empty()
               ? placement::single_node(st.limits.partitions, st.limits.self)
               : placement{st.limits.self, st.limits.map};
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.online_by_addr.find(dm.source);
    if (i == st.online_by_addr.end())
      return;
    auto j = st.online.find(i->second);
    if (j != st.online.end()) {
      j->second.erase(dm.source);
      if (j->second.empty())
        st.online.erase(j);
    }
    st.online_by_addr.erase(i);
  });
  return {
    [self](register_atom, const std::string& name,
           const std::string& password) {
      return register_step(self, account_register_step{name, password});
    },
    [self](login_atom, const std::string& name, const std::string& password,
           const std::string& device_name) {
      return login(self, name, password, device_name);
    },
    [self](auth_atom, const std::string& token) {
      return auth_step(self, account_auth_step{token});
    },
    [self](caf::resolve_atom, const std::string& name) {
      return name_step(self, account_name_step{name});
    },
    [self](caf::resolve_atom, const std::vector<std::string>& names,
           const std::vector<uint64_t>& ids) {
      return resolve_all(self, names, ids);
    },
    [self](devices_atom, user_id user) {
      return devices_step(self, account_devices_step{user});
    },
    [self](revoke_atom, user_id user, device_id dev) {
      return revoke_step(self, account_revoke_step{user, dev});
    },
    [self](caf::put_atom, user_id user, bool read_receipts) {
      return setting_step(self, account_setting_step{user, read_receipts});
    },
    [self](block_atom, const std::string& name, bool blocked) {
      return block(self, name, blocked);
    },
    [self](caf::put_atom, partition_map& next) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (auto err = st.where.replace(std::move(next)))
        return err;
      forget_moved(self);
      spdlog::info("accounts: partition map epoch={}", st.where.map.map_epoch);
      return st.where.map.map_epoch;
    },
    [self](caf::put_atom, node_id n, caf::actor& peer) -> uint64_t {
      auto& peers = self->state.peers;
      if (peer)
        peers[n] = std::move(peer);
      else
        peers.erase(n);
      return peers.size();
    },
    [self](account_name_step& s) { return name_step(self, std::move(s)); },
    [self](account_register_step& s) {
      return register_step(self, std::move(s));
    },
    [self](account_login_step& s) { return login_step(self, std::move(s)); },
    [self](account_block_step& s) { return block_step(self, s); },
    [self](account_setting_step& s) { return setting_step(self, s); },
    [self](account_auth_step& s) { return auth_step(self, std::move(s)); },
    [self](account_devices_step& s) { return devices_step(self, s); },
    [self](account_id_step& s) { return id_step(self, s); },
    [self](account_revoke_step& s) { return revoke_step(self, s); },
    [self](account_show_step& s) { return show_step(self, s); },
    [self](account_limit_step& s) { return limit_step(self, s); },
    [self](caf::update_atom, user_id user, send_limit limit) {
      tell_limit(self, user, limit);
    },
    [self](caf::close_atom, user_id user, device_id dev, uint32_t cause) {
      close_connections(self, user, dev, static_cast<disconnect_cause>(cause),
                        dev == 0 ? "account blocked" : "device revoked");
    },
  };
}

} // namespace parley
