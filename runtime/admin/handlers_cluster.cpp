#include "runtime/admin/handlers.hpp"

// The cluster's commands (command_table.cpp): `partitions`, `partition
// move P TO` and `node drain NODE`, and the cluster's part of `status`.
// Moves run on the cluster member's move thread (one at a time per driving
// node, runtime/cluster_member.hpp); their jobs mirror the move driver's
// status (runtime/partition_move_driver.hpp):
//   partition move  unit "keys": done = keys read by the move's passes,
//                   total = move_status::keys_total (twice the range's keys
//                   counted before streaming, raised to `done` if the range
//                   grew; 0 if the old owner could not be asked); the phase
//                   is the driver's, with what it waits for.
//   node drain      unit "partitions": done = partitions moved, total =
//                   partitions the node owned; the phase names the move
//                   under way. A failed move ends the drain (failed, naming
//                   the partition).
// A job's end is logged once (before the job shows it ended, so a follower
// that saw the end finds the line): job, the admin token's name, command,
// what, outcome (done, or failed with the error) and elapsed time.

#include <algorithm>
#include <chrono>
#include <mutex>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "runtime/admin/cluster_plan.hpp"
#include "runtime/admin/jobs.hpp"
#include "runtime/admin/json_text.hpp"
#include "runtime/cluster_member.hpp"
#include "runtime/core/type_ids.hpp"
#include "runtime/node.hpp"

namespace parley::admin {

namespace {

using move_step = cluster_member::move_step;

uint64_t number_arg(const call& c, const char* name) {
  auto i = c.args.find(name);
  return i == c.args.end() ? 0 : std::stoull(i->second);
}

std::string owner_json(node_id n) {
  return n == no_node ? "\"none\"" : std::to_string(n);
}

/// {"map_epoch":N,"partitions":[{"partition":P,"owner":N|"none"},...]
/// (without the closing brace).
std::string map_fields(const partition_map& m) {
  std::string out = "{\"map_epoch\":" + std::to_string(m.map_epoch)
                    + ",\"partitions\":[";
  for (uint32_t p = 0; p < m.partitions(); ++p)
    out += (p ? "," : "") + std::string("{\"partition\":") + std::to_string(p)
           + ",\"owner\":" + owner_json(m.owner(p)) + "}";
  return out + "]";
}

/// A move's phase with what it waits for, if anything.
std::string phase_of(const move_status& m) {
  return m.waiting.empty() ? m.phase
                           : m.phase + " (waiting for " + m.waiting + ")";
}

/// A `partition move` job's progress from its move's status.
void mirror(job& j, const move_status& m) {
  j.set_phase(phase_of(m));
  auto total = m.keys_total ? std::max(m.keys_total, m.keys) : 0;
  if (m.phase == "done")
    total = m.keys;
  j.set_progress(m.keys, total);
}

/// Logs the end of job `id` (see the top of the file).
void log_end(uint64_t id, const std::string& token, const std::string& kind,
             const std::string& what, const std::string& failure,
             std::chrono::steady_clock::time_point started) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - started)
              .count();
  if (failure.empty())
    spdlog::info("admin job ended job={} token={} command=\"{}\" what=\"{}\" "
                 "outcome=done elapsed_ms={}",
                 id, token, kind, what, ms);
  else
    spdlog::info("admin job ended job={} token={} command=\"{}\" what=\"{}\" "
                 "outcome=failed error={} elapsed_ms={}",
                 id, token, kind, what, json_quote(failure), ms);
}

/// A job driven by a plan of moves (one move, or a drain). The job is held
/// weakly (it holds this through its refresh hook); the move thread may
/// end a move before the job exists: `ended` keeps what it said.
struct plan_job {
  std::mutex mu;
  std::weak_ptr<job> j;
  std::vector<move_step> plan;
  bool by_keys = false; ///< one move, progress in keys; else partitions
  size_t ended = 0;     ///< moves ended
  bool over = false;    ///< the plan ended (all done, or one failed)
  std::string failure;
  move_status last;     ///< the last move ended
  // For the log of the plan's end (once, when the job exists).
  std::string token, kind, what;
  std::chrono::steady_clock::time_point started =
    std::chrono::steady_clock::now();
  bool logged = false;

  /// Records move `i` ended as `m`. Call with mu held.
  void record(size_t i, const move_status& m) {
    ended = i + 1;
    last = m;
    if (m.phase != "done")
      failure = by_keys ? m.error
                        : "partition " + std::to_string(m.partition)
                            + " to node " + std::to_string(m.to) + ": "
                            + (m.error.empty() ? m.phase : m.error);
    over = !failure.empty() || ended == plan.size();
  }

  /// Gives what was recorded to the job. Call with mu held.
  void apply(job& x) {
    if (by_keys) {
      if (ended)
        mirror(x, last);
    } else {
      auto moved = failure.empty() ? ended : ended - 1;
      x.set_progress(moved, plan.size());
    }
    if (over && !logged) {
      logged = true;
      log_end(x.id(), token, kind, what, failure, started);
    }
    if (over)
      x.finish(failure);
  }
};

/// Starts `plan` as a job of `kind`: (202, the job's JSON) or the member's
/// refusal.
result start_plan(env& e, const call& c, std::string kind, std::string what,
                  std::vector<move_step> plan, bool by_keys) {
  auto pj = std::make_shared<plan_job>();
  pj->plan = plan;
  pj->by_keys = by_keys;
  pj->token = c.token_name;
  pj->kind = kind;
  pj->what = what;
  auto* member = e.member;
  auto [status, text] = member->start_moves(
    std::move(plan), [pj](size_t i, const move_status& m) {
      std::lock_guard<std::mutex> guard{pj->mu};
      pj->record(i, m);
      if (auto x = pj->j.lock())
        pj->apply(*x);
    });
  if (status != 202)
    return {status, text};
  auto j = e.jobs->create(std::move(kind), std::move(what),
                          by_keys ? "keys" : "partitions");
  j->set_refresh([pj, member](job& x) {
    move_step now;
    {
      std::lock_guard<std::mutex> guard{pj->mu};
      if (pj->over)
        return;
      now = pj->plan[pj->ended];
    }
    auto m = member->move_of(now.partition);
    if (!m)
      return;
    if (pj->by_keys)
      mirror(x, *m);
    else
      x.set_phase("partition " + std::to_string(now.partition) + " to node "
                  + std::to_string(now.to) + ": " + phase_of(*m));
  });
  {
    std::lock_guard<std::mutex> guard{pj->mu};
    pj->j = j;
    if (!by_keys)
      j->set_progress(0, pj->plan.size());
    pj->apply(*j);
  }
  return {202, j->to_json()};
}

const char* const not_a_cluster =
  "not a cluster: this node runs without --cluster.etcd and owns every "
  "partition";

void partitions(env& e, const call&, reply_fn reply) {
  if (e.member) {
    auto v = e.member->snapshot();
    return reply({200, map_fields(v.map) + ",\"moves\":"
                         + e.member->moves_json() + "}"});
  }
  if (!e.node || !e.sys)
    return reply({503, "the node is not running"});
  // A single node: the map its keeper holds (every partition its own).
  auto keeper = e.node->map_keeper();
  e.sys->spawn([keeper, reply](caf::event_based_actor* self) {
    self->request(keeper, std::chrono::seconds(5), caf::get_atom::value)
      .then([reply](const partition_map& m) { reply({200, map_fields(m) + "}"}); },
            [reply](const caf::error&) {
              reply({503, "the node's partition map did not answer"});
            });
  });
}

void partition_move(env& e, const call& c, reply_fn reply) {
  if (!e.member)
    return reply({409, not_a_cluster});
  auto p = static_cast<uint32_t>(number_arg(c, "partition"));
  auto to = number_arg(c, "to");
  reply(start_plan(e, c, "partition move",
                   "partition " + std::to_string(p) + " to node "
                     + std::to_string(to),
                   {{p, to}}, true));
}

void node_drain(env& e, const call& c, reply_fn reply) {
  if (!e.member)
    return reply({409, not_a_cluster});
  node_id n = number_arg(c, "node");
  auto v = e.member->snapshot();
  std::vector<uint32_t> owned;
  for (uint32_t p = 0; p < v.map.partitions(); ++p)
    if (v.map.owner(p) == n)
      owned.push_back(p);
  if (!v.registered.count(n) && owned.empty())
    return reply({409, "node " + std::to_string(n)
                         + " is not in the cluster (not registered, owns no "
                           "partition)"});
  // Where the partitions go: every other node this one can move to.
  std::vector<node_id> targets;
  for (auto& [id, _] : v.registered)
    if (id != n && (id == v.self ? v.lease_live : v.connected.count(id) > 0))
      targets.push_back(id);
  if (targets.empty())
    return reply({409, "node " + std::to_string(n)
                         + " is the only live node (no other is registered "
                           "and connected to this one): its partitions "
                           "have nowhere to go"});
  auto what = "node " + std::to_string(n) + " (partitions "
              + (owned.empty() ? "none" : partition_ranges(owned)) + ")";
  if (owned.empty()) {
    auto j = e.jobs->create("node drain", what, "partitions");
    log_end(j->id(), c.token_name, "node drain", what, {},
            std::chrono::steady_clock::now());
    j->finish();
    return reply({202, j->to_json()});
  }
  std::vector<move_step> plan;
  for (auto& [p, to] : drain_plan(owned, targets))
    plan.push_back({p, to});
  reply(start_plan(e, c, "node drain", what, std::move(plan), false));
}

} // namespace

void add_cluster_handlers(handler_table& t, env& e) {
  auto* ep = &e;
  t.add("partitions",
        [ep](const call& c, reply_fn reply) { partitions(*ep, c, reply); });
  t.add("partition move", [ep](const call& c, reply_fn reply) {
    partition_move(*ep, c, reply);
  });
  t.add("node drain",
        [ep](const call& c, reply_fn reply) { node_drain(*ep, c, reply); });
}

std::string cluster_status_fields(cluster_member* member) {
  if (!member)
    return {};
  auto v = member->snapshot();
  std::map<node_id, std::vector<uint32_t>> owned;
  for (auto& [id, _] : v.registered)
    owned[id];
  for (uint32_t p = 0; p < v.map.partitions(); ++p)
    if (v.map.owner(p) != no_node)
      owned[v.map.owner(p)].push_back(p);
  std::string nodes;
  for (auto& [id, ps] : owned) {
    auto reg = v.registered.find(id);
    bool live = id == v.self ? v.lease_live : reg != v.registered.end();
    nodes += (nodes.empty() ? "" : ",") + std::string("{\"node\":")
             + std::to_string(id) + ",\"address\":"
             + json_quote(reg == v.registered.end() ? "" : reg->second)
             + ",\"live\":" + (live ? "true" : "false")
             + ",\"self\":" + (id == v.self ? "true" : "false")
             + ",\"partitions\":" + std::to_string(ps.size())
             + ",\"owned\":" + json_quote(partition_ranges(ps)) + "}";
  }
  return "\"map_epoch\":" + std::to_string(v.map.map_epoch) + ",\"etcd\":"
         + (v.etcd_up ? "\"reachable\"" : "\"unreachable\"") + ",\"lease\":"
         + (v.lease_live ? "\"live\"" : "\"fenced\"") + ",\"nodes\":["
         + nodes + "]";
}

} // namespace parley::admin
