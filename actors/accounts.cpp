#include "actors/accounts.hpp"

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/disconnect.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/store/account_store.hpp"

namespace parley {

namespace {

using self_ptr = accounts_actor::stateful_pointer<accounts_state>;

/// The store writer's fence id for account writes.
constexpr uint64_t accounts_writer_id = writer_ids::accounts();

bool valid_username(const std::string& name) {
  if (name.size() < 3 || name.size() > 32)
    return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
          || c == '.' || c == '-'))
      return false;
  return true;
}


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

caf::result<user_id> do_register(self_ptr self, const std::string& name,
                                 const std::string& password) {
  auto& st = self->state;
  if (!st.limits.registration_open)
    return caf::make_error(errc::forbidden, "registration is closed");
  if (!valid_username(name))
    return caf::make_error(errc::bad_request,
                           "username: 3-32 of a-z 0-9 _ . -");
  if (password.size() < 8 || password.size() > 1024)
    return caf::make_error(errc::bad_request, "password: 8-1024 bytes");
  auto existing = store::account_exists(*st.kv, name);
  if (!existing)
    return existing.error();
  if (*existing || st.pending_names.count(name))
    return caf::make_error(errc::conflict, "username taken");
  auto hash = credentials::hash_password(password, st.limits.hash_strength);
  if (hash.empty())
    return caf::make_error(errc::storage_failed, "cannot hash password");
  auto id = ++st.last_user;
  store::account acct;
  acct.name = name;
  acct.user = id;
  acct.password_hash = hash;
  acct.created_at_ms = st.clock();
  write_batch batch;
  store::add_account(batch, acct);
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

caf::result<login_result> do_login(self_ptr self, const std::string& name,
                                   const std::string& password,
                                   const std::string& device_name) {
  auto& st = self->state;
  auto refuse = caf::make_error(errc::unauthenticated,
                                "wrong username or password");
  if (device_name.empty() || device_name.size() > 64)
    return caf::make_error(errc::bad_request, "device name: 1-64 bytes");
  auto acct = store::find_account(*st.kv, name);
  if (!acct)
    return acct.error();
  if (!*acct) {
    // Spend the same time as a real check: no user enumeration by timing.
    credentials::verify_password(
      credentials::hash_password("x", st.limits.hash_strength), password);
    return refuse;
  }
  if (!credentials::verify_password((*acct)->password_hash, password))
    return refuse;
  if ((*acct)->blocked)
    return caf::make_error(errc::forbidden, "account blocked");
  auto user = (*acct)->user;
  auto last = last_device_of(self, user);
  if (!last)
    return last.error();
  auto devices = store::list_devices(*st.kv, user);
  if (!devices)
    return devices.error();
  uint64_t active = 0;
  for (auto& d : *devices)
    if (!d.revoked)
      ++active;
  if (active >= st.limits.max_devices)
    return caf::make_error(errc::forbidden, "device limit reached; revoke one");
  auto dev = *last + 1;
  st.last_device[user] = dev;
  auto token = credentials::new_token();
  auto th = credentials::token_hash(token);
  store::device_record drec;
  drec.device = dev;
  drec.name = device_name;
  drec.token_hash = th;
  drec.created_at_ms = st.clock();
  write_batch batch;
  store::add_device(batch, user, drec);
  auto rp = self->make_response_promise<login_result>();
  commit(
    self, std::move(batch),
    [rp, user, dev, token]() mutable {
      spdlog::info("device logged in user={} device={}", user, dev);
      rp.deliver(login_result{user, dev, token});
    },
    [rp](caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

/// Sets whether `user` shares and sees read receipts; the user's open
/// connections are told at once.
caf::result<bool> do_set_read_receipts(self_ptr self, user_id user, bool on) {
  auto& st = self->state;
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
  auto owner = store::find_token(*st.kv, credentials::token_hash(token));
  if (!owner)
    return owner.error();
  if (!*owner)
    return refuse;
  principal who{(*owner)->user, (*owner)->device};
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
  auto acct = store::find_account(*st.kv, name);
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
  auto rec = store::find_device(*st.kv, user, dev);
  if (!rec)
    return rec.error();
  if (!*rec || (*rec)->revoked)
    return caf::make_error(errc::not_found, "no such active device");
  write_batch batch;
  store::revoke_device(batch, user, **rec);
  auto rp = self->make_response_promise<bool>();
  commit(
    self, std::move(batch),
    [self, rp, user, dev]() mutable {
      auto& st = self->state;
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

} // namespace

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
  if (auto last = store::last_user_id(*st.kv))
    st.last_user = *last;
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
      return do_register(self, name, password);
    },
    [self](login_atom, const std::string& name, const std::string& password,
           const std::string& device_name) {
      return do_login(self, name, password, device_name);
    },
    [self](auth_atom, const std::string& token) {
      return do_auth(self, token);
    },
    [self](caf::resolve_atom, const std::string& name) -> caf::result<user_id> {
      auto acct = store::find_account(*self->state.kv, name);
      if (!acct)
        return acct.error();
      if (!*acct)
        return caf::make_error(errc::not_found, "no such user");
      return (*acct)->user;
    },
    [self](caf::resolve_atom, const std::vector<std::string>& names,
           const std::vector<uint64_t>& ids)
      -> caf::result<std::vector<uint64_t>> {
      std::vector<uint64_t> out;
      for (auto& name : names) {
        auto acct = store::find_account(*self->state.kv, name);
        if (!acct)
          return acct.error();
        if (!*acct)
          return caf::make_error(errc::not_found, "no such user: " + name);
        out.push_back((*acct)->user);
      }
      for (auto id : ids) {
        auto name = store::user_name(*self->state.kv, id);
        if (!name)
          return name.error();
        if (!*name)
          return caf::make_error(errc::not_found,
                                 "no such user id: " + std::to_string(id));
        out.push_back(id);
      }
      return out;
    },
    [self](devices_atom, user_id user)
      -> caf::result<std::vector<device_info>> {
      auto devices = store::list_devices(*self->state.kv, user);
      if (!devices)
        return devices.error();
      std::vector<device_info> out;
      for (auto& d : *devices)
        out.push_back(device_info{d.device, d.name, d.created_at_ms,
                                  d.revoked});
      return out;
    },
    [self](revoke_atom, user_id user, device_id dev) {
      return do_revoke(self, user, dev);
    },
    [self](caf::put_atom, user_id user, bool read_receipts) {
      return do_set_read_receipts(self, user, read_receipts);
    },
    [self](block_atom, const std::string& name, bool blocked) {
      return do_block(self, name, blocked);
    },
  };
}

} // namespace parley
