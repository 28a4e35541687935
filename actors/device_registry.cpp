#include "actors/device_registry.hpp"

#include <string>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/device_registry_peers.hpp"
#include "actors/disconnect.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley {

namespace {

using self_ptr = device_registry_actor::stateful_pointer<device_registry_state>;

using entry = device_registry_state::entry;

entry* find(device_registry_state& st, user_id user, device_id dev) {
  auto u = st.devices.find(user);
  if (u == st.devices.end())
    return nullptr;
  auto d = u->second.find(dev);
  return d == u->second.end() ? nullptr : &d->second;
}

void erase(device_registry_state& st, user_id user, device_id dev) {
  auto u = st.devices.find(user);
  if (u == st.devices.end())
    return;
  u->second.erase(dev);
  if (u->second.empty())
    st.devices.erase(u);
}

/// Calls `f(user, device, entry)` for each device of `users` that holds a
/// connection (the others catch up by sync).
template <class F>
void for_connected(device_registry_state& st, const std::vector<user_id>& users,
                   F f) {
  for (auto user : users) {
    auto u = st.devices.find(user);
    if (u == st.devices.end())
      continue;
    for (auto& [dev, e] : u->second)
      if (e.conn)
        f(user, dev, e);
  }
}

/// Error unless this node owns `user`'s partition.
caf::error check_owned(const device_registry_state& st, user_id user) {
  auto r = st.opts.where.route_of(placement_key::user(user));
  if (r.local)
    return {};
  return caf::make_error(errc::unavailable,
                         "user " + std::to_string(user) + " is on partition "
                           + std::to_string(r.partition) + " owned by node "
                           + std::to_string(r.owner) + " (map epoch "
                           + std::to_string(r.map_epoch) + ")");
}

/// Stops the device actors of users no longer owned here and closes their
/// connections (the clients reconnect and sync).
void release_moved(self_ptr self) {
  auto& st = self->state;
  for (auto u = st.devices.begin(); u != st.devices.end();) {
    auto user = u->first;
    if (st.opts.where.owns(placement_key::user(user))) {
      ++u;
      continue;
    }
    for (auto& [dev, e] : u->second) {
      st.by_device.erase(e.actor.address());
      st.linked.erase(e.actor.address());
      self->unlink_from(e.actor);
      self->send_exit(e.actor, caf::exit_reason::user_shutdown);
      if (!e.conn)
        continue;
      st.by_conn.erase(e.conn);
      if (auto conn = caf::actor_cast<caf::actor>(e.conn))
        caf::anon_send(conn, caf::close_atom::value,
                       code_of(disconnect_cause::device_unavailable),
                       std::string{"device moved; reconnect and sync"});
    }
    u = st.devices.erase(u);
  }
}

/// The running device actor of (user, dev). Error: not_found.
caf::expected<device_actor> lookup(device_registry_state& st, user_id user,
                                   device_id dev) {
  if (auto* e = find(st, user, dev))
    return e->actor;
  return caf::make_error(errc::not_found, "no device actor");
}

/// Attaches `conn` to the device actor of (user, dev) of this node,
/// spawned on first use, and answers with it as an `R` once it has taken
/// the connection.
template <class R>
caf::result<R> join_here(self_ptr self, user_id user, device_id dev,
                         caf::actor conn) {
  auto& st = self->state;
  auto* e = find(st, user, dev);
  if (!e) {
    // Linked: device actors end with the registry. Monitored: a device
    // that fails is cleaned up by the down handler (exits from devices
    // are trapped below).
    auto actor = self->spawn<caf::linked>(device_impl, st.deps, user, dev);
    self->monitor(actor);
    st.linked.insert(actor.address());
    st.by_device[actor.address()] = {user, dev};
    e = &st.devices[user][dev];
    e->actor = actor;
  }
  if (e->conn && e->conn != conn.address())
    st.by_conn.erase(e->conn); // the device actor closes it
  e->conn = conn.address();
  st.by_conn[conn.address()] = {user, dev};
  self->monitor(conn);
  // Deliveries forwarded after this join reach the device after it, so
  // they go to the new connection.
  auto rp = self->make_response_promise<R>();
  auto actor = e->actor;
  self->request(actor, timeouts::ask, caf::join_atom::value, conn)
    .then(
      [rp, actor](bool) mutable { rp.deliver(caf::actor_cast<R>(actor)); },
      // A timeout too: the connection retries its join, which repeats
      // everything above (each step is idempotent) and asks the device
      // actor again; a connection that gives up instead closes, and its
      // down message unregisters it.
      [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

void schedule_tick(self_ptr self) {
  self->delayed_send(self, self->state.opts.idle_ttl / 2,
                     caf::tick_atom::value);
}

} // namespace

device_registry_actor::behavior_type
device_registry_impl(self_ptr self, device_deps deps,
                     device_registry_options opts) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.deps.opts = opts.device;
  st.opts = opts;
  registry_peers::map_changed(self);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    if (auto i = st.by_conn.find(dm.source); i != st.by_conn.end()) {
      auto [user, dev] = i->second;
      st.by_conn.erase(i);
      if (auto* e = find(st, user, dev); e && e->conn == dm.source) {
        e->conn = nullptr;
        e->offline_since = self->clock().now();
      }
      return;
    }
    if (auto i = st.by_device.find(dm.source); i != st.by_device.end()) {
      auto [user, dev] = i->second;
      st.by_device.erase(i);
      auto* e = find(st, user, dev);
      if (!e || e->actor.address() != dm.source)
        return;
      spdlog::warn("device actor failed user={} device={} reason=\"{}\"",
                   user, dev, to_string(dm.reason));
      if (auto conn = caf::actor_cast<caf::actor>(e->conn)) {
        st.by_conn.erase(e->conn);
        caf::anon_send(conn, caf::close_atom::value,
                       code_of(disconnect_cause::device_unavailable),
                       std::string{"device state lost; reconnect and sync"});
      }
      erase(st, user, dev);
    }
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    // A linked device that failed: the down handler cleans up. Anything
    // else: the node stops.
    if (self->state.linked.erase(em.source) == 0)
      self->quit(em.reason);
  });
  schedule_tick(self);
  return {
    [self](deliver_atom, const stored_message& msg,
           const std::vector<user_id>& all) {
      // Other nodes' users: to their registries (device_registry_peers).
      std::vector<user_id> buf;
      auto& to = registry_peers::relay(self, msg, all, buf);
      for_connected(self->state, to, [&](user_id user, device_id dev,
                                         entry& e) {
        if (user == msg.sender_user && dev == msg.sender_device)
          return; // the sending device has it already
        self->send(e.actor, deliver_atom::value, msg);
        ++self->state.forwarded;
      });
    },
    [self](receipt_atom, const receipt_event& ev,
           const std::vector<user_id>& all) {
      std::vector<user_id> buf;
      auto& to = registry_peers::relay(self, ev, all, buf);
      for_connected(self->state, to, [&](user_id, device_id, entry& e) {
        self->send(e.actor, receipt_atom::value, ev);
      });
    },
    [self](caf::update_atom, user_id user, device_id origin,
           const inbox_entry& changed) {
      if (auto at = registry_peers::place(self, user); !at.here) {
        if (at.owner) // else dropped: the other devices see it by sync
          registry_peers::hand_on(self, at.owner);
        return;
      }
      for_connected(self->state, {user}, [&](user_id, device_id dev,
                                             entry& e) {
        if (dev != origin)
          self->send(e.actor, caf::update_atom::value, changed);
      });
    },
    [self](fanout_atom, const stored_message& msg,
           const std::vector<user_id>& users) -> caf::result<uint64_t> {
      auto& st = self->state;
      // A stale route (the sender's map is older) refuses the whole batch,
      // before anything is sent: its members sync, none is pushed twice.
      for (auto u : users)
        if (auto err = check_owned(st, u))
          return err;
      // One message for the whole batch: every device shares its payload.
      auto m = caf::make_message(fanout_atom::value, msg);
      uint64_t n = 0;
      for_connected(st, users, [&](user_id user, device_id dev, entry& e) {
        if (user == msg.sender_user && dev == msg.sender_device)
          return; // the sending device has it already
        caf::anon_send(caf::actor_cast<caf::actor>(e.actor), m);
        ++n;
      });
      st.fanned_out += n;
      return n;
    },
    [self](caf::join_atom, user_id user, device_id dev,
           caf::actor conn) -> caf::result<device_actor> {
      auto at = registry_peers::place(self, user);
      if (at.here)
        return join_here<device_actor>(self, user, dev, std::move(conn));
      if (!at.owner)
        return std::move(at.err);
      return registry_peers::join_at(self, at.owner, user, dev,
                                     std::move(conn));
    },
    [self](caf::join_atom, node_id from, user_id user, device_id dev,
           caf::actor conn) -> caf::result<caf::actor> {
      if (auto err = registry_peers::check_asked_by(self, user, from))
        return err;
      return join_here<caf::actor>(self, user, dev, std::move(conn));
    },
    [self](caf::get_atom, user_id user,
           device_id dev) -> caf::result<device_actor> {
      auto at = registry_peers::place(self, user);
      if (at.here)
        return lookup(self->state, user, dev);
      if (!at.owner)
        return std::move(at.err);
      return registry_peers::get_at(self, at.owner, user, dev);
    },
    [self](caf::get_atom, node_id from, user_id user,
           device_id dev) -> caf::result<caf::actor> {
      if (auto err = registry_peers::check_asked_by(self, user, from))
        return err;
      auto found = lookup(self->state, user, dev);
      if (!found)
        return std::move(found.error());
      return caf::actor_cast<caf::actor>(std::move(*found));
    },
    [self](caf::put_atom, partition_map& next) -> caf::result<uint64_t> {
      if (auto err = self->state.opts.where.replace(std::move(next)))
        return err;
      registry_peers::map_changed(self);
      release_moved(self);
      return self->state.opts.where.map.map_epoch;
    },
    [self](caf::put_atom, node_id n, caf::actor& peer) {
      return registry_peers::set_peer(self, n, std::move(peer));
    },
    [self](caf::put_atom, ack_limit_actor& limits) {
      auto& st = self->state;
      st.deps.limits = limits;
      for (auto& [user, devs] : st.devices)
        for (auto& [dev, e] : devs)
          self->send(e.actor, caf::put_atom::value, limits);
    },
    [self](caf::tick_atom) {
      auto& st = self->state;
      auto now = self->clock().now();
      for (auto u = st.devices.begin(); u != st.devices.end();) {
        for (auto d = u->second.begin(); d != u->second.end();) {
          auto& e = d->second;
          if (!e.conn && now - e.offline_since > st.opts.idle_ttl) {
            st.by_device.erase(e.actor.address());
            st.linked.erase(e.actor.address());
            self->unlink_from(e.actor);
            self->send_exit(e.actor, caf::exit_reason::user_shutdown);
            d = u->second.erase(d);
          } else {
            ++d;
          }
        }
        u = u->second.empty() ? st.devices.erase(u) : std::next(u);
      }
      schedule_tick(self);
    },
  };
}

} // namespace parley
