#pragma once

// parley-bench --mode sync: the first page and the whole of one user's sync
// against a running parleyd. The bench signs up a user and N peers, opens a
// direct conversation with each, sends M messages into each, then (on one
// WebSocket of a second device) syncs K times: all N conversations from
// sequence 0 (or, with --sync-fresh, no cursors: a new device's inbox and
// recent messages), page after page until the continuation is empty. It
// times the first page and the whole sync of each round.

#include <cstdint>
#include <string>

namespace parley::bench {

struct sync_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  uint64_t conversations = 200; ///< direct conversations of the user
  uint64_t messages = 20;       ///< messages per conversation
  uint64_t repeat = 20;         ///< timed syncs (after one untimed)
  uint64_t page_size = 100;
  uint64_t payload = 200;
  bool fresh = false;           ///< no cursors: inbox and recent messages
  bool first_page_only = false; ///< each round asks for the first page only
  int64_t server_pid = 0;       ///< for the server's CPU time, if given
  /// perf stat's control FIFO (perf stat --control fifo:CTL,ACK -D -1):
  /// "enable" before the timed syncs, "disable" after; with `perf_ack`,
  /// waits for perf's answer each time.
  std::string perf_ctl;
  std::string perf_ack;
  uint64_t time_limit_s = 300;
};

/// Runs the benchmark and prints its results; returns an exit code.
int run_sync(const sync_options& o, const std::string& cmdline);

} // namespace parley::bench
