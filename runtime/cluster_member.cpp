#include "runtime/cluster_member.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/cluster_member_detail.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/lease_state.hpp"
#include "runtime/core/type_ids.hpp"
#include "runtime/node.hpp"

namespace parley {

namespace {

using namespace std::chrono_literals;
/// The front: answers the node's actors to peers (once attach() gave them);
/// takes them only from its own node.
struct front_state {
  node_actors actors;
  bool ready = false;
  static inline const char* name = "cluster_front";
};

caf::behavior front_impl(caf::stateful_actor<front_state>* self, node_id me,
                         std::weak_ptr<cluster_member::state> member) {
  using bundle = caf::result<node_id, caf::actor, caf::actor, caf::actor,
                             caf::actor, caf::actor>;
  return {
    // A lower-numbered node dialled this one and says who it is: its
    // actors arrive over the connection it opened (cluster_peers.cpp).
    [self, me, member](caf::get_atom, node_id from, caf::actor d,
                       caf::actor r, caf::actor a, caf::actor f,
                       caf::actor m) -> bundle {
      if (!self->state.ready)
        return caf::make_error(errc::unavailable, "node starting");
      auto sender = self->current_sender();
      bool same_node = sender && d && r && a && f && m;
      for (auto* x : {&d, &r, &a, &f, &m})
        same_node = same_node && (*x)->node() == sender->node();
      if (!same_node || from == me || sender->node() == self->node())
        return caf::make_error(errc::bad_request, "not a peer's hello");
      if (auto sp = member.lock())
        inbound_hello(*sp, from,
                      {std::move(d), std::move(r), std::move(a),
                       std::move(f), std::move(m)});
      auto& x = self->state.actors;
      return {me, x.directory, x.registry, x.accounts, x.fanout, x.mover};
    },
    [self](caf::put_atom, caf::actor d, caf::actor r, caf::actor a,
           caf::actor f, caf::actor m) {
      auto from = self->current_sender();
      if (!from || from->node() != self->node())
        return;
      self->state.actors = {std::move(d), std::move(r), std::move(a),
                            std::move(f), std::move(m)};
      self->state.ready = true;
    },
    [self, me](caf::get_atom)
      -> caf::result<node_id, caf::actor, caf::actor, caf::actor,
                     caf::actor, caf::actor> {
      if (!self->state.ready)
        return caf::make_error(errc::unavailable, "node starting");
      auto& x = self->state.actors;
      return {me, x.directory, x.registry, x.accounts, x.fanout, x.mover};
    },
  };
}

} // namespace

std::string map_key(const cluster::cluster_options& o) {
  return o.prefix() + "map";
}

std::optional<map_at> read_map(cluster_member::state& st) {
  auto key = map_key(st.opts);
  auto r = st.cp->range(key);
  if (!r)
    return std::nullopt;
  for (auto& kv : r->kvs)
    if (kv.key == key)
      if (auto m = parse_map(kv.value))
        return map_at{*m, kv.mod_revision};
  return std::nullopt;
}

void report_lease(cluster_member::state& st) {
  ++st.lease_generation;
  if (st.writer)
    caf::anon_send(st.writer, caf::put_atom::value,
                   lease_state{st.lease_live, st.lease_generation});
}

cluster_member::cluster_member(caf::actor_system& sys,
                               cluster::cluster_options opts)
  : st_(std::make_shared<state>(sys, std::move(opts))) {
}

cluster_member::~cluster_member() {
  leave();
}

std::string cluster_member::join(uint32_t partitions) {
  auto& st = *st_;
  auto& o = st.opts;
  auto listen = cluster::parse_host_port(o.listen);
  auto etcd_at = cluster::parse_host_port(o.etcd.substr(7));
  if (!listen || !etcd_at)
    return "bad cluster addresses (validate() first)";
  cluster::etcd_options eo;
  eo.at = {etcd_at->host, etcd_at->port};
  st.cp = std::make_unique<cluster::etcd_client>(eo);
  // Publish the front first: its port goes into the registration.
  st.front = st.sys.spawn(front_impl, o.node, std::weak_ptr<state>{st_});
  auto port = cluster::publish_peer(st.sys, st.front, listen->host,
                                    listen->port, st.tls());
  if (!port)
    return "cannot listen for nodes on " + o.listen + ": "
           + st.sys.render(port.error());
  st.self = {o.node, {listen->host, *port},
             std::to_string(system_clock_ms())};
  spdlog::info("cluster listening node={} address={} port={} tls={}",
               o.node, listen->host, *port, st.tls().enabled());
  // Another process registered as this node: wait for its lease to lapse
  // (a restart after kill -9), else refuse (two processes, one id).
  auto key = o.prefix() + "nodes/" + std::to_string(o.node);
  auto give_up = std::chrono::steady_clock::now() + o.lease_ttl + 3s;
  for (;;) {
    auto r = st.cp->range(key);
    if (!r)
      return "cannot reach etcd at " + o.etcd + ": " + r.error().message;
    if (r->kvs.empty())
      break;
    if (std::chrono::steady_clock::now() > give_up)
      return "node id " + std::to_string(o.node)
             + " is registered by another live process ("
             + r->kvs.front().value + ")";
    spdlog::info("node id {} still registered by an earlier process; "
                 "waiting for its lease to lapse",
                 o.node);
    std::this_thread::sleep_for(250ms);
  }
  cluster::lease_keeper_options lo;
  lo.key = key;
  lo.value = registration_json(st.self);
  lo.ttl = o.lease_ttl;
  lo.margin = o.fence_margin;
  std::weak_ptr<state> weak = st_;
  st.lease = std::make_unique<cluster::lease_runner>(
    *st.cp, lo, [weak](bool live) {
      auto sp = weak.lock();
      if (!sp)
        return;
      bool attached = false;
      {
        std::lock_guard<std::mutex> guard{sp->mtx};
        attached = static_cast<bool>(sp->writer);
        sp->live_pending = false;
      }
      // A lease regained (after a pause, a freeze, etcd away): the map may
      // have moved on meanwhile, and the watch may not have said so yet.
      // Write again only with the map etcd holds now.
      if (live && attached && !refresh_map(*sp)) {
        std::lock_guard<std::mutex> guard{sp->mtx};
        sp->live_pending = true; // the peer thread retries
        spdlog::warn("lease renewed, but the partition map could not be "
                     "re-read yet: still fenced");
        return;
      }
      std::lock_guard<std::mutex> guard{sp->mtx};
      sp->lease_live = live;
      if (live)
        sp->etcd_up = true; // it just answered (the peer thread re-checks)
      if (live)
        spdlog::info("lease live: writing for this node's partitions");
      else
        spdlog::warn("lease not renewed in time: fenced, writes for this "
                     "node's partitions refused until it is");
      report_lease(*sp);
      sp->cv.notify_all();
    });
  {
    std::unique_lock<std::mutex> guard{st.mtx};
    if (!st.cv.wait_for(guard, o.lease_ttl * 2,
                        [&] { return st.lease_live; }))
      return "cannot register with etcd at " + o.etcd + " within "
             + std::to_string(2 * o.lease_ttl.count()) + " s";
  }
  // The map: read it, or create it if no node has (a transaction: of two
  // nodes starting at once, one creates it, the other reads it).
  partition_map first;
  first.map_epoch = 1;
  auto owners = o.initial_nodes.empty() ? std::vector<uint64_t>{o.node}
                                        : o.initial_nodes;
  auto count = partitions ? partitions : default_partitions;
  for (uint32_t p = 0; p < count; ++p)
    first.owners.push_back(owners[p % owners.size()]);
  cluster::txn_request create;
  create.compares.push_back(
    {map_key(o), cluster::txn_compare::target_kind::create_revision, 0, {}});
  create.success.push_back(
    {cluster::txn_op::kind::put, map_key(o), map_json(first), 0});
  create.failure.push_back({cluster::txn_op::kind::range, map_key(o), {}, 0});
  auto t = st.cp->txn(create);
  if (!t)
    return "cannot read the partition map from etcd: " + t.error().message;
  if (t->succeeded) {
    st.map = first;
    spdlog::info("partition map created map_epoch=1 partitions={} owners={}",
                 count, map_json(first));
  } else {
    std::optional<partition_map> found;
    if (!t->ranges.empty() && !t->ranges.front().kvs.empty())
      found = parse_map(t->ranges.front().kvs.front().value);
    if (!found)
      return "the partition map in etcd (" + map_key(o) + ") is malformed";
    st.map = *found;
    spdlog::info("partition map read map_epoch={} partitions={}",
                 st.map.map_epoch, st.map.partitions());
  }
  st.map_revision = t->revision;
  return {};
}

bool refresh_map(cluster_member::state& st) {
  auto at = read_map(st);
  if (!at)
    return false;
  auto now = std::optional<partition_map>{std::move(at->map)};
  caf::actor keeper;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    if (now->map_epoch <= st.map.map_epoch)
      return true;
    keeper = st.keeper;
  }
  bool taken = false;
  caf::scoped_actor self{st.sys};
  self->request(keeper, 3s, caf::put_atom::value, *now)
    .receive([&](uint64_t) { taken = true; }, [](caf::error&) {});
  if (!taken)
    return false;
  std::lock_guard<std::mutex> guard{st.mtx};
  if (now->map_epoch > st.map.map_epoch)
    st.map = *now;
  spdlog::info("partition map re-read map_epoch={}", now->map_epoch);
  return true;
}

std::shared_ptr<const std::atomic<int64_t>>
cluster_member::lease_deadline() const {
  return st_->lease ? st_->lease->deadline() : nullptr;
}

partition_map cluster_member::map() const {
  std::lock_guard<std::mutex> guard{st_->mtx};
  return st_->map;
}

void cluster_member::attach(const node& n, std::shared_ptr<kv_backend> kv) {
  auto& st = *st_;
  auto keeper = caf::actor_cast<caf::actor>(n.map_keeper());
  st.local = {caf::actor_cast<caf::actor>(n.directory()),
              caf::actor_cast<caf::actor>(n.registry()),
              caf::actor_cast<caf::actor>(n.accounts()),
              caf::actor_cast<caf::actor>(n.fanout()),
              spawn_move_agent(st.sys, std::move(kv), keeper,
                               caf::actor_cast<caf::actor>(n.writer()),
                               st.opts.node)};
  {
    caf::scoped_actor self{st.sys};
    self->send(st.front, caf::put_atom::value, st.local.directory,
               st.local.registry, st.local.accounts, st.local.fanout,
               st.local.mover);
  }
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.writer = caf::actor_cast<caf::actor>(n.writer());
    st.keeper = caf::actor_cast<caf::actor>(n.map_keeper());
    report_lease(st);
  }
  // Each newer map goes to the keeper; the watch's thread waits for it.
  std::weak_ptr<state> weak = st_;
  auto key = map_key(st.opts);
  st.map_watch = st.cp->watch(
    key, st.map_revision + 1, [weak, key](const cluster::watch_event& ev) {
      auto sp = weak.lock();
      if (!sp || ev.key != key || ev.type != cluster::watch_event::kind::put)
        return;
      auto next = parse_map(ev.value);
      if (!next) {
        spdlog::error("malformed partition map in etcd ignored value={}",
                      ev.value);
        return;
      }
      caf::actor keeper;
      {
        std::lock_guard<std::mutex> guard{sp->mtx};
        if (next->map_epoch <= sp->map.map_epoch || sp->stopping)
          return;
        keeper = sp->keeper;
      }
      caf::scoped_actor self{sp->sys};
      for (int attempt = 1; attempt <= 20; ++attempt) {
        bool done = false;
        self->request(keeper, 5s, caf::put_atom::value, *next)
          .receive([&](uint64_t) { done = true; },
                   [&](caf::error& err) {
                     spdlog::warn("map_epoch={} not taken yet attempt={} "
                                  "error=\"{}\"",
                                  next->map_epoch, attempt,
                                  sp->sys.render(err));
                   });
        if (done)
          break;
        std::this_thread::sleep_for(250ms);
      }
      std::lock_guard<std::mutex> guard{sp->mtx};
      sp->map = *next;
      spdlog::info("partition map taken map_epoch={}", next->map_epoch);
    });
  start_peers(st_);
}

void cluster_member::leave() {
  auto& st = *st_;
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    if (st.stopping)
      return;
    st.stopping = true;
    st.cv.notify_all();
  }
  stop_peers(st);
  if (st.move_thread.joinable())
    st.move_thread.join(); // it sees `stopping` within a request's timeout
  if (st.map_watch)
    st.map_watch->cancel();
  if (st.local.mover)
    caf::anon_send_exit(st.local.mover, caf::exit_reason::user_shutdown);
  if (st.lease)
    st.lease->stop(true);
  if (st.front) {
    st.sys.middleman().unpublish(st.front, st.self.at.port);
    caf::anon_send_exit(st.front, caf::exit_reason::user_shutdown);
  }
}

std::string cluster_member::health_fields() const {
  auto& st = *st_;
  std::lock_guard<std::mutex> guard{st.mtx};
  std::string owned, peers;
  for (uint32_t p = 0; p < st.map.owners.size(); ++p)
    if (st.map.owners[p] == st.opts.node)
      owned += (owned.empty() ? "" : ",") + std::to_string(p);
  for (auto& [id, _] : st.connected)
    peers += (peers.empty() ? "" : ",") + std::to_string(id);
  return "\"node\":" + std::to_string(st.opts.node) + ",\"cluster\":{\"name\":"
         + json_quote(st.opts.name)
         + ",\"map_epoch\":" + std::to_string(st.map.map_epoch)
         + ",\"owned\":[" + owned + "],\"peers\":[" + peers
         + "],\"etcd\":" + (st.etcd_up ? "\"ok\"" : "\"unreachable\"")
         + ",\"lease\":" + (st.lease_live ? "\"live\"" : "\"fenced\"") + "}";
}

std::string cluster_member::metrics() const {
  auto& st = *st_;
  std::lock_guard<std::mutex> guard{st.mtx};
  size_t owned = 0;
  for (auto o : st.map.owners)
    owned += o == st.opts.node;
  auto line = [](const char* name, const char* help, uint64_t v) {
    return std::string("# HELP ") + name + " " + help + "\n# TYPE " + name
           + " gauge\n" + name + " " + std::to_string(v) + "\n";
  };
  return line("parley_cluster_map_epoch", "epoch of the partition map held",
              st.map.map_epoch)
         + line("parley_cluster_partitions_owned",
                "partitions this node owns", owned)
         + line("parley_cluster_peers", "other nodes connected over BASP",
                st.connected.size())
         + line("parley_cluster_etcd_up", "1 if etcd answered last time",
                st.etcd_up ? 1 : 0)
         + line("parley_cluster_lease_live",
                "1 if the node may write for its partitions",
                st.lease_live ? 1 : 0);
}

} // namespace parley
