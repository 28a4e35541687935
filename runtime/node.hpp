#pragma once

// node: starts a Parley node's actors in dependency order (store writer,
// store reader, delivery, directory, then the outbox relay) and stops them
// in reverse, letting in-flight commits finish.

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <caf/fwd.hpp>

#include "actors/fanout.hpp"
#include "actors/accounts.hpp"
#include "actors/delivery.hpp"
#include "actors/device_registry.hpp"
#include "actors/inbox.hpp"
#include "actors/map_keeper.hpp"
#include "actors/directory.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/gateway/gateway.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley {

struct node_options {
  std::shared_ptr<kv_backend> kv;
  conversation_limits conversation;
  store_writer_limits writer;
  clock_fn clock;         ///< empty: the system clock
  delivery_actor delivery; ///< empty: the device registry
  bool detach_store = true; ///< false only under the test coordinator
  accounts_limits accounts;
  device_registry_options devices;
  uint64_t sync_recent = 50; ///< history a sync without cursors gets
  /// Inbox changes gather this long before a write (0: at once).
  std::chrono::milliseconds inbox_flush_delay{0};
  /// Events for the inbox gather this long before one hand-off (0: behind
  /// what the supervisor's mailbox holds).
  std::chrono::milliseconds inbox_batch_delay{0};
  /// Set: serve HTTP and WebSocket (parleyd); empty: no network (tools).
  std::optional<gateway::gateway_options> gateway;
  /// Large groups' fan-out (shards run on threads of their own unless
  /// detach_store is false).
  fanout_options fanout;
  /// The deployment's partition count for a store that keeps none yet (0:
  /// default_partitions). start() fails if the store keeps another one.
  uint32_t partitions = 0;
  /// This node's id in the partition map (runtime/core/placement.hpp).
  node_id self = single_node_id;
  /// The partition map to start with (a cluster's, from etcd; its count
  /// must be the store's); empty: this node owns every partition.
  std::optional<partition_map> map;
};

class node {
public:
  node(caf::actor_system& sys, node_options opts);
  ~node();

  /// Settles the partition count with the store (kept at the first start;
  /// another one refused before anything is spawned), spawns the actors
  /// with a partition map in which this node owns every partition, starts
  /// the outbox relay (asynchronously) and, if configured, the gateway.
  /// Returns an error message, or empty.
  std::string start();

  /// Stops the directory and its conversations, writes what the store writer
  /// has pending, then stops the store actors. Blocks until done.
  void stop();

  directory_actor directory() const { return directory_; }
  store_writer_actor writer() const { return writer_; }
  store_reader_actor reader() const { return reader_; }
  accounts_actor accounts() const { return accounts_; }
  device_registry_actor registry() const { return registry_; }
  fanout_actor fanout() const { return fanout_; }
  /// The node's map keeper: the one call for a new partition map.
  map_keeper_actor map_keeper() const { return keeper_; }
  /// The node's inbox projection (its supervisor's stable handle).
  inbox_supervisor_actor inbox() const { return inbox_; }

  /// Reports the cluster at /healthz and /metrics (set before start()).
  void report_cluster(gateway::cluster_report report) {
    cluster_report_ = std::move(report);
  }

  /// The gateway's port (0 without a gateway).
  uint16_t port() const { return gateway_ ? gateway_->port() : 0; }

  /// This node's id in the partition map (single_node_id alone).
  node_id self() const { return opts_.self; }

  /// The node's counters (the admin port's status and metrics read them).
  const std::shared_ptr<node_metrics>& metrics() const { return metrics_; }

  /// The gateway's counters; null without a gateway (or before start()).
  const gateway::metrics* gateway_stats() const {
    return gateway_ ? gateway_->stats().get() : nullptr;
  }


private:
  caf::actor_system& sys_;
  node_options opts_;
  store_writer_actor writer_;
  store_reader_actor reader_;
  device_registry_actor registry_;
  fanout_actor fanout_;
  inbox_supervisor_actor inbox_;
  delivery_actor delivery_;
  directory_actor directory_;
  accounts_actor accounts_;
  map_keeper_actor keeper_;
  std::unique_ptr<gateway::gateway> gateway_;
  std::shared_ptr<node_metrics> metrics_;
  gateway::cluster_report cluster_report_;
  bool running_ = false;
};

/// The system clock in milliseconds since the Unix epoch.
int64_t system_clock_ms();

} // namespace parley
