#include "runtime/admin/handlers.hpp"

// The node's own commands (command_table.cpp): `status`, `jobs`, `job
// watch JOB`, `metrics top` and `log level LEVEL`, answered on the admin
// port's thread. metrics top reads only the node's lock-free counters.
// status reads them too, but also asks the store on that thread: the data
// directory's size ("parley.disk-bytes" walks its files) and LevelDB's
// "leveldb.stats" and per-level file counts; the number of running
// conversations is the length of the directory's list of every
// conversation handle (asked from a spawned actor, with a timeout: the
// directory's interface has no count query, and adding one would change
// actors/directory.hpp, which much of the tree includes).
//
// metrics top's answer (parleyctl computes rates and percentiles from two
// of them):
//   {"time_ms":N,"counters":{"name":N,...},"gauges":{"name":N,...},
//    "latency":{"send":{"bounds_us":[...],"counts":[...],"sum_us":S},
//               "commit":{...}}}
// counters only grow; counts are per bucket (not cumulative), one more
// than bounds_us, the last above every bound.

#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <sstream>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "actors/node_metrics.hpp"
#include "runtime/admin/jobs.hpp"
#include "runtime/admin/json_text.hpp"
#include "runtime/core/type_ids.hpp"
#include "runtime/gateway/metrics.hpp"
#include "runtime/node.hpp"
#include "runtime/store/kv_backend.hpp"

namespace parley::admin {

namespace {

using std::to_string;

/// LevelDB's levels: [{"level":0,"files":N,"size_mb":..,"time_s":..,
/// "read_mb":..,"write_mb":..},...], every level (0-6) whose file count the
/// store reports ("leveldb.num-files-at-levelN"), with the compaction
/// figures of "leveldb.stats" (the rows under its dashed line; it lists
/// only levels with files or compaction time). [] for a store without
/// these properties.
std::string levels_json(kv_backend& kv) {
  struct row {
    double size = 0, time = 0, read = 0, write = 0;
  };
  std::map<int, row> rows;
  auto stats = kv.property("leveldb.stats");
  if (auto dashes = stats.find("---"); dashes != std::string::npos) {
    std::istringstream in{stats.substr(stats.find('\n', dashes) + 1)};
    std::string line;
    while (std::getline(in, line)) {
      int level = 0, files = 0;
      row r;
      if (std::sscanf(line.c_str(), "%d %d %lf %lf %lf %lf", &level, &files,
                      &r.size, &r.time, &r.read, &r.write)
          != 6)
        break;
      rows[level] = r;
    }
  }
  std::string out = "[";
  for (int level = 0; level < 7; ++level) {
    auto files = kv.property("leveldb.num-files-at-level"
                             + std::to_string(level));
    if (files.empty()
        || files.find_first_not_of("0123456789") != std::string::npos)
      break;
    auto r = rows[level];
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"level\":%d,\"files\":%s,\"size_mb\":%.0f,"
                  "\"time_s\":%.0f,\"read_mb\":%.0f,\"write_mb\":%.0f}",
                  level, files.c_str(), r.size, r.time, r.read, r.write);
    out += (level ? "," : "") + std::string{buf};
  }
  return out + "]";
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// The status fields read without asking an actor, without braces.
std::string status_fields(env& e) {
  auto up = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - e.started)
              .count();
  std::string out = "\"node\":"
                    + to_string(e.node ? e.node->self() : single_node_id)
                    + ",\"version\":" + json_quote(e.version)
                    + ",\"uptime_s\":" + to_string(up / 1000)
                    + ",\"started_ms\":" + to_string(now_ms() - up);
  auto* g = e.node ? e.node->gateway_stats() : nullptr;
  out += ",\"connections\":"
         + to_string(g ? g->connections_open.load() : uint64_t{0});
  if (e.node && e.node->metrics()) {
    auto& m = *e.node->metrics();
    out += ",\"devices_online\":" + to_string(m.devices_online.load())
           + ",\"outbox_backlog\":" + to_string(m.outbox_backlog.load())
           + ",\"fanout_backlog\":" + to_string(m.fanout_backlog.load())
           + ",\"projection_backlog\":"
           + to_string(m.projection_backlog.load());
  }
  if (e.kv) {
    auto bytes = e.kv->property("parley.disk-bytes");
    out += ",\"store_bytes\":" + (bytes.empty() ? std::string{"0"} : bytes)
           + ",\"levels\":" + levels_json(*e.kv);
  }
  return out;
}

void status(env& e, const call&, reply_fn reply) {
  auto fields = status_fields(e);
  // The cluster's part last: its nodes print as a table below the node's
  // own lines.
  auto cluster = cluster_status_fields(e.member);
  if (!cluster.empty())
    cluster = "," + cluster;
  if (!e.sys || !e.node)
    return reply({200, "{" + fields + cluster + "}"});
  // The fields are taken now; the actor below touches nothing but the
  // directory's answer and its own captures (it may outlive the env).
  auto dir = e.node->directory();
  e.sys->spawn([dir, fields, cluster, reply](caf::event_based_actor* self) {
    self->request(dir, std::chrono::seconds(5), caf::get_atom::value)
      .then(
        [fields, cluster, reply](const std::vector<conversation_actor>& xs) {
          reply({200, "{" + fields + ",\"conversations_running\":"
                        + to_string(xs.size()) + cluster + "}"});
        },
        [fields, cluster, reply](const caf::error& err) {
          spdlog::warn("admin: status: the directory did not answer "
                       "error=\"{}\"",
                       to_string(err));
          reply({200, "{" + fields + ",\"conversations_running\":null"
                        + cluster + "}"});
        });
  });
}

std::string histogram_json(const latency_histogram& h) {
  std::string out = "{\"bounds_us\":[";
  for (size_t i = 0; i < latency_histogram::bounds_us.size(); ++i)
    out += (i ? "," : "") + to_string(latency_histogram::bounds_us[i]);
  out += "],\"counts\":[";
  auto counts = h.counts();
  for (size_t i = 0; i < counts.size(); ++i)
    out += (i ? "," : "") + to_string(counts[i]);
  return out + "],\"sum_us\":" + to_string(h.sum_us()) + "}";
}

/// "name":N,... of `items`.
template <class T>
std::string members(std::initializer_list<std::pair<const char*, T>> items) {
  std::string out;
  for (auto& [k, v] : items)
    out += (out.empty() ? "\"" : ",\"") + std::string{k} + "\":"
           + to_string(v);
  return out;
}

void metrics_top(env& e, const call&, reply_fn reply) {
  static const gateway::metrics no_gateway;
  static const node_metrics no_node;
  auto* gp = e.node ? e.node->gateway_stats() : nullptr;
  auto& g = gp ? *gp : no_gateway;
  auto& m = e.node && e.node->metrics() ? *e.node->metrics() : no_node;
  uint64_t commits = 0;
  for (auto c : m.commit_latency.counts())
    commits += c;
  auto counters = members<uint64_t>({
    {"messages_accepted", g.messages_accepted.load()},
    {"messages_delivered", m.messages_delivered.load()},
    {"commits", commits},
    {"fanout_pushes", m.fanout_pushes.load()},
    {"rate_limited", g.rate_limited.load()},
    {"logins", g.logins.load()},
    {"connections_total", g.connections_total.load()},
    {"frames_in", g.frames_in.load()},
    {"frames_out", g.frames_out.load()},
    {"errors_out", g.errors_out.load()},
    {"sync_requests", g.sync_requests.load()},
    {"http_requests", g.http_requests.load()},
    {"slow_disconnects", g.slow_disconnects.load()},
  });
  auto gauges = members<int64_t>({
    {"connections", static_cast<int64_t>(g.connections_open.load())},
    {"devices_online", m.devices_online.load()},
    {"deliveries_unacked", m.deliveries_unacked.load()},
    {"outbox_backlog", m.outbox_backlog.load()},
    {"fanout_backlog", m.fanout_backlog.load()},
    {"projection_backlog", m.projection_backlog.load()},
  });
  reply({200, "{\"time_ms\":" + to_string(now_ms()) + ",\"counters\":{"
                + counters + "},\"gauges\":{" + gauges
                + "},\"latency\":{\"send\":"
                + histogram_json(m.send_latency)
                + ",\"commit\":" + histogram_json(m.commit_latency) + "}}"});
}

/// The command table's name of a spdlog level.
std::string level_name(spdlog::level::level_enum l) {
  static const char* names[] = {"trace", "debug", "info",    "warn",
                                "error", "critical", "off"};
  auto i = static_cast<size_t>(l);
  return i < 7 ? names[i] : "unknown";
}

void log_level(env&, const call& c, reply_fn reply) {
  auto i = c.args.find("level");
  if (i == c.args.end())
    return reply({400, "a level is required"});
  auto next = spdlog::level::from_str(i->second);
  if (next == spdlog::level::off && i->second != "off")
    return reply({400, "unknown log level " + i->second});
  auto was = spdlog::get_level();
  spdlog::set_level(next);
  // Lines reach the log whole and at once down to the level shown.
  spdlog::flush_on(std::min(next, spdlog::level::info));
  spdlog::info("admin: log level now {} (was {})", level_name(next),
               level_name(was));
  reply({200, "{\"level\":" + json_quote(level_name(next))
                + ",\"was\":" + json_quote(level_name(was)) + "}"});
}

void job_watch(env& e, const call& c, reply_fn reply) {
  auto i = c.args.find("job");
  auto text = i == c.args.end() ? std::string{} : i->second;
  errno = 0;
  char* end = nullptr;
  auto id = std::strtoull(text.c_str(), &end, 10);
  std::shared_ptr<job> j;
  if (!text.empty() && *end == '\0' && errno == 0 && e.jobs)
    j = e.jobs->find(id);
  if (!j)
    return reply({404, "no job " + text + " on this node (`jobs` lists "
                                          "them)"});
  reply({200, j->to_json()});
}

} // namespace

void add_node_handlers(handler_table& t, env& e) {
  auto* ep = &e;
  t.add("status", [ep](const call& c, reply_fn r) { status(*ep, c, r); });
  t.add("jobs", [ep](const call&, reply_fn r) {
    r({200, ep->jobs ? ep->jobs->to_json() : "{\"jobs\":[]}"});
  });
  t.add("job watch",
        [ep](const call& c, reply_fn r) { job_watch(*ep, c, r); });
  t.add("metrics top",
        [ep](const call& c, reply_fn r) { metrics_top(*ep, c, r); });
  t.add("log level",
        [ep](const call& c, reply_fn r) { log_level(*ep, c, r); });
}

} // namespace parley::admin
