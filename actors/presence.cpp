#include "actors/presence.hpp"

namespace parley {

void presence::attach(user_id user, device_id device,
                      const caf::actor_addr& conn,
                      device_actor actor) {
  auto& sh = shard_of(user);
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto& slots = sh.users[user];
  slot s{device, conn, std::move(actor)};
  for (auto& old : slots)
    if (old.device == device) {
      old = std::move(s); // a newer connection replaces the older one
      return;
    }
  slots.push_back(std::move(s));
}

void presence::detach(user_id user, device_id device,
                      const caf::actor_addr& conn) {
  auto& sh = shard_of(user);
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto u = sh.users.find(user);
  if (u == sh.users.end())
    return;
  auto& slots = u->second;
  for (auto i = slots.begin(); i != slots.end(); ++i)
    if (i->device == device && i->conn == conn) {
      slots.erase(i);
      break;
    }
  if (slots.empty())
    sh.users.erase(u);
}

void presence::connected_devices(user_id user, user_id skip_user,
                                 device_id skip_device,
                                 std::vector<device_actor>& out) const {
  auto& sh = shard_of(user);
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto u = sh.users.find(user);
  if (u == sh.users.end())
    return;
  for (auto& s : u->second)
    if (user != skip_user || s.device != skip_device)
      out.push_back(s.actor);
}

size_t presence::connected() const {
  size_t n = 0;
  for (auto& sh : shards_) {
    std::lock_guard<std::mutex> guard{sh.mtx};
    for (auto& [u, slots] : sh.users)
      n += slots.size();
  }
  return n;
}

} // namespace parley
