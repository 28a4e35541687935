#include "actors/presence.hpp"

namespace parley {

void presence::attach(user_id user, device_id device,
                      const caf::actor_addr& conn,
                      std::shared_ptr<device_sink> sink) {
  auto& sh = shard_of(user);
  std::lock_guard<std::mutex> guard{sh.mtx};
  auto& slots = sh.users[user];
  slot s{device, conn, std::move(sink),
         std::make_shared<std::unordered_map<conversation_id, sequence>>()};
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

size_t presence::deliver(user_id user, const prepared_message& pm) {
  auto& m = pm.msg;
  // Decide under the lock (cursor and sink are per connection); push
  // outside it: a push encodes and takes the session's queue lock.
  std::vector<std::shared_ptr<device_sink>> to;
  {
    auto& sh = shard_of(user);
    std::lock_guard<std::mutex> guard{sh.mtx};
    auto u = sh.users.find(user);
    if (u == sh.users.end())
      return 0;
    for (auto& s : u->second) {
      if (user == m.sender_user && s.device == m.sender_device)
        continue; // the sending device has it already
      auto& last = (*s.pushed)[m.conversation];
      if (m.seq <= last)
        continue; // pushed before (a repeated slice)
      last = m.seq;
      to.push_back(s.sink);
    }
  }
  size_t n = 0;
  for (auto& sink : to)
    n += sink->push(pm) ? 1 : 0;
  return n;
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
