#pragma once

// node_config: every option of a Parley node, each with its default and
// help text in one place. CLI overrides the config file (CAF's INI format,
// section [parley]); `--help` and `--dump-config` come from CAF.

#include <cstdint>
#include <optional>
#include <string>

#include <caf/actor_system_config.hpp>

#include "actors/conversation.hpp"
#include "actors/fanout.hpp"
#include "actors/accounts.hpp"
#include "actors/store_writer.hpp"
#include "runtime/cluster/cluster_options.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/gateway/gateway.hpp"
#include "runtime/store/leveldb_backend.hpp"
#include "runtime/store/log_env.hpp"

namespace parley {

inline constexpr const char* default_data_dir = "./data";
inline constexpr const char* default_log_level = "info";
inline constexpr int64_t default_idempotency_window_s = 24 * 3600;
inline constexpr uint64_t default_idempotency_cache = 1024;
inline constexpr uint64_t default_max_payload_bytes = 64 * 1024;
inline constexpr int64_t default_watermark_delay_ms = 100;
inline constexpr uint64_t default_max_batch_ops = 20000;
inline constexpr int64_t default_sweep_interval_s = 600;
inline constexpr const char* default_listen = "127.0.0.1:8080";
inline constexpr uint64_t default_max_frame_bytes = 96 * 1024;
// default_max_server_frame_bytes: actors/messages.hpp (the store uses it too).
inline constexpr uint64_t default_max_devices = 8;
inline constexpr const char* default_password_hash = "interactive";
inline constexpr uint64_t default_heartbeat_ms = 30000;
inline constexpr const char* default_admin_listen = "127.0.0.1:8090";

class node_config : public caf::actor_system_config {
public:
  std::string data_dir = default_data_dir;
  std::string log_level = default_log_level;
  int64_t idempotency_window_s = default_idempotency_window_s;
  uint64_t idempotency_cache = default_idempotency_cache;
  uint64_t idempotency_filter = 65536;
  uint64_t max_payload_bytes = default_max_payload_bytes;
  int64_t watermark_delay_ms = default_watermark_delay_ms;
  uint64_t max_batch_ops = default_max_batch_ops;
  int64_t sweep_interval_s = default_sweep_interval_s;
  std::string listen = default_listen;
  uint64_t max_frame_bytes = default_max_frame_bytes;
  uint64_t max_server_frame_bytes = default_max_server_frame_bytes;
  uint64_t max_devices = default_max_devices;
  bool registration_closed = false;
  std::string password_hash = default_password_hash;
  uint64_t io_threads = 1; ///< set per machine by the constructor
  uint64_t heartbeat_ms = default_heartbeat_ms;
  std::string rebuild_inbox; ///< set: rebuild these inboxes and exit
  /// The deployment's partition count for a store that keeps none yet
  /// (0: default_partitions); a store that keeps one refuses another.
  uint64_t partitions = 0;
  uint64_t sync_recent = 50;
  int64_t receipt_delay_ms = 20;
  int64_t ack_delay_ms = 50;
  int64_t inbox_delay_ms = 50;
  int64_t inbox_batch_ms = 5;
  uint64_t max_group_size = 100000;
  uint64_t large_group_members = 256;
  uint64_t fanout_shards = 2;
  uint64_t fanout_batch = 512;
  int64_t fanout_nice = 5;
  int64_t compaction_nice = default_compaction_nice;
  uint64_t write_buffer_mb = default_write_buffer >> 20;
  uint64_t table_write_mb_s =
    static_cast<uint64_t>(default_table_write_rate / 1e6);
  uint64_t max_outbound_frames = 1024;
  uint64_t close_timeout_ms = gateway::default_close_timeout_ms;
  bool no_rate_limits = false;
  std::string admin_token_hash; ///< hex BLAKE2b-256 of the operator token
  std::string admin_listen = default_admin_listen; ///< the admin port
  /// The named admin tokens' file (empty: DATA_DIR/admin-tokens).
  std::string admin_tokens;
  std::string admin_token_add; ///< set: add a token of this name and exit
  std::string limit_send_device = "100/s,200";
  std::string limit_send_user = "300/s,600";
  std::string limit_group_create = "10/min,10";
  std::string limit_member_add = "2000/min,2000";
  std::string limit_connect_ip = "100/s,1000";
  std::string limit_login_ip = "10/s,100";
  std::string limit_login_account = "10/min,10";
  std::string limit_large_group_send = "20/s,40";

  // Cluster (option group `cluster`; runtime/cluster/cluster_options.hpp).
  std::string cluster_etcd;
  std::string cluster_name = "parley";
  uint64_t cluster_node = 0;
  std::string cluster_listen = "127.0.0.1:0";
  std::string cluster_initial_nodes;
  uint64_t cluster_lease_ttl_s = 5;
  uint64_t cluster_fence_margin_ms = 1500;
  std::string cluster_tls_cert, cluster_tls_key, cluster_tls_ca;

  node_config();

  /// Cluster settings from the options above (enabled() false without
  /// --cluster.etcd).
  cluster::cluster_options cluster() const;

  /// Limits for conversation actors from the options above.
  conversation_limits conversation() const;

  /// Limits for the store writer from the options above.
  store_writer_limits writer() const;

  /// Account limits from the options above.
  accounts_limits accounts() const;

  /// LevelDB settings from the options above.
  leveldb_options leveldb() const;

  /// Device actor settings: a connection that missed three heartbeats is
  /// dropped from its device.
  device_registry_options devices() const;

  /// Large-group fan-out settings.
  fanout_options fanout() const;

  /// Gateway settings from the options above; empty on a bad listen
  /// address (validate() says why).
  std::optional<gateway::gateway_options> gateway() const;

  /// Checks option values; returns a message for the first bad one.
  std::string validate() const;

  /// The admin tokens file: admin_tokens, or DATA_DIR/admin-tokens.
  std::string admin_tokens_file() const;
};

/// Rewrites Parley's friendly flags into CAF's form: `--data DIR` and
/// `--data=DIR` to `--parley.data=DIR`, `--config FILE` to
/// `--config-file=FILE`, `--log-level L` to `--parley.log-level=L`.
std::vector<std::string> normalize_args(int argc, char** argv);

} // namespace parley
