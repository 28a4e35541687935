#include "actors/directory_users.hpp"

#include <string>

#include <spdlog/spdlog.h>

#include "runtime/core/errors.hpp"

namespace parley::directory_users {

namespace {

caf::error not_here(const directory_state& st, placement_key key,
                    const char* what) {
  auto r = st.where.route_of(key);
  return caf::make_error(errc::unavailable,
                         std::string{what} + " " + std::to_string(key.id)
                           + " is on partition " + std::to_string(r.partition)
                           + " owned by node " + std::to_string(r.owner)
                           + " (map epoch " + std::to_string(r.map_epoch)
                           + ")");
}

/// True if partition `p` is another node's and the request was handed to
/// that node's directory (known to this one).
bool forwarded(self_ptr self, uint32_t p) {
  auto& map = self->state.where.map;
  if (p >= map.partitions() || map.owner(p) == self->state.where.self)
    return false;
  return forward_to_owner(self, map.owner(p));
}

/// Checks that partition `p` is this node's and every key is placed in it.
template <class Keys>
caf::error check_partition(const directory_state& st, uint32_t p,
                           const Keys& keys) {
  auto n = st.where.map.partitions();
  if (p >= n || st.where.map.owner(p) != st.where.self)
    return caf::make_error(errc::unavailable,
                           "partition " + std::to_string(p)
                             + " is owned by node "
                             + std::to_string(st.where.map.owner(p))
                             + " (map epoch "
                             + std::to_string(st.where.map.map_epoch) + ")");
  for (auto& key : keys)
    if (partition_of(key, n) != p)
      return caf::make_error(errc::bad_request,
                             "id " + std::to_string(key.id)
                               + " is not on partition " + std::to_string(p));
  return {};
}

user_actor user_of(self_ptr self, user_id user) {
  auto& st = self->state;
  if (auto i = st.users.find(user); i != st.users.end())
    return i->second;
  user_deps deps;
  deps.reads = caf::actor_cast<partition_reads_actor>(self);
  deps.directory = caf::actor_cast<user_retire_actor>(self);
  deps.partitions = st.where.map.partitions();
  deps.idle = st.user_idle;
  auto hdl = self->spawn(user_impl, user, std::move(deps));
  self->monitor(hdl);
  // User actors end with the directory (node shutdown); their ending is
  // not the directory's (the exit handler knows the linked ones).
  self->link_to(hdl);
  st.linked.insert(hdl.address());
  st.users.emplace(user, hdl);
  st.users_by_addr.emplace(hdl.address(), user);
  return hdl;
}

} // namespace

caf::result<sync_page> sync(self_ptr self, user_id user, sync_request& req) {
  auto key = placement_key::user(user);
  if (auto r = self->state.where.route_of(key); !r.local) {
    if (forward_to_owner(self, r.owner)) // to the owner's directory
      return caf::delegated<sync_page>{};
    return not_here(self->state, key, "user");
  }
  return self->delegate(user_of(self, user), sync_atom::value, user,
                        std::move(req));
}

caf::result<conv_answers> reads(self_ptr self, conv_reads& r) {
  std::vector<placement_key> keys;
  for (auto& q : r.queries)
    keys.push_back(placement_key::conversation(q.conv));
  if (forwarded(self, r.partition))
    return caf::delegated<conv_answers>{};
  if (auto err = check_partition(self->state, r.partition, keys))
    return err;
  return self->delegate(self->state.deps.reader, fetch_atom::value,
                        std::move(r));
}

caf::result<user_answers> reads(self_ptr self, user_reads& r) {
  std::vector<placement_key> keys;
  if (r.kind != user_read_sharing)
    keys.push_back(placement_key::user(r.user));
  for (auto u : r.users)
    keys.push_back(placement_key::user(u));
  if (forwarded(self, r.partition))
    return caf::delegated<user_answers>{};
  if (auto err = check_partition(self->state, r.partition, keys))
    return err;
  return self->delegate(self->state.deps.reader, fetch_atom::value,
                        std::move(r));
}

caf::result<sequence> ack_limit(self_ptr self, user_id user,
                                conversation_id conv) {
  auto key = placement_key::conversation(conv);
  if (auto r = self->state.where.route_of(key); !r.local) {
    if (forward_to_owner(self, r.owner)) // to the owner's directory
      return caf::delegated<sequence>{};
    return not_here(self->state, key, "conversation");
  }
  return self->delegate(self->state.deps.reader, ack_atom::value, user, conv);
}

void retire(self_ptr self, user_id user) {
  auto& st = self->state;
  auto from = caf::actor_cast<user_actor>(self->current_sender());
  if (!from)
    return;
  if (auto i = st.users.find(user); i != st.users.end() && i->second == from) {
    st.users_by_addr.erase(i->second.address());
    st.users.erase(i);
  }
  // After every request handed to it (they come from here, in order).
  self->send(from, retire_atom::value);
}

bool down(self_ptr self, const caf::actor_addr& addr) {
  auto& st = self->state;
  auto i = st.users_by_addr.find(addr);
  if (i == st.users_by_addr.end())
    return false;
  if (auto j = st.users.find(i->second);
      j != st.users.end() && j->second.address() == addr)
    st.users.erase(j);
  st.users_by_addr.erase(i);
  return true;
}

void release_moved(self_ptr self) {
  auto& st = self->state;
  size_t n = 0;
  for (auto i = st.users.begin(); i != st.users.end();) {
    if (st.where.owns(placement_key::user(i->first))) {
      ++i;
      continue;
    }
    st.users_by_addr.erase(i->second.address());
    self->send(i->second, retire_atom::value);
    i = st.users.erase(i);
    ++n;
  }
  if (n > 0)
    spdlog::info("user actors moved away count={} map_epoch={}", n,
                 st.where.map.map_epoch);
}

} // namespace parley::directory_users
