#include "actors/directory.hpp"

#include <spdlog/spdlog.h>

#include <caf/actor_cast.hpp>

// The directory's peers: the directories of other nodes that requests for
// their partitions are handed to, set and forgotten at run time.

namespace parley {

using self_ptr = directory_actor::stateful_pointer<directory_state>;

bool forward_to_owner(self_ptr self, node_id owner) {
  auto& st = self->state;
  auto peer = st.peers.find(owner);
  auto from = self->current_sender();
  if (peer == st.peers.end() || !peer->second
      || (from && from->node() != self->node()))
    return false;
  auto msg = self->current_mailbox_element()->copy_content_to_message();
  self->make_response_promise().delegate(
    caf::actor_cast<caf::actor>(peer->second), std::move(msg));
  return true;
}

uint64_t set_peer(self_ptr self, node_id n, caf::actor peer) {
  auto& peers = self->state.peers;
  if (peer) {
    peers[n] = caf::actor_cast<directory_actor>(std::move(peer));
    spdlog::info("directory: peer set node={}", n);
  } else if (peers.erase(n) > 0) {
    spdlog::info("directory: peer forgotten node={}", n);
  }
  return peers.size();
}

} // namespace parley
