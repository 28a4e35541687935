#pragma once

// handlers: the node's side of each command of command_table.hpp. The admin
// listener parses a request with admin::from_request, checks the token, and
// calls the handler registered under the command's name; the handler
// answers once, from any thread, without blocking a scheduler thread (ask
// actors with request(...).then in a spawned actor, or run blocking work on
// a thread of its own).
//
// Each group of commands registers itself in a file of its own:
//   handlers_node.cpp     status, jobs, job watch, metrics top, log level
//   handlers_users.cpp    user *, device *
//   handlers_convs.cpp    conv show, conv tail, inbox rebuild
//   handlers_cluster.cpp  partitions, partition move, node drain

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/fwd.hpp>

#include "runtime/admin/command_table.hpp"

namespace parley {
class node;
class cluster_member;
class kv_backend;
struct node_metrics;
namespace gateway {
struct gateway_metrics;
}
} // namespace parley

namespace parley::admin {

class job_board;

/// One authenticated admin request.
struct call {
  const command_spec* spec = nullptr;
  arg_values args;          ///< checked by check_arg
  std::string token_name;   ///< the admin token's name (for the log)
  std::string remote;       ///< peer address
};

/// A handler's answer. 2xx: `body` is a JSON object. Otherwise `body` is
/// the message; the listener wraps it as {"error":{"status","message"}}.
struct result {
  unsigned status = 200;
  std::string body;
};

using reply_fn = std::function<void(result)>;
using handler = std::function<void(const call&, reply_fn)>;

/// What handlers reach. A handler's work may outlive the listener's stop
/// (a detached inbox rebuild keeps `kv`, an actor spawned by a handler
/// keeps this env). tools/parleyd/main.cpp makes that safe: the store
/// (`kv`), this env and the job board are declared before the actor
/// system, so they outlive it, and the system's destructor waits for every
/// actor, detached ones too. `node` and `member` do not: main stops the
/// listener (joining its thread), then stops and destroys them before the
/// system. So read `node` and `member` when the handler is called (take
/// the actor handles you need then); never from an actor or a thread that
/// may run after the call returned.
struct env {
  caf::actor_system* sys = nullptr;
  parley::node* node = nullptr;
  cluster_member* member = nullptr;  ///< null on a single node
  kv_backend* kv = nullptr;          ///< the node's store (LevelDB stats)
  job_board* jobs = nullptr;
  std::chrono::steady_clock::time_point started;
  std::string version;
};

class handler_table {
public:
  /// Registers `h` for the command named `command` (must be in commands()).
  void add(const std::string& command, handler h);
  const handler* find(const std::string& command) const;
  /// Commands of the table without a handler (a unit test asserts none).
  std::vector<std::string> missing() const;

private:
  std::map<std::string, handler> handlers_;
};

void add_node_handlers(handler_table& t, env& e);
void add_user_handlers(handler_table& t, env& e);
void add_conversation_handlers(handler_table& t, env& e);
void add_cluster_handlers(handler_table& t, env& e);

/// For `status` on a cluster (handlers_cluster.cpp): JSON object fields
/// (no braces) describing every node of the cluster (id, address, live,
/// partitions owned), the map epoch and etcd's reachability, e.g.
/// "map_epoch":7,"etcd":"reachable","nodes":[{...},...]. Empty without a
/// cluster (member null).
std::string cluster_status_fields(cluster_member* member);

/// Every group above.
inline void add_all_handlers(handler_table& t, env& e) {
  add_node_handlers(t, e);
  add_user_handlers(t, e);
  add_conversation_handlers(t, e);
  add_cluster_handlers(t, e);
}

} // namespace parley::admin
