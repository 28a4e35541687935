// parleyctl against a real three-node cluster (issue 23): `status` lists
// every node (table and --json), `partitions` shows the map etcd holds,
// `partition move` under traffic follows its job to the end (--json: one
// job JSON a line, progress never going back, ending done with done ==
// total; with the new owner frozen until parleyctl shows the move under
// way, in --json and in line mode) and moves the partition with no message
// lost or duplicated, the node logs each job's end with the token's name,
// `node drain` empties a node, a move the driver refuses (to the owner
// itself) ends failed with its reason, and a drain is refused for a node
// that is not in the cluster and for the only live node. A single node refuses a
// move (not a cluster) and shows every partition as its own.

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "cluster_load.hpp"
#include "parleyctl_run.hpp"
#include "process.hpp"

using namespace parley;
using namespace parley::e2e;

namespace {

cluster_options ctl_cluster() {
  cluster_options opts;
  opts.extra = admin_args();
  opts.extra.push_back("--parley.no-rate-limits");
  return opts;
}

/// parleyctl with node `n`'s admin port and the test token, then `args`.
ctl_result ctl_at(test_cluster& c, node_id n,
                  const std::vector<std::string>& args) {
  auto port = admin_port(c.at(n));
  REQUIRE_MESSAGE(port != 0, "node " << n << " logged no admin port");
  std::vector<std::string> all{"--node", "127.0.0.1:" + std::to_string(port),
                               "--token", test_admin_token};
  all.insert(all.end(), args.begin(), args.end());
  auto r = run_parleyctl(all, {}, 120000);
  if (r.exit_code != 0)
    MESSAGE("parleyctl (node " << n << ") " << args.back() << ": exit "
                               << r.exit_code << "\nstdout:\n" << r.out
                               << "\nstderr:\n" << r.err);
  return r;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos)
      end = text.size();
    if (end > at)
      out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

/// The {"node":N,...} object of `status --json`'s "nodes" ("" if none).
std::string node_row(const std::string& json, node_id n) {
  std::smatch m;
  if (std::regex_search(json, m,
                        std::regex("\\{\"node\":" + std::to_string(n)
                                   + ",\"address\"[^}]*\\}")))
    return m[0].str();
  return "";
}

/// `partitions --json`'s owners by partition (0 for "none").
std::map<uint32_t, node_id> owners_in(const std::string& json) {
  std::map<uint32_t, node_id> out;
  std::regex row("\\{\"partition\":([0-9]+),\"owner\":([0-9]+|\"none\")\\}");
  for (auto it = std::sregex_iterator(json.begin(), json.end(), row);
       it != std::sregex_iterator(); ++it) {
    auto owner = (*it)[2].str();
    out[std::stoul((*it)[1].str())] = owner == "\"none\"" ? 0
                                                          : std::stoull(owner);
  }
  return out;
}

/// Checks the --json output of a followed job: every line a JSON object
/// of the same job, `done` never going back, the last one done with done
/// == total; returns the lines.
std::vector<std::string> check_job_lines(const ctl_result& r) {
  auto lines = lines_of(r.out);
  REQUIRE_FALSE(lines.empty());
  auto id = json_text_field(lines.front(), "job");
  CHECK_FALSE(id.empty());
  int64_t done = -1;
  for (auto& l : lines) {
    CHECK_MESSAGE(json_text_field(l, "job") == id, l);
    auto d = json_number_field(l, "done");
    auto total = json_number_field(l, "total");
    CHECK_MESSAGE(d >= done, "progress went back: " << l);
    if (total > 0)
      CHECK_MESSAGE(d <= total, l);
    done = std::max(done, d);
  }
  auto& last = lines.back();
  CHECK_MESSAGE(json_text_field(last, "state") == "done", last);
  CHECK(json_number_field(last, "done") == json_number_field(last, "total"));
  std::string seen;
  for (auto& l : lines)
    seen += "\n  " + json_text_field(l, "state") + " "
            + json_text_field(l, "phase") + " "
            + std::to_string(json_number_field(l, "done")) + "/"
            + std::to_string(json_number_field(l, "total")) + " at "
            + std::to_string(json_number_field(l, "elapsed_ms")) + " ms";
  MESSAGE(lines.size() << " job lines (state phase done/total):" << seen);
  return lines;
}

/// Runs parleyctl against node `via` with node `frozen` stopped (SIGSTOP)
/// from before the start until parleyctl prints a line for which
/// `in_progress` holds (the move cannot finish meanwhile: the frozen node
/// applies no chunk), then thawed (SIGCONT); reads on to parleyctl's exit.
/// `seen` gets the in-progress line ("" if none came within 3 s: then the
/// node was thawed, and the move ran on).
/// The frozen node must stay stopped well under its lease (5 s): parleyctl
/// polls every 0.5 s and prints a line mode's change at most every 1 s.
ctl_result ctl_frozen(test_cluster& c, node_id via, node_id frozen,
                      const std::vector<std::string>& args,
                      const std::function<bool(const std::string&)>& in_progress,
                      std::string& seen) {
  auto port = admin_port(c.at(via));
  REQUIRE_MESSAGE(port != 0, "node " << via << " logged no admin port");
  std::vector<std::string> all{"--node", "127.0.0.1:" + std::to_string(port),
                               "--token", test_admin_token};
  all.insert(all.end(), args.begin(), args.end());
  c.freeze(frozen);
  child ctl{PARLEYCTL, all};
  std::string line;
  seen.clear();
  // Thawed after 3 s at most (a bound on the failure's path only).
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (seen.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  until - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0 || !ctl.read_line(line, static_cast<int>(left)))
      break;
    if (in_progress(line))
      seen = line;
  }
  c.thaw(frozen);
  while (ctl.read_line(line, 120000)) {
  }
  ctl_result r;
  r.exit_code = exit_code(ctl.wait(10000));
  for (auto& l : ctl.lines())
    r.out += l + "\n";
  if (r.exit_code != 0 || seen.empty())
    MESSAGE("parleyctl (node " << via << ", node " << frozen
                               << " frozen) exit " << r.exit_code
                               << "\noutput:\n" << r.out);
  return r;
}

/// Whether node `n`'s log has a line with every one of `parts`.
bool logged(test_cluster& c, node_id n, const std::vector<std::string>& parts) {
  for (auto& line : lines_of(c.at(n).log())) {
    bool all = true;
    for (auto& p : parts)
      all = all && line.find(p) != std::string::npos;
    if (all)
      return true;
  }
  return false;
}

} // namespace

TEST_CASE("parleyctl_status_and_partitions_show_the_three_node_cluster") {
  test_cluster c{ctl_cluster()};
  auto map = c.map();

  auto js = ctl_at(c, 1, {"--json", "status"});
  REQUIRE(js.exit_code == 0);
  CHECK(js.out.find("\"etcd\":\"reachable\"") != std::string::npos);
  CHECK(json_number_field(js.out, "map_epoch")
        == static_cast<int64_t>(map.map_epoch));
  std::vector<std::string> addresses;
  for (node_id n = 1; n <= 3; ++n) {
    auto row = node_row(js.out, n);
    REQUIRE_MESSAGE(!row.empty(), "node " << n << " missing: " << js.out);
    CHECK(row.find("\"live\":true") != std::string::npos);
    CHECK(row.find(n == 1 ? "\"self\":true" : "\"self\":false")
          != std::string::npos);
    int64_t owned = 0;
    for (auto o : map.owners)
      owned += o == n;
    CHECK(json_number_field(row, "partitions") == owned);
    addresses.push_back(json_text_field(row, "address"));
    CHECK(addresses.back().rfind("127.0.0.1:", 0) == 0);
  }

  // The table through another node: every node's address on a row.
  auto table = ctl_at(c, 2, {"status"});
  REQUIRE(table.exit_code == 0);
  MESSAGE("parleyctl status (node 2):\n" << table.out);
  for (auto& a : addresses)
    CHECK_MESSAGE(table.out.find(a) != std::string::npos, a);

  auto pj = ctl_at(c, 3, {"--json", "partitions"});
  REQUIRE(pj.exit_code == 0);
  CHECK(json_number_field(pj.out, "map_epoch")
        == static_cast<int64_t>(map.map_epoch));
  auto owners = owners_in(pj.out);
  REQUIRE(owners.size() == map.partitions());
  for (uint32_t p = 0; p < map.partitions(); ++p)
    CHECK(owners[p] == map.owner(p));
  auto pt = ctl_at(c, 3, {"partitions"});
  REQUIRE(pt.exit_code == 0);
  MESSAGE("parleyctl partitions (node 3):\n" << pt.out);
  CHECK(pt.out.find("owner") != std::string::npos);
}

TEST_CASE("parleyctl_partition_move_under_traffic_reports_progress_to_done") {
  test_cluster c{ctl_cluster()};
  const node_id from = 1, to = 2, via = 3;
  auto users = users_on(c, {2, 2, 3, 3}, "member", from);
  std::vector<uint64_t> ids;
  for (size_t i = 1; i < users.size(); ++i)
    ids.push_back(users[i].id);
  auto conv = group_on(c, c.port(2), users[0], ids, from);
  auto p = partition_of(placement_key::conversation(conv), c.partitions());
  MESSAGE("group " << conv << " in partition " << p);
  // Data for a move of several chunks (move_chunk_keys each), in another
  // group of the same partition (a sync of the group's history stays
  // short).
  auto t0 = std::chrono::steady_clock::now();
  {
    device d;
    d.connect(c.port(2), users[0].token);
    uint64_t bulk = 0;
    for (int k = 0; k < 100 && !bulk; ++k) {
      auto f = d.call(group_create("bulk", ids));
      REQUIRE(f);
      REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
      auto g = f->accepted().conversation_id();
      if (partition_of(placement_key::conversation(g), c.partitions()) == p)
        bulk = g;
    }
    REQUIRE(bulk != 0);
    for (int batch = 0; batch < 40; ++batch) {
      std::vector<uint32_t> rids;
      for (int i = 0; i < 100; ++i) {
        auto cmid = "pre-" + std::to_string(batch * 100 + i);
        rids.push_back(d.send(text(bulk, cmid, payload_of(cmid))));
      }
      for (auto rid : rids) {
        auto f = d.answer(rid);
        REQUIRE(f);
        REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
      }
    }
  }
  MESSAGE("4000 messages sent in "
          << std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now() - t0)
               .count()
          << " ms");
  auto port_of = [](size_t i) -> node_id { return i < 2 ? 2 : 3; };
  auto senders = start_senders(c, users, conv, port_of);
  auto every = [&](const std::vector<int>& base, int more) {
    return each_sent(senders, base, more);
  };
  CHECK(eventually([&] { return every({0, 0, 0, 0}, 10); }));

  // The new owner frozen until parleyctl shows the move under way (keys
  // counted, not all copied: the frozen node applies no chunk), then
  // thawed: the move goes on to done.
  std::string mid;
  auto r = ctl_frozen(
    c, via, to,
    {"--json", "partition", "move", std::to_string(p), std::to_string(to)},
    [](const std::string& l) {
      auto total = json_number_field(l, "total");
      return json_text_field(l, "state") == "running" && total > 0
             && json_number_field(l, "done") < total;
    },
    mid);
  REQUIRE(r.exit_code == 0);
  MESSAGE("under way: " << mid);
  REQUIRE_FALSE(mid.empty());
  CHECK(json_text_field(mid, "phase").rfind("streaming", 0) == 0);
  auto lines = check_job_lines(r);
  CHECK(json_text_field(lines.front(), "kind") == "partition move");
  CHECK(json_text_field(lines.front(), "unit") == "keys");
  CHECK(json_number_field(lines.back(), "done")
        > json_number_field(mid, "done"));
  CHECK(c.map().owner(p) == to);
  // The node that ran it logs the end with the token's name.
  auto what = "what=\"partition " + std::to_string(p) + " to node "
              + std::to_string(to) + "\"";
  CHECK(logged(c, via,
               {"admin job ended job=" + json_text_field(mid, "job") + " ",
                "token=operator", "command=\"partition move\"", what,
                "outcome=done", "elapsed_ms="}));
  auto owners = owners_in(ctl_at(c, 1, {"--json", "partitions"}).out);
  CHECK(owners[p] == to);

  // The senders keep going on the new owner; then the same partition goes
  // back, followed in the table mode (a line per progress change).
  auto after = accepted_counts(senders);
  CHECK(eventually([&] { return every(after, 10); }, 60000));
  // The same with the old owner (the new target) frozen: a line
  // "partition move: streaming D/T keys" with D < T before the end.
  std::string mid_line;
  auto back = ctl_frozen(
    c, via, from,
    {"partition", "move", std::to_string(p), std::to_string(from)},
    [](const std::string& l) {
      std::smatch m;
      return std::regex_search(l, m,
                               std::regex("^partition move: streaming.* "
                                          "([0-9]+)/([0-9]+) keys"))
             && std::stoull(m[1].str()) < std::stoull(m[2].str());
    },
    mid_line);
  CHECK(back.exit_code == 0);
  CHECK_MESSAGE(!mid_line.empty(), back.out);
  CHECK(back.out.find("partition move done: ") != std::string::npos);
  MESSAGE("parleyctl partition move (lines):\n" << back.out);
  CHECK(c.map().owner(p) == from);
  after = accepted_counts(senders);
  CHECK(eventually([&] { return every(after, 10); }, 60000));
  for (auto& s : senders)
    s->stop();

  std::vector<const sender*> all;
  for (auto& s : senders) {
    print_stats(*s);
    CHECK(s->stats().problems.empty());
    all.push_back(s.get());
  }
  for (size_t i = 0; i < users.size(); ++i) {
    auto problems = check_history(c.port(port_of(i)), users[i].token, conv,
                                  all);
    for (auto& pr : problems)
      MESSAGE(users[i].name << "'s device: " << pr);
    CHECK(problems.empty());
  }
  senders.clear();
}

TEST_CASE("parleyctl_node_drain_empties_a_node_and_is_refused_for_the_only_"
          "live_node") {
  test_cluster c{ctl_cluster()};
  int64_t owned = 0;
  for (auto o : c.map().owners)
    owned += o == 3;
  REQUIRE(owned > 0);

  auto r = ctl_at(c, 1, {"--json", "node", "drain", "3"});
  REQUIRE(r.exit_code == 0);
  auto lines = check_job_lines(r);
  CHECK(json_text_field(lines.back(), "unit") == "partitions");
  CHECK(json_number_field(lines.back(), "total") == owned);
  CHECK(logged(c, 1,
               {"admin job ended job=" + json_text_field(lines.back(), "job")
                  + " ",
                "token=operator", "command=\"node drain\"",
                "what=\"node 3 (partitions ", "outcome=done", "elapsed_ms="}));
  auto owners = owners_in(ctl_at(c, 2, {"--json", "partitions"}).out);
  REQUIRE(owners.size() == c.partitions());
  for (auto& [p, n] : owners) {
    CHECK_MESSAGE(n != 3, "partition " << p << " still on node 3");
    CHECK_MESSAGE(n != 0, "partition " << p << " owned by nobody");
    CHECK(c.map().owner(p) == n);
  }

  // A move the driver refuses ends its job failed, with the reason.
  auto same = ctl_at(c, 1, {"partition", "move", "0", std::to_string(owners[0])});
  CHECK(same.exit_code != 0);
  CHECK(same.err.find("already on node") != std::string::npos);
  CHECK(logged(c, 1,
               {"admin job ended job=", "token=operator",
                "command=\"partition move\"", "what=\"partition 0 to node ",
                "outcome=failed error=\"partition already on node "}));

  auto unknown = ctl_at(c, 1, {"node", "drain", "9"});
  CHECK(unknown.exit_code != 0);
  CHECK(unknown.err.find("not in the cluster") != std::string::npos);

  // Nodes 2 and 3 leave: node 1 is the only live node.
  CHECK(c.at(2).terminate() == 0);
  CHECK(c.at(3).terminate() == 0);
  node_health h;
  CHECK_MESSAGE(eventually([&] {
                  h = c.health(1);
                  return h.answered && h.peers.empty();
                }),
                h.body);
  auto alone = ctl_at(c, 1, {"node", "drain", "1"});
  CHECK(alone.exit_code != 0);
  CHECK(alone.err.find("only live node") != std::string::npos);
}

TEST_CASE("parleyctl_partition_move_on_a_single_node_is_refused") {
  e2e::node n{admin_args()};
  auto r = ctl(n, {"partition", "move", "0", "2"});
  CHECK(r.exit_code != 0);
  CHECK(r.err.find("not a cluster") != std::string::npos);
  auto pj = ctl(n, {"--json", "partitions"});
  REQUIRE(pj.exit_code == 0);
  auto owners = owners_in(pj.out);
  CHECK_FALSE(owners.empty());
  for (auto& [p, o] : owners)
    CHECK(o == single_node_id);
}
