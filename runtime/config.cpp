#include "runtime/config.hpp"

#include <algorithm>
#include <filesystem>
#include <thread>

#include <caf/config_option_adder.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/type_ids.hpp"
#include "runtime/accounts/credentials.hpp"
#include "runtime/admin/admin_tokens.hpp"
#include "runtime/store/sync_paging.hpp"

namespace parley {

node_config::node_config() {
  add_message_types<caf::id_block::parley>();
  add_error_category(caf::atom("parley"),
                     [](uint8_t code, caf::atom_value, const caf::message& ctx) {
                       std::string out = "parley: ";
                       out += to_string(static_cast<errc>(code));
                       if (!ctx.empty())
                         out += " " + to_string(ctx);
                       return out;
                     });
  // CAF 0.17 starts max(cores, 4) workers that poll with short sleeps
  // before they wait; on a small machine they then steal the cores from the
  // socket and store threads (measured: tools/bench/RESULTS.md, issue 3).
  // One worker per core that waits as soon as it is idle: one poll of its
  // queue (and one steal), then the condition variable; a single moderate
  // attempt would still sleep 50 us first, a context switch each time a
  // worker runs dry (7 % of the server's CPU at 10k msg/s). All can still
  // be set on the command line or in the config file.
  set("scheduler.max-threads",
      static_cast<size_t>(std::max(2u, std::thread::hardware_concurrency())));
  set("work-stealing.aggressive-poll-attempts", size_t{1});
  set("work-stealing.moderate-poll-attempts", size_t{0});
  // Sockets on one thread per core (at most 4): with one, a large group's
  // 10,000 writes stood in line before every 1:1 frame (RESULTS, issue 5).
  io_threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  opt_group{custom_options_, "parley"}
    .add(data_dir, "data", "directory of the node's LevelDB database")
    .add(log_level, "log-level",
         "trace, debug, info, warn, error, critical or off")
    .add(idempotency_window_s, "idempotency-window-s",
         "seconds a repeated client_message_id returns the original answer")
    .add(idempotency_cache, "idempotency-cache",
         "recent send answers each conversation keeps in memory")
    .add(idempotency_filter, "idempotency-filter",
         "hashes of committed send keys each conversation keeps (24-32 "
         "bytes each) so that new sends skip the store lookup")
    .add(max_payload_bytes, "max-payload-bytes",
         "largest message payload accepted")
    .add(watermark_delay_ms, "watermark-delay-ms",
         "how long an idle conversation waits before persisting its "
         "outbox watermark")
    .add(max_batch_ops, "max-batch-ops",
         "key/value operations after which a group commit writes early")
    .add(sweep_interval_s, "idempotency-sweep-interval-s",
         "seconds between a busy conversation's sweeps of idempotency "
         "records past their window")
    .add(listen, "listen", "HOST:PORT for HTTP and WebSocket (/v1/ws)")
    .add(max_frame_bytes, "max-frame-bytes",
         "largest WebSocket frame accepted (larger: TOO_LARGE)")
    .add(max_server_frame_bytes, "max-server-frame-bytes",
         "largest WebSocket frame sent (sync pages stay within it; "
         "announced in Welcome); at least one largest message's page")
    .add(max_devices, "max-devices", "logged-in devices per account")
    .add(registration_closed, "registration-closed",
         "refuse new accounts (POST /v1/accounts)")
    .add(password_hash, "password-hash",
         "Argon2id cost: interactive, or min (tests only)")
    .add(io_threads, "io-threads",
         "threads serving sockets (default: one per core, at most 4)")
    .add(heartbeat_ms, "heartbeat-ms",
         "clients ping this often; silent for twice as long: disconnected")
    .add(receipt_delay_ms, "receipt-delay-ms",
         "receipts gather this long per conversation before one write and "
         "one push")
    .add(ack_delay_ms, "ack-delay-ms",
         "delivered acks gather this long per device before its cursor write")
    .add(inbox_delay_ms, "inbox-delay-ms",
         "inbox changes gather this long before a write")
    .add(inbox_batch_ms, "inbox-batch-ms",
         "message and receipt events gather this long before one hand-off "
         "to the inbox thread")
    .add(sync_recent, "sync-recent",
         "messages per conversation a device syncing without cursors (a "
         "new device) gets")
    .add(max_group_size, "max-group-size", "members a group may have")
    .add(large_group_members, "large-group-members",
         "groups with more members are large: their sends are limited per "
         "group (limit-large-group-send)")
    .add(fanout_shards, "fanout-shards",
         "threads fanning large groups' messages out to their members")
    .add(fanout_batch, "fanout-batch",
         "members a fan-out shard serves before it looks at other work")
    .add(fanout_nice, "fanout-nice",
         "CPU priority of fan-out threads relative to the rest (0-19: "
         "higher is lower priority)")
    .add(compaction_nice, "compaction-nice",
         "CPU priority of LevelDB's flushes and compactions (0-19: higher "
         "is lower priority)")
    .add(write_buffer_mb, "write-buffer-mb",
         "MiB of writes LevelDB gathers in memory before it writes a table "
         "(1-1024; two may be held at once; larger: fewer flushes and "
         "compactions, a longer log replay after a crash)")
    .add(table_write_mb_s, "table-write-mb-s",
         "MB/s at most at which LevelDB's flushes and compactions write "
         "tables, a piece at a time, so that commits' syncs do not queue "
         "behind them (0-4096; 0: unpaced)")
    .add(max_outbound_frames, "max-outbound-frames",
         "frames queued for a connection before it is closed as too slow "
         "(the device resumes by sync)")
    .add(close_timeout_ms, "close-timeout-ms",
         "how long closing a connection (its Disconnect frame and the "
         "close handshake) may take before the socket is reset")
    .add(no_rate_limits, "no-rate-limits",
         "turn every rate limit off (benchmarks, trusted networks)")
    .add(limit_send_device, "limit-send-device",
         "messages per device: N/s or N/min, then ,BURST; or off")
    .add(limit_send_user, "limit-send-user",
         "messages per user over all devices")
    .add(limit_group_create, "limit-group-create", "groups created per user")
    .add(limit_member_add, "limit-member-add",
         "members added to groups per user")
    .add(limit_connect_ip, "limit-connect-ip",
         "WebSocket connections per source address (reconnect storms)")
    .add(limit_login_ip, "limit-login-ip",
         "logins and sign-ups per source address")
    .add(limit_login_account, "limit-login-account", "logins per username")
    .add(limit_large_group_send, "limit-large-group-send",
         "messages per large group (see large-group-members)")
    .add(admin_token_hash, "admin-token-hash",
         "hex BLAKE2b-256 of an admin token, accepted under the name "
         "\"operator\" (printf %s TOKEN | b2sum -l 256); see admin-tokens")
    .add(admin_listen, "admin-listen",
         "HOST:PORT of the node's admin port (parleyctl), on when an admin "
         "token is configured; loopback or private addresses only; port 0: "
         "a free one, logged")
    .add(admin_tokens, "admin-tokens",
         "file of named admin tokens, lines NAME HASH (hex BLAKE2b-256), "
         "mode 0600 (empty: DATA_DIR/admin-tokens); read again when it "
         "changes")
    .add(admin_token_add, "admin-token-add",
         "NAME: add a random admin token named NAME to the tokens file, "
         "print it once and exit")
    .add(partitions, "partitions",
         "partitions of the deployment (1-65536; 0: the store's, or 64 on "
         "the first start); kept in the store at the first start, and a "
         "store created with another number refuses to start")
    .add(rebuild_inbox, "rebuild-inbox",
         "USER (name or id) or all: recompute inbox projections from the "
         "message log, then exit (parleyd must not be running on --data)");
  opt_group{custom_options_, "cluster"}
    .add(cluster_etcd, "etcd",
         "etcd's client URL (http://HOST:PORT); empty: a single node, no "
         "etcd, no cluster port")
    .add(cluster_name, "name", "the cluster's name: etcd keys /parley/NAME/")
    .add(cluster_node, "node", "this node's id, 1-65535, its own in the cluster")
    .add(cluster_listen, "listen",
         "HOST:PORT where nodes reach this one (CAF's BASP); a loopback or "
         "private address, never 0.0.0.0; port 0: a free one (registered "
         "in etcd)")
    .add(cluster_initial_nodes, "initial-nodes",
         "node ids owning the first partition map, e.g. 1,2,3 (partition p "
         "to the (p mod n)-th); used only by the node that creates the map; "
         "empty: that node alone")
    .add(cluster_lease_ttl_s, "lease-ttl-s",
         "the node's etcd lease (2-60 s), renewed every third of it")
    .add(cluster_fence_margin_ms, "fence-margin-ms",
         "writes for the node's partitions stop this long before its lease "
         "could lapse without a renewal, and resume when one succeeds")
    .add(cluster_tls_cert, "tls-cert",
         "PEM certificate of this node for mutual TLS between nodes")
    .add(cluster_tls_key, "tls-key", "PEM private key of tls-cert")
    .add(cluster_tls_ca, "tls-ca",
         "PEM CA file: peers must present a certificate it signed");
}

cluster::cluster_options node_config::cluster() const {
  cluster::cluster_options c;
  c.etcd = cluster_etcd;
  c.name = cluster_name;
  c.node = cluster_node;
  c.listen = cluster_listen;
  if (!cluster_initial_nodes.empty())
    c.initial_nodes = cluster::parse_node_list(cluster_initial_nodes)
                        .value_or(std::vector<uint64_t>{});
  c.lease_ttl = std::chrono::seconds(cluster_lease_ttl_s);
  c.fence_margin = std::chrono::milliseconds(cluster_fence_margin_ms);
  c.tls_cert = cluster_tls_cert;
  c.tls_key = cluster_tls_key;
  c.tls_ca = cluster_tls_ca;
  return c;
}

conversation_limits node_config::conversation() const {
  conversation_limits lim;
  lim.idempotency_window_ms = idempotency_window_s * 1000;
  lim.idempotency_cache = idempotency_cache;
  lim.idempotency_filter = idempotency_filter;
  lim.max_payload_bytes = max_payload_bytes;
  lim.watermark_delay = std::chrono::milliseconds(watermark_delay_ms);
  lim.sweep_interval_ms = sweep_interval_s * 1000;
  lim.receipt_delay = std::chrono::milliseconds(receipt_delay_ms);
  lim.max_group_size = max_group_size;
  lim.large_group_members = large_group_members;
  if (!no_rate_limits)
    lim.large_group_send
      = gateway::parse_bucket_spec(limit_large_group_send).value_or(
        bucket_spec{});
  return lim;
}

store_writer_limits node_config::writer() const {
  store_writer_limits lim;
  lim.max_batch_ops = max_batch_ops;
  return lim;
}

leveldb_options node_config::leveldb() const {
  leveldb_options lo;
  lo.compaction_nice = static_cast<int>(compaction_nice);
  lo.write_buffer = static_cast<size_t>(write_buffer_mb) << 20;
  lo.table_bytes_per_s = static_cast<double>(table_write_mb_s) * 1e6;
  return lo;
}

accounts_limits node_config::accounts() const {
  accounts_limits lim;
  lim.registration_open = !registration_closed;
  lim.max_devices = max_devices;
  lim.hash_strength = password_hash;
  return lim;
}

fanout_options node_config::fanout() const {
  fanout_options f;
  f.shards = fanout_shards;
  f.batch_users = fanout_batch;
  f.nice = static_cast<int>(fanout_nice);
  return f;
}

device_registry_options node_config::devices() const {
  device_registry_options opts;
  opts.device.ttl = std::chrono::milliseconds(3 * heartbeat_ms);
  opts.device.ack_delay = std::chrono::milliseconds(ack_delay_ms);
  return opts;
}

std::optional<gateway::gateway_options> node_config::gateway() const {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return std::nullopt;
  gateway::gateway_options g;
  g.server.address = listen.substr(0, colon);
  if (g.server.address.size() > 2 && g.server.address.front() == '['
      && g.server.address.back() == ']')
    g.server.address = g.server.address.substr(1, g.server.address.size() - 2);
  try {
    size_t pos = 0;
    auto port = std::stoul(listen.substr(colon + 1), &pos);
    if (pos != listen.size() - colon - 1 || port > 65535)
      return std::nullopt;
    g.server.port = static_cast<uint16_t>(port);
  } catch (...) {
    return std::nullopt;
  }
  g.server.max_frame_bytes = max_frame_bytes;
  g.server.max_outbound_frames = max_outbound_frames;
  g.server.close_timeout = std::chrono::milliseconds(close_timeout_ms);
  g.limits.enabled = !no_rate_limits;
  auto limit = [](const std::string& s) {
    return gateway::parse_bucket_spec(s).value_or(bucket_spec{});
  };
  g.limits.send_device = limit(limit_send_device);
  g.limits.send_user = limit(limit_send_user);
  g.limits.group_create = limit(limit_group_create);
  g.limits.member_add = limit(limit_member_add);
  g.limits.connect_ip = limit(limit_connect_ip);
  g.limits.login_ip = limit(limit_login_ip);
  g.limits.login_account = limit(limit_login_account);
  g.server.threads = static_cast<unsigned>(io_threads);
  g.heartbeat_ms = static_cast<uint32_t>(heartbeat_ms);
  g.max_server_frame_bytes = max_server_frame_bytes;
  return g;
}

std::string node_config::validate() const {
  if (data_dir.empty())
    return "parley.data must not be empty";
  if (idempotency_window_s <= 0)
    return "parley.idempotency-window-s must be positive";
  if (watermark_delay_ms < 0)
    return "parley.watermark-delay-ms must not be negative";
  if (sweep_interval_s < 0)
    return "parley.idempotency-sweep-interval-s must not be negative";
  if (!gateway())
    return "parley.listen must be HOST:PORT, e.g. 127.0.0.1:8080";
  if (auto at = cluster::parse_host_port(admin_listen);
      !at || !cluster::private_or_loopback(at->host))
    return "parley.admin-listen must be HOST:PORT on a loopback or private "
           "address, e.g. 127.0.0.1:8090";
  if (!cluster_initial_nodes.empty()
      && !cluster::parse_node_list(cluster_initial_nodes))
    return "--cluster.initial-nodes must be distinct node ids 1-65535 "
           "separated by commas, e.g. 1,2,3";
  if (auto bad = cluster::validate(cluster()); !bad.empty())
    return bad;
  if (password_hash != "interactive" && password_hash != "min")
    return "parley.password-hash must be interactive or min";
  // A Sync frame carries a continuation back.
  if (auto least = store::max_continuation_bytes + 4096;
      max_frame_bytes < least)
    return "parley.max-frame-bytes must be at least " + std::to_string(least)
           + " (a Sync carries continuations of up to "
           + std::to_string(store::max_continuation_bytes) + " bytes)";
  // A sync page holds at least one largest message and its continuation.
  if (auto least = store::min_server_frame_bytes(max_payload_bytes);
      max_server_frame_bytes < least || max_server_frame_bytes > UINT32_MAX)
    return "parley.max-server-frame-bytes must be " + std::to_string(least)
           + "-" + std::to_string(UINT32_MAX)
           + " (a page of one largest message, max-payload-bytes "
           + std::to_string(max_payload_bytes) + ")";
  if (heartbeat_ms < 100 || heartbeat_ms > 3600 * 1000)
    return "parley.heartbeat-ms must be 100-3600000";
  if (io_threads == 0 || io_threads > 64)
    return "parley.io-threads must be 1-64";
  if (max_batch_ops == 0)
    return "parley.max-batch-ops must be positive";
  for (auto [v, name] : {std::pair{receipt_delay_ms, "receipt-delay-ms"},
                         std::pair{ack_delay_ms, "ack-delay-ms"},
                         std::pair{inbox_delay_ms, "inbox-delay-ms"},
                         std::pair{inbox_batch_ms, "inbox-batch-ms"}})
    if (v < 0 || v > 10000)
      return std::string{"parley."} + name + " must be 0-10000";
  if (sync_recent > 100000)
    return "parley.sync-recent must be at most 100000";
  if (max_group_size < 2 || max_group_size > 10'000'000)
    return "parley.max-group-size must be 2-10000000";
  if (!admin_token_hash.empty()
      && credentials::from_hex32(admin_token_hash).empty())
    return "parley.admin-token-hash must be 64 hex digits (b2sum -l 256)";
  if (!admin_token_add.empty() && !admin::valid_token_name(admin_token_add))
    return "--admin-token-add takes a name: 1-64 of A-Z a-z 0-9 . _ -";
  if (partitions > max_partitions)
    return "parley.partitions must be 0-" + std::to_string(max_partitions)
           + " (0: the store's, or " + std::to_string(default_partitions)
           + " on the first start)";
  if (fanout_shards == 0 || fanout_shards > 64)
    return "parley.fanout-shards must be 1-64";
  if (fanout_batch == 0)
    return "parley.fanout-batch must be positive";
  if (compaction_nice < 0 || compaction_nice > 19)
    return "parley.compaction-nice must be 0-19";
  if (write_buffer_mb < 1 || write_buffer_mb > 1024)
    return "parley.write-buffer-mb must be 1-1024";
  if (table_write_mb_s > 4096)
    return "parley.table-write-mb-s must be 0-4096";
  if (fanout_nice < 0 || fanout_nice > 19)
    return "parley.fanout-nice must be 0-19";
  if (max_outbound_frames < 16)
    return "parley.max-outbound-frames must be at least 16";
  if (close_timeout_ms < 100 || close_timeout_ms > 3600 * 1000)
    return "parley.close-timeout-ms must be 100-3600000";
  for (auto [v, name] :
       {std::pair{&limit_send_device, "limit-send-device"},
        std::pair{&limit_send_user, "limit-send-user"},
        std::pair{&limit_group_create, "limit-group-create"},
        std::pair{&limit_member_add, "limit-member-add"},
        std::pair{&limit_connect_ip, "limit-connect-ip"},
        std::pair{&limit_login_ip, "limit-login-ip"},
        std::pair{&limit_login_account, "limit-login-account"},
        std::pair{&limit_large_group_send, "limit-large-group-send"}})
    if (!gateway::parse_bucket_spec(*v))
      return std::string{"parley."} + name
             + " must be N/s or N/min, optionally ,BURST (e.g. 100/s,200), "
               "or off";
  return {};
}

std::string node_config::admin_tokens_file() const {
  if (!admin_tokens.empty())
    return admin_tokens;
  return (std::filesystem::path{data_dir} / "admin-tokens").string();
}

std::vector<std::string> normalize_args(int argc, char** argv) {
  static const std::pair<const char*, const char*> renames[] = {
    {"--data", "--parley.data"},
    {"--log-level", "--parley.log-level"},
    {"--config", "--config-file"},
    {"--listen", "--parley.listen"},
    {"--rebuild-inbox", "--parley.rebuild-inbox"},
    {"--partitions", "--parley.partitions"},
    {"--admin-token-add", "--parley.admin-token-add"},
  };
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool renamed = false;
    for (auto [from, to] : renames) {
      std::string f = from;
      if (arg == f && i + 1 < argc) {
        out.push_back(std::string(to) + "=" + argv[++i]);
        renamed = true;
      } else if (arg.rfind(f + "=", 0) == 0) {
        out.push_back(std::string(to) + arg.substr(f.size()));
        renamed = true;
      }
      if (renamed)
        break;
    }
    if (!renamed)
      out.push_back(std::move(arg));
  }
  return out;
}

} // namespace parley
