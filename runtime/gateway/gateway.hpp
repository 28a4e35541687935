#pragma once

// gateway: the node's HTTP + WebSocket front. Routes the JSON API
// (accounts, logins, devices), /healthz and /metrics, and gives every
// WebSocket session a connection actor.

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <caf/actor_addr.hpp>
#include <string>

#include <caf/fwd.hpp>

#include "actors/accounts.hpp"
#include "actors/device_registry.hpp"
#include "actors/inbox.hpp"
#include "actors/directory.hpp"
#include "actors/store_reader.hpp"
#include "parley/v1/wire.pb.h"
#include "runtime/gateway/metrics.hpp"
#include "runtime/gateway/rate_limiter.hpp"
#include "runtime/gateway/server.hpp"

namespace parley::gateway {

struct gateway_options {
  server_options server;
  std::chrono::milliseconds hello_timeout = std::chrono::seconds(10);
  uint32_t heartbeat_ms = 30000; ///< clients ping this often
  /// The largest frame the server sends (sync pages; in Welcome).
  size_t max_server_frame_bytes = default_max_server_frame_bytes;
  rate_limits limits;
  // No admin request on the client port: the operator's commands are on
  // the admin port (runtime/admin_listener.hpp).
};

/// The node actors the gateway talks to.
/// What a clustered node adds to /healthz and /metrics (empty: nothing).
struct cluster_report {
  std::function<std::string()> health_fields; ///< JSON members
  std::function<std::string()> metrics;        ///< Prometheus lines
};

struct gateway_actors {
  accounts_actor accounts;
  directory_actor directory;
  device_registry_actor registry;
  store_reader_actor reader;
  std::shared_ptr<node_metrics> node_stats; ///< exported at /metrics too
  inbox_actor inbox;
  cluster_report cluster;
};

class gateway {
public:
  gateway(caf::actor_system& sys, gateway_options opts, gateway_actors actors);
  ~gateway();

  /// Starts listening; returns an error message, or empty.
  std::string start();

  /// Stops accepting and closes every session.
  void stop();

  uint16_t port() const;

  const std::shared_ptr<metrics>& stats() const {
    return stats_;
  }

private:
  void handle_http(http_request req, respond_fn respond);

  caf::actor_system& sys_;
  gateway_options opts_;
  gateway_actors actors_;
  std::shared_ptr<metrics> stats_;
  std::shared_ptr<rate_limiter> limiter_;
  std::unique_ptr<server> server_;
  std::mutex conns_mtx_;
  std::vector<caf::actor_addr> conns_; ///< connection actors, for stop()
};

/// The HTTP status for a wire error code.
unsigned http_status(v1::Error::Code code);

} // namespace parley::gateway
