#include "runtime/node.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "actors/outbox_relay.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout_migration.hpp"
#include "runtime/store/meta_store.hpp"

namespace parley {

int64_t system_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
    .count();
}

node::node(caf::actor_system& sys, node_options opts)
  : sys_(sys),
    opts_(std::move(opts)),
    metrics_(std::make_shared<node_metrics>()) {
  opts_.writer.metrics = metrics_;
  if (!opts_.clock)
    opts_.clock = system_clock_ms;
  // A serving node records when each device was last seen (user show).
  if (opts_.gateway && !opts_.devices.device.wall_clock)
    opts_.devices.device.wall_clock = opts_.clock;
}

node::~node() {
  stop();
}

std::string node::start() {
  store::migration_options migrate;
  migrate.log = [](const std::string& line) { spdlog::info("{}", line); };
  auto layout = store::settle_layout(*opts_.kv, migrate);
  if (!layout)
    return "key layout: " + sys_.render(layout.error());
  spdlog::info("key layout={} found={} moved={}", keys::layout_version,
               layout->found, layout->moved);
  auto partitions = store::settle_partitions(*opts_.kv, opts_.partitions,
                                             default_partitions);
  if (!partitions)
    return "partitions: " + sys_.render(partitions.error());
  // User ids are allocated per partition, each above the old global counter.
  if (auto err = store::settle_user_counters(*opts_.kv, *partitions))
    return "user id counters: " + sys_.render(err);
  opts_.accounts.partitions = *partitions;
  opts_.accounts.self = opts_.self;
  auto where = placement::single_node(*partitions, opts_.self);
  if (opts_.map) {
    if (opts_.map->partitions() != *partitions)
      return "the cluster's partition map has "
             + std::to_string(opts_.map->partitions())
             + " partitions, the store here "
             + std::to_string(*partitions)
             + " (every node of a cluster uses the same --partitions)";
    where = placement{opts_.self, *opts_.map};
    opts_.accounts.map = *opts_.map;
  }
  opts_.devices.where = where;
  spdlog::info("placement partitions={} node={} map_epoch={}", *partitions,
               opts_.self, where.map.map_epoch);
  if (opts_.detach_store) {
    writer_ = sys_.spawn<caf::detached>(store_writer_impl, opts_.kv,
                                        opts_.writer);
    reader_ = sys_.spawn<caf::detached>(store_reader_impl, opts_.kv,
                                        opts_.sync_recent);
  } else {
    writer_ = sys_.spawn(store_writer_impl, opts_.kv, opts_.writer);
    reader_ = sys_.spawn(store_reader_impl, opts_.kv, opts_.sync_recent);
  }
  registry_ = sys_.spawn(device_registry_impl,
                         device_deps{{}, writer_, metrics_, {}},
                         opts_.devices);
  delivery_ = opts_.delivery ? opts_.delivery
                             : caf::actor_cast<delivery_actor>(registry_);
  opts_.fanout.own_threads = opts_.fanout.own_threads && opts_.detach_store;
  // Shards address the registry owning each member's partition (this
  // node's for all of them today).
  fanout_ = sys_.spawn(fanout_impl,
                       fanout_deps{where, {{where.self, registry_}}, delivery_,
                                   metrics_},
                       opts_.fanout);
  // Reconciles once it has the directory (below).
  inbox_ = sys_.spawn(inbox_supervisor_impl, opts_.kv, writer_,
                      opts_.detach_store, false,
                      caf::timespan{opts_.inbox_flush_delay},
                      caf::timespan{opts_.inbox_batch_delay}, metrics_);
  directory_ = sys_.spawn(placed_directory_impl,
                          conversation_deps{writer_, reader_, delivery_,
                                            opts_.clock, opts_.conversation,
                                            metrics_,
                                            caf::actor_cast<delivery_actor>(
                                              inbox_),
                                            opts_.delivery
                                              ? delivery_actor{}
                                              : caf::actor_cast<delivery_actor>(
                                                fanout_)},
                          where);
  accounts_ = sys_.spawn<caf::detached>(accounts_impl, opts_.kv, writer_,
                                       opts_.accounts, opts_.clock);
  // The inbox reads and sends its rows through the directory; then it
  // reconciles the partitions this node owns (parleyd; tests may not).
  caf::anon_send(inbox_, caf::put_atom::value, directory_, *partitions);
  if (opts_.detach_store)
    caf::anon_send(inbox_, rebuild_atom::value, user_id{0}, false);
  // Device actors ask the directory for delivered-cursor limits (routed by
  // the conversation's partition). Sent before the gateway starts, so it
  // is in the registry's mailbox ahead of any join.
  caf::anon_send(registry_, caf::put_atom::value,
                 caf::actor_cast<ack_limit_actor>(directory_));
  // The one call for a new map (actors/map_keeper.hpp: why this order).
  // The writer and the inbox learn the map now; the others were spawned
  // with it. The inbox forgets the rows it cached of partitions that
  // change owner before the directory routes to the new owner.
  auto epoch = where.map.map_epoch;
  map_keeper_deps keep;
  keep.subscribers = {
    map_subscriber::of_writer(writer_),
    map_subscriber::of("device registry", registry_, epoch),
    map_subscriber::of("accounts", accounts_, epoch),
    map_subscriber::of("inbox", inbox_, 0),
    map_subscriber::of("directory", directory_, epoch),
    map_subscriber::of("fan-out", fanout_, epoch),
  };
  keeper_ = sys_.spawn(map_keeper_impl, where, std::move(keep));
  running_ = true;
  sys_.spawn(outbox_relay_impl, reader_, directory_);
  if (opts_.gateway) {
    gateway_ = std::make_unique<gateway::gateway>(
      sys_, *opts_.gateway,
      gateway::gateway_actors{accounts_, directory_, registry_, reader_,
                              metrics_,
                              caf::actor_cast<inbox_actor>(inbox_),
                              cluster_report_});
    if (auto err = gateway_->start(); !err.empty())
      return err;
    spdlog::info("gateway listening address={} port={}",
                 opts_.gateway->server.address, gateway_->port());
  }
  return {};
}

void node::stop() {
  if (!running_)
    return;
  running_ = false;
  if (gateway_)
    gateway_->stop(); // no new requests; sessions close
  caf::scoped_actor self{sys_};
  std::vector<conversation_actor> convs;
  // Bounded waits: a stop goes on whatever does not answer (and says so).
  self->request(directory_, timeouts::ask, caf::get_atom::value)
    .receive([&](std::vector<conversation_actor>& xs) { convs = std::move(xs); },
             [](caf::error& err) {
               // Conversations end with the directory anyway (linked); only
               // the wait for each of them below is skipped.
               spdlog::warn("shutdown: the directory did not list its "
                            "conversations error=\"{}\"",
                            to_string(err));
             });
  self->send_exit(directory_, caf::exit_reason::user_shutdown);
  self->wait_for(directory_);
  for (auto& conv : convs)
    self->wait_for(conv);
  // Conversations are gone; their commits are in the writer's mailbox
  // ahead of this flush, so they finish before it answers.
  self->request(writer_, timeouts::commit, caf::flush_atom::value)
    .receive([](uint64_t syncs) { spdlog::info("store flushed synced_writes={}", syncs); },
             [](caf::error& err) {
               // Nothing acknowledged is lost (every answered commit was
               // synced first); unsynced records (watermarks) are recovered
               // from the log at the next start.
               spdlog::error("store final flush failed error=\"{}\"", to_string(err));
             });
  // Entries the inbox has not written yet are recomputed by its
  // reconciler at the next start.
  self->send_exit(inbox_, caf::exit_reason::user_shutdown);
  self->wait_for(inbox_);
  self->send_exit(accounts_, caf::exit_reason::user_shutdown);
  self->wait_for(accounts_);
  for (auto hdl : {caf::actor_cast<caf::actor>(writer_),
                   caf::actor_cast<caf::actor>(reader_)})
    self->send_exit(hdl, caf::exit_reason::user_shutdown);
  self->send_exit(keeper_, caf::exit_reason::user_shutdown);
  self->send_exit(registry_, caf::exit_reason::user_shutdown);
  self->send_exit(fanout_, caf::exit_reason::user_shutdown);
  self->wait_for(writer_, reader_);
}

} // namespace parley
