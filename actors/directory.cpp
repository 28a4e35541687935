#include "actors/directory.hpp"

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

namespace parley {

namespace {

using self_ptr = directory_actor::stateful_pointer<directory_state>;

conversation_actor get_or_spawn(self_ptr self, conversation_id conv) {
  auto& st = self->state;
  if (auto i = st.conversations.find(conv); i != st.conversations.end())
    return i->second;
  auto hdl = self->spawn(conversation_impl, conv, st.deps);
  self->monitor(hdl);
  // Conversations end with the directory (node shutdown).
  self->link_to(hdl);
  st.linked.insert(hdl.address());
  st.conversations.emplace(conv, hdl);
  st.by_addr.emplace(hdl.address(), conv);
  ++st.spawned;
  return hdl;
}

} // namespace

directory_actor::behavior_type
directory_impl(self_ptr self, conversation_deps deps) {
  self->state.deps = std::move(deps);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.by_addr.find(dm.source);
    if (i == st.by_addr.end())
      return;
    auto conv = i->second;
    st.conversations.erase(conv);
    st.by_addr.erase(i);
    if (dm.reason && dm.reason != caf::exit_reason::user_shutdown) {
      spdlog::warn("conversation failed, restarting conversation={} reason=\"{}\"", conv,
                   to_string(dm.reason));
      self->delayed_send(self, st.respawn_delay, caf::spawn_atom::value, conv);
    }
  });
  // A conversation's failure must not take the directory down with it; the
  // link only serves the other direction (the node stopping).
  self->set_exit_handler([self](caf::exit_msg& em) {
    if (self->state.linked.erase(em.source) == 0)
      self->quit(em.reason);
  });
  return {
    [self](caf::get_atom, conversation_id conv) -> conversation_actor {
      return get_or_spawn(self, conv);
    },
    [self](caf::get_atom) {
      std::vector<conversation_actor> result;
      for (auto& [id, hdl] : self->state.conversations)
        result.push_back(hdl);
      return result;
    },
    [self](caf::spawn_atom, conversation_id conv) { get_or_spawn(self, conv); },
  };
}

} // namespace parley
