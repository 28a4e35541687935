#include "runtime/admin/command_table.hpp"

// The declaration of every operator command. Each entry needs a handler on
// the node with the same name (runtime/admin/handlers.hpp); a unit test
// holds the two together.

namespace parley::admin {

namespace {

using k = arg_kind;

std::vector<command_spec> make_table() {
  const arg_spec user{"user", k::user, "a user name or a numeric user id"};
  return {
    {"help",
     {{"command", k::choice, "a command (two words in quotes: \"user show\")",
       true}},
     "list the commands, or explain one",
     "Without an argument: every command with a line of help. With one: "
     "its usage, what it does and what each argument takes.",
     "", "", client_mode::local},
    {"status",
     {},
     "the node: uptime, connections, backlogs, store, cluster",
     "Node id, version, uptime, connections, devices online, conversations "
     "running, outbox and fan-out backlogs, the store's size and LevelDB's "
     "level statistics; on a cluster every node with its partitions, the "
     "map epoch and etcd's reachability.",
     "GET", "/v1/admin/status"},
    {"partitions",
     {},
     "the partition map: each partition's owner and the map epoch",
     "Every partition with the node that owns it (\"none\" while a move "
     "holds it fenced), the map epoch, and the moves this node drives.",
     "GET", "/v1/admin/partitions"},
    {"partition move",
     {{"partition", k::partition, "the partition to move"},
      {"to", k::node, "the node that will own it"}},
     "move a partition to another node, with progress",
     "Streams the partition to the new owner, fences it through etcd, "
     "copies the tail and switches the owner. Shows a progress bar; Ctrl-C "
     "leaves the move running (watch it with `job watch ID`).",
     "POST", "/v1/admin/partitions/{partition}/move", client_mode::job},
    {"node drain",
     {{"node", k::node, "the node to empty"}},
     "move every partition off a node, with progress",
     "Moves the node's partitions one by one to the other live nodes "
     "(round robin). Shows a progress bar; Ctrl-C leaves the drain running "
     "(watch it with `job watch ID`).",
     "POST", "/v1/admin/nodes/{node}/drain", client_mode::job},
    {"jobs",
     {},
     "the long operations this node runs or ran",
     "Moves, drains and inbox rebuilds with their phase and progress.",
     "GET", "/v1/admin/jobs"},
    {"job watch",
     {{"job", k::job, "the job's id (from `jobs`)"}},
     "follow a job with a progress bar until it ends",
     "Follows a move, drain or rebuild this node runs; Ctrl-C stops "
     "watching, not the job.",
     "GET", "/v1/admin/jobs/{job}", client_mode::job},
    {"user show",
     {user},
     "a user: devices, last seen, limits, blocked",
     "The account's id and name, whether it is blocked, its rate limits, "
     "and each device with its name, creation time, last seen and whether "
     "it is revoked or online.",
     "GET", "/v1/admin/users/{user}"},
    {"user create",
     {{"name", k::name, "the new user's name"},
      {"password", k::password,
       "the password (omitted: the node makes one and shows it once)", true}},
     "create an account",
     "Creates the account as /v1/register would. Without a password the "
     "node generates one and answers it once; it is stored hashed.",
     "POST", "/v1/admin/users"},
    {"user block",
     {user},
     "block a user: logins refused, connections closed",
     "The account can no longer log in or authenticate; its open "
     "connections close.",
     "POST", "/v1/admin/users/{user}/block"},
    {"user unblock",
     {user},
     "let a blocked user log in again",
     "Lifts a block.",
     "POST", "/v1/admin/users/{user}/unblock"},
    {"user limit",
     {user,
      {"limit", k::choice, "which limit", false, {"send"}},
      {"rate", k::rate, "N/s, N/min, N/h, or off for the node's default"}},
     "set a user's rate limit (held on every node)",
     "Stores the limit with the account, so every node applies it: `send` "
     "caps the messages the user sends. `off` returns to the default.",
     "POST", "/v1/admin/users/{user}/limits"},
    {"device list",
     {user},
     "a user's devices",
     "Each device with its id, name, creation time, last seen, and whether "
     "it is revoked or online.",
     "GET", "/v1/admin/users/{user}/devices"},
    {"device revoke",
     {user, {"device", k::device, "the device id (from `device list`)"}},
     "revoke a device: its token stops working, its connection closes",
     "As the user's own DELETE /v1/devices/ID: the device's token is "
     "refused from now on and its open connection closes.",
     "POST", "/v1/admin/users/{user}/devices/{device}/revoke"},
    {"conv show",
     {{"conversation", k::conversation, "the conversation id"}},
     "a conversation: head, members' cursors, partition and owner",
     "The head sequence, the dispatched watermark, the partition and the "
     "node that owns it, and each member with its delivered and read "
     "cursors.",
     "GET", "/v1/admin/conversations/{conversation}"},
    {"conv tail",
     {{"conversation", k::conversation, "the conversation id"},
      {"count", k::count, "how many of the last messages"}},
     "metadata of a conversation's last messages (never payloads)",
     "Sequence, sender, device, time and payload size of the last COUNT "
     "messages; the payloads are never shown.",
     "GET", "/v1/admin/conversations/{conversation}/tail"},
    {"inbox rebuild",
     {{"user", k::user_or_all, "a user, or all"}},
     "recompute inbox entries while the node serves, with progress",
     "Recomputes the inbox projection (unread counts, last message) of one "
     "user or of every user of this node's partitions from the "
     "conversations' logs, online.",
     "POST", "/v1/admin/inbox/rebuild", client_mode::job},
    {"metrics top",
     {},
     "a live view of rates and latencies, refreshed every second",
     "Sends, deliveries, commits per second, send and commit latency, "
     "connections and backlogs, from the node's own metrics. q or Ctrl-C "
     "ends it.",
     "GET", "/v1/admin/metrics", client_mode::top},
    {"log level",
     {{"level", k::choice, "the new level", false,
       {"trace", "debug", "info", "warn", "error", "critical", "off"}}},
     "change the node's log level now",
     "Sets the level of the node's log at run time (not kept across a "
     "restart).",
     "POST", "/v1/admin/log-level"},
  };
}

} // namespace

const std::vector<command_spec>& commands() {
  static const std::vector<command_spec> table = make_table();
  return table;
}

const command_spec* find_command(const std::string& name) {
  for (auto& c : commands())
    if (c.name == name)
      return &c;
  return nullptr;
}

} // namespace parley::admin
