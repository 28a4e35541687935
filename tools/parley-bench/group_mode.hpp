#pragma once

// parley-bench --mode group: one large group against a running parleyd.
// The bench registers the members, builds the group (GroupCreate, then
// GroupChange ADDED in chunks), connects `online` of them (one device
// each) and times how long one message takes to reach all of them. Then,
// optionally: a sample of offline members syncs from their join; a
// reconnect storm (every online device drops, messages arrive meanwhile,
// all reconnect and sync at once) is timed and checked for loss and
// duplicates.

#include <cstdint>
#include <string>

namespace parley::bench {

struct group_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  uint64_t members = 10000;      ///< group size, the sender included
  uint64_t online = 10000;       ///< members this process connects
  uint64_t messages = 5;         ///< timed messages, one per interval
  uint64_t interval_ms = 1000;
  uint64_t sync_sample = 0;      ///< offline members that sync afterwards
  bool storm = false;            ///< reconnect storm at the end
  uint64_t storm_messages = 5;   ///< sent while the storm's devices are away
  int64_t server_pid = 0;        ///< for the server's CPU time, if given
};

/// Runs the benchmark and prints its results; returns an exit code.
int run_group(const group_options& o, const std::string& cmdline);

} // namespace parley::bench
