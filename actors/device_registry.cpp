#include "actors/device_registry.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

namespace parley {

device_registry_actor::behavior_type device_registry_impl(
  device_registry_actor::stateful_pointer<device_registry_state> self) {
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.by_addr.find(dm.source);
    if (i == st.by_addr.end())
      return;
    auto [user, dev] = i->second;
    st.by_addr.erase(i);
    auto u = st.online.find(user);
    if (u == st.online.end())
      return;
    auto d = u->second.find(dev);
    if (d != u->second.end() && d->second.address() == dm.source)
      u->second.erase(d);
    if (u->second.empty())
      st.online.erase(u);
  });
  return {
    [self](deliver_atom, const stored_message& msg,
           const std::vector<user_id>& to) {
      auto& st = self->state;
      for (auto user : to) {
        auto u = st.online.find(user);
        if (u == st.online.end())
          continue;
        for (auto& [dev, conn] : u->second) {
          if (user == msg.sender_user && dev == msg.sender_device)
            continue; // the sending device has it already
          caf::anon_send(conn, deliver_atom::value, msg);
          ++st.pushed;
        }
      }
    },
    [self](caf::join_atom, user_id user, device_id dev, caf::actor conn) {
      auto& st = self->state;
      auto& slot = st.online[user][dev];
      if (slot && slot != conn)
        caf::anon_send(slot, caf::close_atom::value,
                       std::string{"replaced by a newer connection"});
      slot = conn;
      st.by_addr[conn.address()] = {user, dev};
      self->monitor(conn);
      return true;
    },
  };
}

} // namespace parley
