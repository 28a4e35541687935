// cluster_member's peer thread (runtime/cluster_member.hpp, step 3): keeps
// a BASP connection to every other registered node and the node's actors
// told who their peers are.
//
// It reconciles, at least once a second and on every change: `wanted` (the
// nodes/ keys in etcd, kept by a watch) against `connected`. A node
// registered but not connected is connected (the middleman's connect, at
// most connect_timeout, then its front's actors, at most ask_timeout); a
// node connected but no longer registered, registered again under another
// incarnation, or whose connection dropped (the proxy's functor) is
// forgotten at once: every local actor gets (put_atom, id, null actor) and
// answers requests for its partitions with unavailable until it is back.

#include <chrono>

#include <spdlog/spdlog.h>

#include <caf/io/middleman.hpp>
#include <caf/io/middleman_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "runtime/cluster_member_detail.hpp"
#include "runtime/core/type_ids.hpp"

namespace parley {

namespace {

using namespace std::chrono_literals;
using state = cluster_member::state;

constexpr auto connect_timeout = 3s;
constexpr auto ask_timeout = 3s;
constexpr auto etcd_check_interval = 2s;

/// Tells the local actors that `peer` (null: none) now serves node `id`.
void tell_locals(state& st, node_id id, const node_actors& peer) {
  caf::anon_send(st.local.directory, caf::put_atom::value, id,
                 peer.directory);
  caf::anon_send(st.local.registry, caf::put_atom::value, id, peer.registry);
  caf::anon_send(st.local.accounts, caf::put_atom::value, id, peer.accounts);
  // The fan-out's shards deliver to each node's registry.
  caf::anon_send(st.local.fanout, caf::put_atom::value, id, peer.registry);
}

/// Connects to `r` and fetches its actors; the front, or null.
caf::actor connect(state& st, const node_registration& r, node_actors& out) {
  caf::scoped_actor self{st.sys};
  caf::actor front;
  std::string why;
  self
    ->request(cluster::peer_middleman(st.sys, st.tls()), connect_timeout,
              caf::connect_atom::value, r.at.host, r.at.port)
    .receive(
      [&](const caf::node_id&, caf::strong_actor_ptr& ptr,
          const std::set<std::string>&) {
        front = caf::actor_cast<caf::actor>(std::move(ptr));
      },
      [&](caf::error& err) { why = st.sys.render(err); });
  if (!front) {
    if (why.empty())
      why = "nothing published there";
    spdlog::debug("cannot connect to node={} address={}:{} error=\"{}\"",
                  r.node, r.at.host, r.at.port, why);
    return {};
  }
  bool ok = false;
  // The hello: this node's actors go with the question, so the dialled
  // node needs no connection of its own back (CAF's openssl module hangs
  // a second connection between two nodes that already have one).
  auto& me = st.local;
  self
    ->request(front, ask_timeout, caf::get_atom::value, st.opts.node,
              me.directory, me.registry, me.accounts, me.fanout, me.mover)
    .receive(
      [&](node_id id, caf::actor d, caf::actor g, caf::actor a,
          caf::actor f, caf::actor m) {
        if (id != r.node) {
          why = "it says it is node " + std::to_string(id);
          return;
        }
        out = {std::move(d), std::move(g), std::move(a), std::move(f),
               std::move(m)};
        ok = true;
      },
      [&](caf::error& err) { why = st.sys.render(err); });
  if (!ok) {
    spdlog::debug("node={} did not hand out its actors error=\"{}\"", r.node,
                  why);
    return {};
  }
  return front;
}

/// Reads nodes/ and watches it from there (again after a compaction).
void watch_nodes(const std::shared_ptr<state>& sp) {
  auto& st = *sp;
  auto prefix = st.opts.prefix() + "nodes/";
  auto r = st.cp->range(prefix);
  if (!r) {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.rewatch_nodes = true; // the next pass tries again
    return;
  }
  std::map<node_id, node_registration> found;
  for (auto& kv : r->kvs)
    if (auto reg = parse_registration(kv.value); reg && reg->node != st.opts.node)
      found[reg->node] = *reg;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.wanted = std::move(found);
    st.rewatch_nodes = false;
  }
  std::weak_ptr<state> weak = sp;
  auto on_event = [weak, prefix](const cluster::watch_event& ev) {
    auto p = weak.lock();
    if (!p)
      return;
    std::lock_guard<std::mutex> guard{p->mtx};
    if (ev.type == cluster::watch_event::kind::put) {
      auto reg = parse_registration(ev.value);
      if (reg && reg->node != p->opts.node)
        p->wanted[reg->node] = *reg;
    } else {
      auto id = ev.key.substr(prefix.size());
      if (!id.empty() && id.find_first_not_of("0123456789") == std::string::npos
          && id.size() < 6)
        p->wanted.erase(std::stoull(id));
    }
    p->cv.notify_all();
  };
  auto on_failure = [weak](const cluster::cp_error& err) {
    if (auto p = weak.lock()) {
      spdlog::warn("watch of the node registrations ended error=\"{}\"; "
                   "reading them again",
                   err.message);
      std::lock_guard<std::mutex> guard{p->mtx};
      p->rewatch_nodes = true;
      p->cv.notify_all();
    }
  };
  if (st.nodes_watch)
    st.nodes_watch->cancel();
  st.nodes_watch = st.cp->watch(prefix, r->revision + 1, on_event, on_failure);
}

/// Records `peer` (reached through `watched`, whose end means the
/// connection dropped) as node reg.node's actors and tells the local
/// actors. False if the member is stopping.
bool take_peer(const std::shared_ptr<state>& sp, const node_registration& reg,
               const caf::actor& watched, const node_actors& peer) {
  auto& st = *sp;
  auto id = reg.node;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    if (st.stopping)
      return false;
    st.connected[id] = {reg.incarnation, watched, peer};
    tell_locals(st, id, peer);
  }
  spdlog::info("peer node={} connected address={}:{} incarnation={} "
               "dialled={}",
               id, reg.at.host, reg.at.port, reg.incarnation,
               id > st.opts.node);
  // The proxy ends when the connection drops (at once if it already has:
  // then the next pass forgets it and dials or waits again).
  std::weak_ptr<state> weak = sp;
  watched->attach_functor([weak, id] {
    if (auto p = weak.lock()) {
      std::lock_guard<std::mutex> g{p->mtx};
      p->lost.insert(id);
      p->cv.notify_all();
    }
  });
  return true;
}

void run_peers(std::shared_ptr<state> sp) {
  auto& st = *sp;
  watch_nodes(sp);
  auto next_check = std::chrono::steady_clock::now();
  // Nodes whose dial failed: when to try again, and the pause after the
  // next failure (doubling from 1 s to 10 s; reset by a success or a new
  // registration). Redialing a node every second that refuses the TLS
  // handshake (no certificate) made CAF 0.17.6's openssl module drop the
  // healthy TLS links of this node now and then (helper G's finding).
  struct retry {
    std::string incarnation;
    std::chrono::steady_clock::time_point at;
    std::chrono::milliseconds pause{1000};
  };
  std::map<node_id, retry> failing;
  for (;;) {
    std::vector<node_id> forget;
    std::vector<node_registration> dial;
    std::vector<std::pair<node_registration, node_actors>> adopt;
    bool rewatch = false;
    {
      std::unique_lock<std::mutex> guard{st.mtx};
      st.cv.wait_for(guard, 1s);
      if (st.stopping)
        break;
      for (auto i = st.connected.begin(); i != st.connected.end();) {
        auto w = st.wanted.find(i->first);
        auto lost = st.lost.count(i->first) > 0;
        if (w == st.wanted.end() || w->second.incarnation != i->second.incarnation
            || lost) {
          // A lower-numbered node whose registration lapsed (frozen past
          // its lease, etcd away) but whose connection still stands will
          // not say hello again: keep its actors for when it registers
          // again (a restart's new hello replaces them).
          if (!lost && i->first < st.opts.node)
            st.inbound.emplace(i->first, i->second.actors);
          forget.push_back(i->first);
          i = st.connected.erase(i);
        } else {
          ++i;
        }
      }
      st.lost.clear();
      // Of each pair of nodes the lower-numbered one dials (one BASP
      // connection per pair); the higher one adopts the actors its hello
      // brought.
      for (auto& [id, reg] : st.wanted) {
        if (st.connected.count(id))
          continue;
        if (id > st.opts.node) {
          dial.push_back(reg);
        } else if (auto i = st.inbound.find(id); i != st.inbound.end()) {
          adopt.emplace_back(reg, std::move(i->second));
          st.inbound.erase(i);
        }
      }
      rewatch = st.rewatch_nodes;
    }
    for (auto id : forget) {
      spdlog::warn("peer node={} gone: its partitions answer unavailable "
                   "here until it is back",
                   id);
      tell_locals(st, id, {});
    }
    for (auto& [reg, peer] : adopt)
      take_peer(sp, reg, peer.directory, peer);
    for (auto& reg : dial) {
      auto now = std::chrono::steady_clock::now();
      auto f = failing.find(reg.node);
      if (f != failing.end() && f->second.incarnation == reg.incarnation
          && now < f->second.at)
        continue; // backing off
      node_actors peer;
      auto front = connect(st, reg, peer);
      if (!front) {
        if (f == failing.end() || f->second.incarnation != reg.incarnation) {
          spdlog::warn("cannot reach node={} at {}:{} yet; retrying",
                       reg.node, reg.at.host, reg.at.port);
          f = failing.insert_or_assign(reg.node, retry{reg.incarnation, now,
                                                       std::chrono::seconds(1)})
                .first;
        }
        auto& r = f->second;
        r.at = std::chrono::steady_clock::now() + r.pause;
        r.pause = std::min<std::chrono::milliseconds>(r.pause * 2,
                                                      std::chrono::seconds(10));
        continue;
      }
      failing.erase(reg.node);
      if (!take_peer(sp, reg, front, peer))
        break;
    }
    if (rewatch)
      watch_nodes(sp);
    bool pending = false;
    {
      std::lock_guard<std::mutex> guard{st.mtx};
      pending = st.live_pending;
    }
    if (pending && st.lease->may_write() && refresh_map(st)) {
      std::lock_guard<std::mutex> guard{st.mtx};
      if (st.live_pending) {
        st.live_pending = false;
        st.lease_live = true;
        st.etcd_up = true;
        report_lease(st);
        spdlog::info("lease live again with the current map");
      }
    }
    if (std::chrono::steady_clock::now() >= next_check) {
      st.etcd_up = st.cp->healthy();
      next_check = std::chrono::steady_clock::now() + etcd_check_interval;
    }
  }
}

} // namespace

void inbound_hello(state& st, node_id from, node_actors actors) {
  std::lock_guard<std::mutex> guard{st.mtx};
  st.inbound[from] = std::move(actors);
  st.cv.notify_all();
}

void start_peers(const std::shared_ptr<state>& sp) {
  sp->peers_thread = std::thread{run_peers, sp};
}

void stop_peers(state& st) {
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.stopping = true;
    st.cv.notify_all();
  }
  if (st.peers_thread.joinable())
    st.peers_thread.join();
  if (st.nodes_watch)
    st.nodes_watch->cancel();
}

} // namespace parley
