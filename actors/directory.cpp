#include "actors/directory.hpp"

#include "actors/directory_memberships.hpp"
#include "actors/directory_inbox.hpp"
#include "actors/directory_users.hpp"

#include <string>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley {

namespace {

using self_ptr = directory_actor::stateful_pointer<directory_state>;

caf::error not_here(const directory_state& st, conversation_id conv) {
  auto r = st.where.route_of(placement_key::conversation(conv));
  return caf::make_error(errc::unavailable,
                         "conversation " + std::to_string(conv)
                           + " is on partition " + std::to_string(r.partition)
                           + " owned by node " + std::to_string(r.owner)
                           + " (map epoch " + std::to_string(r.map_epoch)
                           + ")");
}

conversation_actor get_or_spawn(self_ptr self, conversation_id conv);

/// Hands `xs` to conversation `conv` (its answer goes to the asker); if
/// another node owns it, to that node's directory when a handle for it is
/// known and the request did not come from another node (no ping-pong
/// between two maps that disagree), else answers unavailable.
template <class R, class... Ts>
caf::result<R> route_to(self_ptr self, conversation_id conv, Ts&&... xs) {
  auto& st = self->state;
  auto r = st.where.route_of(placement_key::conversation(conv));
  if (r.local)
    return self->delegate(get_or_spawn(self, conv), std::forward<Ts>(xs)...);
  // The owner's directory takes the request as this one got it (`xs` are
  // the conversation's form of it).
  if (forward_to_owner(self, r.owner))
    return caf::delegated<R>{};
  return not_here(st, conv);
}

/// Hands a tagged request `(a, t)` for `conv` on as route_to does, with
/// its sender kept (the conversation, or the owner's directory, answers
/// it); else answers refuse(error) to the sender at once.
template <class Atom, class T, class Refuse>
void forward_tagged(self_ptr self, conversation_id conv, Atom a, T&& t,
                    Refuse refuse) {
  auto& st = self->state;
  auto from = caf::actor_cast<caf::actor>(self->current_sender());
  auto r = st.where.route_of(placement_key::conversation(conv));
  if (r.local) {
    caf::send_as(from, get_or_spawn(self, conv), a, std::forward<T>(t));
    return;
  }
  auto peer = st.peers.find(r.owner);
  if (peer == st.peers.end() || !peer->second
      || (from && from->node() != self->node())) {
    refuse(from, not_here(st, conv));
    return;
  }
  caf::send_as(from, peer->second, a, std::forward<T>(t));
}

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

/// Asks each draining actor of `conv` that is not being asked already what
/// it has in flight; stops those with nothing (or asked often enough) and
/// asks the rest again after `drain_poll`.
void drain(self_ptr self, conversation_id conv) {
  for (auto& [addr, d] : self->state.leaving) {
    if (d.conv != conv || d.asking)
      continue;
    d.asking = true;
    auto hdl = d.actor;
    auto last = ++d.polls >= self->state.max_drain_polls;
    self->request(hdl, timeouts::ask, caf::get_atom::value)
      .then(
        [self, hdl, conv, last](const conversation_status& s) {
          auto i = self->state.leaving.find(hdl.address());
          if (i == self->state.leaving.end())
            return;
          i->second.asking = false;
          if (s.in_flight == 0 || last)
            self->send_exit(hdl, caf::exit_reason::user_shutdown);
          else
            self->delayed_send(self, self->state.drain_poll,
                               caf::leave_atom::value, conv);
        },
        [self, hdl](caf::error&) {
          // Gone already (its down message cleans up) or wedged: stop it.
          self->send_exit(hdl, caf::exit_reason::user_shutdown);
        });
  }
}

/// Takes the conversations whose partition is no longer local out of the
/// table (nothing hands them out again) and starts draining them.
void release_moved(self_ptr self) {
  auto& st = self->state;
  std::vector<conversation_id> moved;
  for (auto i = st.conversations.begin(); i != st.conversations.end();) {
    if (st.where.owns(placement_key::conversation(i->first))) {
      ++i;
      continue;
    }
    auto addr = i->second.address();
    st.by_addr.erase(addr);
    st.leaving.emplace(addr, directory_state::draining{i->first, i->second});
    moved.push_back(i->first);
    i = st.conversations.erase(i);
  }
  if (!moved.empty())
    spdlog::info("conversations moved away count={} map_epoch={}",
                 moved.size(), st.where.map.map_epoch);
  for (auto conv : moved)
    drain(self, conv);
}

} // namespace

directory_actor::behavior_type
directory_impl(self_ptr self, conversation_deps deps) {
  return placed_directory_impl(self, std::move(deps), placement::single_node());
}

directory_actor::behavior_type
placed_directory_impl(self_ptr self, conversation_deps deps,
                      placement where) {
  return routing_directory_impl(self, std::move(deps), std::move(where), {});
}

directory_actor::behavior_type
routing_directory_impl(self_ptr self, conversation_deps deps, placement where,
                       directory_peers peers) {
  self->state.peers = std::move(peers);
  self->state.deps = std::move(deps);
  // Conversations send their membership events here (by user id).
  if (!self->state.deps.memberships)
    self->state.deps.memberships = caf::actor_cast<membership_sink_actor>(self);
  self->state.where = std::move(where);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (st.leaving.erase(dm.source) > 0)
      return; // moved away: not restarted here
    if (directory_users::down(self, dm.source))
      return; // a user actor: the next request spawns another
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
    [self](caf::get_atom,
           conversation_id conv) -> caf::result<conversation_actor> {
      if (!self->state.where.owns(placement_key::conversation(conv)))
        return not_here(self->state, conv);
      return get_or_spawn(self, conv);
    },
    [self](send_atom a, send_request& req) {
      auto conv = req.conversation;
      return route_to<send_result>(self, conv, a, std::move(req));
    },
    [self](caf::join_atom a, conversation_id conv, user_id user) {
      return route_to<sequence>(self, conv, a, user);
    },
    [self](group_atom a, conversation_id conv, group_change& c) {
      return route_to<send_result>(self, conv, a, std::move(c));
    },
    [self](group_atom a, conversation_id conv, user_id requester,
           user_id after, uint32_t limit) {
      return route_to<group_info>(self, conv, a, requester, after, limit);
    },
    [self](receipt_atom a, conversation_id conv, user_id user,
           device_id device, int32_t kind, sequence seq, bool shared) {
      return route_to<sequence>(self, conv, a, user, device, kind, seq,
                                shared);
    },
    [self](load_atom a, conversation_id conv) {
      return route_to<conversation_snapshot>(self, conv, a);
    },
    [self](send_atom a, tagged_send& t) {
      auto conv = t.req.conversation;
      auto tag = t.tag;
      forward_tagged(self, conv, a, std::move(t),
                     [self, tag](const caf::actor& to, caf::error err) {
                       if (to)
                         self->send(caf::actor_cast<send_answer_actor>(to),
                                    send_atom::value,
                                    send_answer{tag, {}, std::move(err)});
                     });
    },
    [self](receipt_atom a, tagged_receipt& t) {
      auto tag = t.tag;
      forward_tagged(self, t.conv, a, std::move(t),
                     [self, tag](const caf::actor& to, caf::error err) {
                       if (to)
                         self->send(caf::actor_cast<receipt_answer_actor>(to),
                                    receipt_atom::value,
                                    receipt_answer{tag, 0, std::move(err)});
                     });
    },
    [self](caf::get_atom, placement_key key) {
      return self->state.where.route_of(key);
    },
    [self](caf::put_atom,
           partition_map& next) -> caf::result<uint64_t> {
      auto before = self->state.where.map;
      if (auto err = self->state.where.replace(std::move(next)))
        return err;
      release_moved(self);
      directory_users::release_moved(self);
      directory_memberships::activate_taken(self, before);
      return self->state.where.map.map_epoch;
    },
    [self](caf::get_atom) {
      std::vector<conversation_actor> result;
      for (auto& [id, hdl] : self->state.conversations)
        result.push_back(hdl);
      for (auto& [addr, d] : self->state.leaving)
        result.push_back(d.actor);
      return result;
    },
    [self](caf::spawn_atom, conversation_id conv) {
      if (self->state.where.owns(placement_key::conversation(conv)))
        get_or_spawn(self, conv);
    },
    [self](caf::leave_atom, conversation_id conv) { drain(self, conv); },
    [self](sync_atom, user_id user, sync_request& req) {
      return directory_users::sync(self, user, req);
    },
    [self](fetch_atom, conv_reads& r) {
      return directory_users::reads(self, r);
    },
    [self](fetch_atom, user_reads& r) {
      return directory_users::reads(self, r);
    },
    [self](ack_atom, user_id user, conversation_id conv) {
      return directory_users::ack_limit(self, user, conv);
    },
    [self](caf::put_atom, inbox_rows& r) {
      return directory_inbox::rows(self, r);
    },
    [self](fetch_atom, inbox_query& q) {
      return directory_inbox::query(self, q);
    },
    [self](retire_atom, user_id user) { directory_users::retire(self, user); },
    [self](caf::put_atom, membership_event& ev) {
      return directory_memberships::apply(self, ev);
    },
    [self](caf::put_atom, node_id n, caf::actor& peer) {
      return set_peer(self, n, std::move(peer));
    },
  };
}

} // namespace parley
