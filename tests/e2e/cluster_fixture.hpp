#pragma once

// A real cluster for end-to-end tests (issue 22): one etcd (Debian's
// binary, etcd_fixture.hpp) on free loopback ports and N parleyd nodes,
// each over its own data directory with its output in a log file (never a
// pipe a busy node could fill). Nodes are started with
//   --cluster.etcd=<etcd> --cluster.node=i --cluster.listen=127.0.0.1:0
//   --cluster.initial-nodes=1,..,N --partitions=K
// and the fixture waits, by polling GET /healthz within a bound, until
// every running node reports its lease "live" and every other running
// node among its "peers". Nodes can be killed (-9), frozen (SIGSTOP) and
// thawed, and restarted on their data once the old process has exited;
// etcd can be stopped and started again on its ports and data.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <sys/types.h>

#include "etcd_fixture.hpp"
#include "runtime/core/placement.hpp"

namespace parley::e2e {

/// How to start a cluster.
struct cluster_options {
  int nodes = 3;
  uint32_t partitions = 6;
  std::string name = "parley";  ///< --cluster.name (etcd prefix)
  std::vector<std::string> extra; ///< more parleyd arguments, every node
  /// More parleyd arguments for single nodes (after `extra`).
  std::map<node_id, std::vector<std::string>> node_extra;
  /// The nodes the constructor waits for (wait_ready's `ready_nodes`);
  /// every node if absent.
  std::optional<std::set<node_id>> ready_nodes;
};

/// One parleyd of a cluster, by PID; output appended to `log_path`.
class cluster_node {
public:
  cluster_node(node_id id, std::string dir, std::vector<std::string> args);
  ~cluster_node(); ///< SIGKILLs and reaps a process still running

  cluster_node(const cluster_node&) = delete;
  cluster_node& operator=(const cluster_node&) = delete;

  /// Starts parleyd (only when no process of this node runs) and reads the
  /// client port from its log; false if it exits or logs none in time.
  bool start();
  /// Sends `sig` to the process, if one runs (no wait).
  void signal(int sig);
  /// SIGKILL, then waits until the process has exited.
  void kill9();
  /// SIGTERM (after SIGCONT, if frozen) and waits for the exit: the exit
  /// code, or -1 if it was killed by a signal or did not exit in time
  /// (then it is SIGKILLed and reaped).
  int terminate();
  bool running() const {
    return pid_ > 0;
  }
  /// The running process's PID, -1 if none.
  pid_t pid() const {
    return pid_;
  }
  /// The node's log so far.
  std::string log() const;

  const node_id id;
  const std::string dir;      ///< its --data directory
  const std::string log_path; ///< where its output goes
  uint16_t port = 0;          ///< client (HTTP/WebSocket) port, 0 if none

private:
  std::vector<std::string> args_;
  pid_t pid_ = -1;
};

/// What GET /healthz says about the cluster, as far as the tests need.
struct node_health {
  bool answered = false;
  std::string body;
  std::string lease; ///< "live" | "fenced" | "" (absent)
  std::string etcd;  ///< "ok" | "unreachable" | ""
  uint64_t map_epoch = 0;
  std::set<node_id> peers;
  std::set<uint32_t> owned;
};

/// An etcd and N parleyd nodes (ids 1..N).
class test_cluster {
public:
  /// Starts etcd and every node, then waits until they are ready (REQUIREs
  /// it: the test stops if the cluster does not form).
  explicit test_cluster(cluster_options opts = {});
  /// Stops every node (SIGTERM), then etcd; removes the directories.
  ~test_cluster();

  test_cluster(const test_cluster&) = delete;
  test_cluster& operator=(const test_cluster&) = delete;

  cluster_node& at(node_id n);
  /// The client port of node `n`.
  uint16_t port(node_id n) {
    return at(n).port;
  }
  int size() const {
    return static_cast<int>(nodes_.size());
  }

  /// GET /healthz of node `n`, parsed.
  node_health health(node_id n);
  /// Polls until every running node's lease is "live" and every other
  /// running node is among its peers (all of `ready_nodes` if given);
  /// false after `bound_ms` (every node's last /healthz is printed).
  bool wait_ready(int bound_ms = 60000,
                  std::optional<std::set<node_id>> ready_nodes = {});

  void kill9(node_id n) {
    at(n).kill9();
  }
  void freeze(node_id n); ///< SIGSTOP
  void thaw(node_id n);   ///< SIGCONT
  /// Starts node `n` again on its data (its old process must have exited).
  bool restart(node_id n);

  etcd_process& etcd() {
    return *etcd_;
  }
  std::string etcd_url() const;
  void stop_etcd();
  bool start_etcd();

  /// The partition map in etcd (/parley/<name>/map); REQUIREs it.
  partition_map map();
  /// The owner of a conversation / a user under the map in etcd.
  node_id owner_of_conversation(uint64_t conv);
  node_id owner_of_user(uint64_t user);
  uint32_t partitions() const {
    return opts_.partitions;
  }

private:
  cluster_options opts_;
  std::string dir_;
  std::unique_ptr<etcd_process> etcd_;
  std::vector<std::unique_ptr<cluster_node>> nodes_;
};

/// One parleyd without cluster options (the control run of a cluster
/// scenario), with its output in a log file like a cluster's nodes (a
/// pipe nobody reads while the test runs would fill up and stall it).
class lone_node {
public:
  explicit lone_node(std::vector<std::string> extra = {});
  ~lone_node(); ///< SIGTERM (checks exit 0), removes the data

  uint16_t port() const {
    return node_->port;
  }

private:
  std::string dir_;
  std::unique_ptr<cluster_node> node_;
};

/// The last `n` lines of `text` (a log, for a failure's report).
std::string log_tail(const std::string& text, int n);

/// Parses a map value as the contract writes it:
/// {"map_epoch":E,"partitions":K,"owners":[n0,n1,...]}; nullopt if bad.
std::optional<partition_map> parse_map_json(const std::string& json);

} // namespace parley::e2e
