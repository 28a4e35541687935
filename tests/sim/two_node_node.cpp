// The two-node world's nodes: boot on a node's store, clients of a node,
// crash (kill, drop the link, lose unsynced writes), final stop.

#include "two_node_world.hpp"
#include "random_schedule.hpp"
#include "two_node_actors.hpp"
#include "two_node_detail.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "actors/outbox_relay.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"

namespace parley::sim {

namespace {

/// A planted bug: a store that acknowledges a synced write before it is
/// durable (a power loss may take it).
class sync_ignoring_backend : public kv_backend {
public:
  sync_ignoring_backend(std::shared_ptr<memory_backend> disk, const bool* when)
    : disk_(std::move(disk)), when_(when) {
  }
  caf::error write(const write_batch& batch, bool sync) override {
    return disk_->write(batch, sync && !*when_);
  }
  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    return disk_->get(key);
  }
  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    return disk_->scan(from, to, f);
  }
  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    return disk_->last(from, to);
  }

private:
  std::shared_ptr<memory_backend> disk_;
  const bool* when_; ///< lies only while this is true
};

} // namespace

void two_node_world::boot(node_id n) {
  auto& sys = *sys_;
  auto& nd = at(n);
  ++nd.incarnation;
  nd.up = true;
  auto store = std::shared_ptr<kv_backend>(nd.disk);
  if (k.disk_ignores_sync)
    store = std::make_shared<sync_ignoring_backend>(nd.disk, &faults_on);
  if (leases)
    store = lease_audited(store, this, n);
  auto* sp = &coordinator(sys);
  store_writer_limits wl;
  if (leases) {
    // As parleyd's: the writer refuses at the lease thread's published
    // deadline, here on the virtual clock the keeper runs on; fenced (0)
    // until this incarnation's keeper registers.
    auto& nl = leases->nodes[n - 1];
    nl.deadline = std::make_shared<std::atomic<int64_t>>(0);
    if (k.lease_deadline && !k.lease_deadline_not_given) // else the bug
      wl.lease_deadline = nl.deadline;
    wl.lease_clock = [sp] {
      return int64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                       sp->clock().current_time.time_since_epoch())
                       .count());
    };
  }
  nd.writer = sys.spawn(store_writer_impl, store, std::move(wl));
  if (leases)
    lease_boot(n); // the writer starts fenced; its keeper ticks
  nd.reader = sys.spawn(store_reader_impl,
                        std::shared_ptr<kv_backend>(nd.disk), uint64_t{50});
  nd.delivery = spawn_node_recorder(sys, this, n);
  conversation_limits lim;
  lim.idempotency_cache = 8;   // small, so lookups hit the store too
  lim.idempotency_filter = 16; // and past it, every new key is looked up
  auto epoch = virtual_epoch_ms_;
  clock_fn clock = [sp, epoch] {
    using namespace std::chrono;
    return epoch
           + duration_cast<milliseconds>(
               sp->clock().current_time.time_since_epoch())
               .count();
  };
  conversation_deps deps{nd.writer, nd.reader, nd.delivery, clock, lim};
  nd.inbox = sys.spawn(inbox_supervisor_impl,
                       std::shared_ptr<kv_backend>(nd.disk), nd.writer,
                       false, false, caf::timespan{0}, caf::timespan{0},
                       std::shared_ptr<node_metrics>{});
  deps.projection = caf::actor_cast<delivery_actor>(nd.inbox);
  directory_peers peers;
  peers.emplace(other(n), caf::actor_cast<directory_actor>(
                            net_->directory_port(n, other(n))));
  nd.directory = sys.spawn(routing_directory_impl, std::move(deps),
                           placement{n, map}, std::move(peers));
  // The inbox reads and sends rows through the directory, then reconciles
  // what the node owns, as parleyd's does.
  caf::anon_send(nd.inbox, caf::put_atom::value, nd.directory,
                 map.partitions());
  caf::anon_send(nd.inbox, rebuild_atom::value, user_id{0}, false);
  map_keeper_deps keep; // the writer learns the map from it now
  keep.subscribers = {map_subscriber::of_writer(nd.writer),
                      map_subscriber::of("directory", nd.directory,
                                         map.map_epoch)};
  nd.keeper = sys.spawn(map_keeper_impl, placement{n, map}, std::move(keep));
  nd.others.push_back(sys.spawn(outbox_relay_impl, nd.reader, nd.directory));
  net_->set_directory(n, caf::actor_cast<caf::strong_actor_ptr>(nd.directory));
}

void two_node_world::spawn_clients(node_id n) {
  for (int c = 0; c < k.clients; ++c) {
    if (homes[c] != n)
      continue;
    routed_plan plan{n, convs[c % convs.size()], user_id(100 + c), {},
                     tagged[c]};
    for (int i = 0; i < k.messages; ++i) {
      auto cmid = "c" + std::to_string(c) + "-m" + std::to_string(i);
      auto& o = outcomes[cmid];
      o.conv = plan.conv;
      o.user = plan.user;
      if (o.answers.empty())
        plan.cmids.push_back(std::move(cmid));
    }
    at(n).others.push_back(spawn_routed_client(*sys_, this, std::move(plan)));
  }
}

void two_node_world::crash(node_id n) {
  if (std::getenv("PARLEY_SIM_DEBUG"))
    fprintf(stderr, "step %llu crash node %llu\n", (unsigned long long)steps,
            (unsigned long long)n);
  auto& nd = at(n);
  auto& sched = coordinator(*sys_);
  net_->set_directory(n, nullptr); // connections to and from n reset
  nd.up = false;
  // Kill every actor of the node: the directory takes its conversations
  // with it (linked). Run until they are all gone; the other node may run
  // meanwhile, but nothing crosses the link and n's disk takes no write.
  std::vector<caf::strong_actor_ptr> victims;
  auto add = [&](auto hdl) {
    victims.push_back(caf::actor_cast<caf::strong_actor_ptr>(hdl));
  };
  for (auto& [id, conv] : state_of(nd.directory).conversations)
    add(conv);
  for (auto& a : nd.others)
    add(a);
  add(nd.directory);
  add(nd.keeper);
  add(nd.writer);
  add(nd.reader);
  add(nd.delivery);
  if (leases && leases->nodes[n - 1].ticker)
    add(leases->nodes[n - 1].ticker); // its lease runs out in the double
  {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(nd.inbox);
    auto& st = dynamic_cast<caf::stateful_actor<
      inbox_supervisor_state, inbox_supervisor_actor::base>&>(*ptr)
                 .state;
    if (st.worker)
      add(st.worker);
    add(nd.inbox);
  }
  auto alive = std::make_shared<size_t>(victims.size());
  for (auto& v : victims) {
    caf::actor_cast<caf::abstract_actor*>(v)->attach_functor(
      [alive] { --*alive; });
    caf::anon_send_exit(v, caf::exit_reason::kill);
  }
  auto live_disk = nd.disk->fail_write;
  nd.disk->fail_write = [](const write_batch&) { return true; };
  for (int i = 0; i < 1000000 && *alive > 0 && sched.has_job(); ++i)
    fnv(trace_hash, run_one_random(sched, sched_rng));
  nd.others.clear();
  nd.directory = nullptr;
  nd.keeper = nullptr;
  nd.writer = nullptr;
  nd.reader = nullptr;
  nd.delivery = nullptr;
  nd.inbox = nullptr;
  if (leases)
    lease_crash(n);
  if (k.power_loss && !stopping_)
    two_node_grand_totals().lost_unsynced += nd.disk->lose_unsynced();
  nd.disk->fail_write = live_disk;
  if (!stopping_)
    ++two_node_grand_totals().node_crashes;
  fnv(trace_hash, 0xC2A5400 + n);
}

void two_node_world::stop_all() {
  stopping_ = true;
  for (node_id n : {1, 2})
    if (at(n).up)
      crash(n);
  net_->clear();
  auto& sched = coordinator(*sys_);
  for (int i = 0; i < 1000000 && sched.has_job(); ++i)
    sched.run_once();
  net_.reset();
  sys_.reset();
  leases.reset(); // after the tickers (their keepers use its clients)
  cfg_.reset();
}

} // namespace parley::sim
