#include "actors/device_registry_peers.hpp"

#include <algorithm>
#include <map>
#include <string>

#include <spdlog/spdlog.h>

#include <caf/actor_cast.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley::registry_peers {

namespace {

/// True if the message being handled came from an actor of this CAF node
/// (or from no actor at all: an anonymous message is a local one).
bool from_this_node(self_ptr self) {
  auto& from = self->current_sender();
  return !from || from->node() == self->node();
}

caf::error not_here(const route& r, user_id user, const std::string& why) {
  return caf::make_error(errc::unavailable,
                         "user " + std::to_string(user) + " is on partition "
                           + std::to_string(r.partition) + " owned by node "
                           + std::to_string(r.owner) + " (map epoch "
                           + std::to_string(r.map_epoch) + ")" + why);
}

template <class Atom, class Event>
const std::vector<user_id>&
relay_impl(self_ptr self, Atom atom, const Event& ev,
           const std::vector<user_id>& to, std::vector<user_id>& buf) {
  auto& st = self->state;
  if (st.owns_all)
    return to;
  auto& where = st.opts.where;
  size_t first = 0;
  while (first < to.size() && where.owns(placement_key::user(to[first])))
    ++first;
  if (first == to.size())
    return to; // all of them this node's: no copy
  buf.assign(to.begin(), to.begin() + static_cast<std::ptrdiff_t>(first));
  auto local = from_this_node(self);
  std::map<node_id, std::vector<user_id>> others;
  for (auto i = first; i < to.size(); ++i) {
    auto r = where.route_of(placement_key::user(to[i]));
    if (r.local)
      buf.push_back(to[i]);
    else if (local)
      others[r.owner].push_back(to[i]);
    else
      ++st.dropped; // another node's map disagrees: never handed on again
  }
  for (auto& [owner, users] : others) {
    auto peer = st.peers.find(owner);
    if (peer == st.peers.end() || !peer->second) {
      st.unrouted += users.size(); // they catch up by sync
      spdlog::debug("device registry: no registry for node={}; {} users "
                    "skipped",
                    owner, users.size());
      continue;
    }
    self->send(peer->second, atom, ev, std::move(users));
    ++st.relayed;
  }
  return buf;
}

} // namespace

uint64_t set_peer(self_ptr self, node_id n, caf::actor peer) {
  auto& peers = self->state.peers;
  if (peer) {
    peers[n] = caf::actor_cast<device_registry_actor>(std::move(peer));
    spdlog::info("device registry: peer set node={}", n);
  } else if (peers.erase(n) > 0) {
    spdlog::info("device registry: peer forgotten node={}", n);
  }
  return peers.size();
}

void map_changed(self_ptr self) {
  auto& where = self->state.opts.where;
  auto& owners = where.map.owners;
  self->state.owns_all
    = std::all_of(owners.begin(), owners.end(),
                  [&](node_id n) { return n == where.self; });
}

placed place(self_ptr self, user_id user) {
  auto& st = self->state;
  placed out;
  auto r = st.opts.where.route_of(placement_key::user(user));
  if (r.local) {
    out.here = true;
    return out;
  }
  auto peer = st.peers.find(r.owner);
  if (peer == st.peers.end() || !peer->second)
    out.err = not_here(r, user, "");
  else if (!from_this_node(self))
    out.err = not_here(r, user, "; asked by another node, not handed on");
  else
    out.owner = peer->second;
  return out;
}

caf::error check_asked_by(self_ptr self, user_id user, node_id from) {
  auto r = self->state.opts.where.route_of(placement_key::user(user));
  if (r.local)
    return {};
  return not_here(r, user,
                  "; asked by another node (" + std::to_string(from)
                    + "), not handed on");
}

namespace {

/// The owner's answer to a node-to-node request, passed on to the asker
/// as its typed handle. The owner waits up to timeouts::ask for its device
/// actor: the hop waits that and as long again.
template <class... Ts>
caf::result<device_actor> ask_owner(self_ptr self,
                                    const device_registry_actor& owner,
                                    Ts&&... xs) {
  auto rp = self->make_response_promise<device_actor>();
  self->request(owner, timeouts::ask * 2, std::forward<Ts>(xs)...)
    .then(
      [rp](caf::actor& dev) mutable {
        rp.deliver(caf::actor_cast<device_actor>(std::move(dev)));
      },
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

} // namespace

caf::result<device_actor> join_at(self_ptr self,
                                  const device_registry_actor& owner,
                                  user_id user, device_id dev,
                                  caf::actor conn) {
  return ask_owner(self, owner, caf::join_atom::value,
                   self->state.opts.where.self, user, dev, std::move(conn));
}

caf::result<device_actor> get_at(self_ptr self,
                                 const device_registry_actor& owner,
                                 user_id user, device_id dev) {
  return ask_owner(self, owner, caf::get_atom::value,
                   self->state.opts.where.self, user, dev);
}

void hand_on(self_ptr self, const device_registry_actor& owner) {
  auto msg = self->current_mailbox_element()->copy_content_to_message();
  self->make_response_promise().delegate(caf::actor_cast<caf::actor>(owner),
                                         std::move(msg));
}

const std::vector<user_id>& relay(self_ptr self, const stored_message& msg,
                                  const std::vector<user_id>& to,
                                  std::vector<user_id>& buf) {
  return relay_impl(self, deliver_atom::value, msg, to, buf);
}

const std::vector<user_id>& relay(self_ptr self, const receipt_event& ev,
                                  const std::vector<user_id>& to,
                                  std::vector<user_id>& buf) {
  return relay_impl(self, receipt_atom::value, ev, to, buf);
}

} // namespace parley::registry_peers
