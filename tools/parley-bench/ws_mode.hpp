#pragma once

// parley-bench --mode ws: N sender/recipient pairs over real WebSockets
// against a running parleyd. Each sender keeps W sends in flight (or paces
// itself to a total rate); each recipient is online and measures
// send -> deliver latency from a timestamp in the payload.

#include <cstdint>
#include <string>
#include <vector>

namespace parley::bench {

struct ws_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  uint64_t pairs = 100;
  uint64_t window = 16;
  uint64_t duration_s = 10;
  uint64_t rate = 0;       ///< total messages/s, 0 = as fast as possible
  uint64_t payload = 200;
  int64_t server_pid = 0;  ///< for the server's CPU time, if given
  /// --server-pid A,B,C: every server process (their CPU is summed).
  std::vector<int64_t> server_pids;
  /// --cluster-ports: the client ports of a cluster's nodes; pairs are
  /// then spread so that sender, conversation and recipient are on three
  /// different nodes (cluster_pairs.hpp).
  std::vector<uint16_t> cluster_ports;
  /// --pair-kind group: each pair talks in a group of two (the sender
  /// creates it with the recipient's id) instead of a direct conversation
  /// (OpenDirect resolves a username on the sender's node only).
  bool group_pairs = false;
  /// Four measured phases in one run: receipts off, on, off, on (recipients
  /// acknowledge and read every message; senders measure the time
  /// from a Read leaving the recipient to its ReceiptUpdate arriving).
  bool receipts = false;
  /// With receipts: a recipient acknowledges and reads the highest
  /// sequence it received at most this often (a client debouncing its
  /// receipts); 0: both for every message.
  uint64_t receipt_interval_ms = 10;
  /// With receipts: Delivered and Read both, as a client that acknowledges
  /// before it shows; otherwise Read alone (which implies delivery), as a
  /// client with the conversation open.
  bool receipts_both = false;
  /// Prints each 100 ms of the measurement whose worst send->deliver
  /// latency passed 10 ms (when the slow messages arrived).
  bool timeline = false;
};

/// The p-quantile (0..1) of `v` (reorders it); 0 if empty.
double percentile(std::vector<uint32_t>& v, double p);

/// Runs the benchmark and prints its results; returns an exit code.
int run_ws(const ws_options& o, const std::string& cmdline);

} // namespace parley::bench

namespace parley::bench {

/// parley-bench --mode idle: opens N authenticated WebSocket connections
/// that stay idle, and reports the server's resident memory per connection
/// (VmRSS of --server-pid before and after).
int run_idle(const ws_options& o, uint64_t connections,
             const std::string& cmdline);

} // namespace parley::bench
