// The node's admin port (issue 23): refused without a token or with a
// wrong one; named tokens from `parleyd --admin-token-add`, whose names the
// node logs with each action; a tokens file others can read stops the node
// at start; the client port serves no admin request; status, metrics top,
// jobs and log level answer from a real node.

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parleyctl_run.hpp"
#include "parleyd_node.hpp"
#include "process.hpp"
#include "ws_client.hpp"

namespace {

using namespace parley;
using namespace parley::e2e;
using google::protobuf::Struct;
using google::protobuf::Value;

http_result admin_get(const node& n, const std::string& target,
                      const std::string& token = test_admin_token) {
  REQUIRE(n.admin_port != 0);
  return http_call(n.admin_port, "GET", target, {}, token);
}

Struct parse(const std::string& body) {
  Struct s;
  REQUIRE_MESSAGE(google::protobuf::util::JsonStringToMessage(body, &s).ok(),
                  body);
  return s;
}

/// The number at `path` (keys, nested objects) of a JSON object; -1 if
/// absent or not a number.
double number_at(const Struct& s, std::vector<std::string> path) {
  const Struct* at = &s;
  for (size_t i = 0; i < path.size(); ++i) {
    auto f = at->fields().find(path[i]);
    if (f == at->fields().end())
      return -1;
    if (i + 1 == path.size())
      return f->second.has_number_value() ? f->second.number_value() : -1;
    if (!f->second.has_struct_value())
      return -1;
    at = &f->second.struct_value();
  }
  return -1;
}

/// Lines of the node's log containing every one of `needles`.
size_t lines_with(node& n, const std::vector<std::string>& needles) {
  size_t count = 0;
  for (auto& l : n.log()) {
    bool all = true;
    for (auto& x : needles)
      all = all && l.find(x) != std::string::npos;
    count += all;
  }
  return count;
}

/// Runs `parleyd ARGS` to its end; (exit code, its output).
std::pair<int, std::vector<std::string>>
run_parleyd(const std::vector<std::string>& args) {
  child c{PARLEYD, args};
  std::string line;
  while (c.read_line(line, 30000)) {
  }
  auto st = c.wait(30000);
  return {exit_code(st), c.lines()};
}

bool any_line(const std::vector<std::string>& lines, const std::string& x) {
  for (auto& l : lines)
    if (l.find(x) != std::string::npos)
      return true;
  return false;
}

} // namespace

TEST_CASE("admin_requests_without_a_token_or_with_a_wrong_one_are_refused") {
  node n{admin_args()};
  auto none = admin_get(n, "/v1/admin/status", "");
  CHECK(none.status == 401);
  CHECK(number_at(parse(none.body), {"error", "status"}) == 401);
  auto wrong = admin_get(n, "/v1/admin/status", "not-the-token");
  CHECK(wrong.status == 403);
  CHECK(number_at(parse(wrong.body), {"error", "status"}) == 403);
  CHECK(admin_get(n, "/v1/admin/status").status == 200);
  CHECK(lines_with(n, {"admin: refused without a token", "status=401"}) == 1);
  CHECK(lines_with(n, {"admin: refused an unknown token", "status=403"})
        == 1);
  CHECK(lines_with(n, {"admin: token=operator", "command=\"status\"",
                       "status=200"})
        == 1);
  // Authenticated, but no such endpoint: the table's refusal.
  auto missing = admin_get(n, "/v1/admin/nothing-here");
  CHECK(missing.status == 404);
  CHECK(number_at(parse(missing.body), {"error", "status"}) == 404);
  // parleyctl: without a token it asks nothing (exit 2, says where a
  // token comes from); a wrong one is the node's 403, exit 4.
  auto at = "127.0.0.1:" + std::to_string(n.admin_port);
  auto no_token = run_parleyctl({"--node", at, "status"});
  CHECK(no_token.exit_code == 2);
  CHECK(no_token.err.find("no admin token") != std::string::npos);
  auto wrong_token = run_parleyctl({"--node", at, "--token", "nope", "status"});
  CHECK(wrong_token.exit_code == 4);
  CHECK(wrong_token.err.find("403") != std::string::npos);
  auto ok = ctl(n, {"status"});
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("connections") != std::string::npos);
  CHECK(lines_with(n, {"admin: refused without a token"}) == 1);
  CHECK(lines_with(n, {"admin: refused an unknown token"}) == 2);
}

TEST_CASE("a_named_token_from_admin_token_add_opens_the_admin_port_and_is_"
          "named_in_the_log") {
  node n{admin_args()};
  // Added while the node runs, to the default file in its data directory:
  // the node reads the file again and takes it at once.
  auto [code, out] = run_parleyd({"--data", n.dir, "--admin-token-add",
                                  "ops-alice"});
  REQUIRE(code == 0);
  REQUIRE(!out.empty());
  auto token = out.front(); // stdout first: the token alone
  CHECK(token.size() == 43);
  struct stat st {};
  REQUIRE(::stat((n.dir + "/admin-tokens").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto r = run_parleyctl(
    {"--node", "127.0.0.1:" + std::to_string(n.admin_port), "jobs"},
    {{"PARLEYCTL_TOKEN", token}});
  CHECK(r.exit_code == 0);
  CHECK(lines_with(n, {"admin: token=ops-alice", "command=\"jobs\"",
                       "status=200"})
        == 1);
  // The same name again is refused; the first token still works.
  auto again = run_parleyd({"--data", n.dir, "--admin-token-add",
                            "ops-alice"});
  CHECK(again.first != 0);
  CHECK(any_line(again.second, "already has a token named ops-alice"));
  // After a restart, from the file alone.
  n.restart();
  CHECK(admin_get(n, "/v1/admin/jobs", token).status == 200);
  CHECK(lines_with(n, {"admin: token=ops-alice", "command=\"jobs\""}) == 1);
}

TEST_CASE("a_tokens_file_that_turns_bad_at_run_time_refuses_its_tokens_"
          "and_a_token_removed_meanwhile_stays_refused_after_chmod_600") {
  node n{admin_args()};
  auto add = [&](const std::string& name) {
    auto [code, out] = run_parleyd({"--data", n.dir, "--admin-token-add",
                                    name});
    REQUIRE(code == 0);
    REQUIRE(!out.empty());
    return out.front();
  };
  auto alice = add("ops-alice");
  auto bob = add("ops-bob");
  CHECK(admin_get(n, "/v1/admin/jobs", bob).status == 200);
  // The flag's name is not given to a file token.
  auto taken = run_parleyd({"--data", n.dir, "--admin-token-add",
                            "operator"});
  CHECK(taken.first != 0);
  CHECK(any_line(taken.second, "operator is kept for"));
  // An editor removes bob's line and leaves the file 0644.
  auto file = n.dir + "/admin-tokens";
  std::string alice_line;
  {
    std::ifstream in{file};
    std::getline(in, alice_line);
  }
  REQUIRE(alice_line.rfind("ops-alice ", 0) == 0);
  std::ofstream{file, std::ios::trunc} << alice_line << "\n";
  REQUIRE(::chmod(file.c_str(), 0644) == 0);
  CHECK(admin_get(n, "/v1/admin/jobs", alice).status == 403);
  CHECK(admin_get(n, "/v1/admin/jobs", bob).status == 403);
  CHECK(admin_get(n, "/v1/admin/jobs").status == 200); // the flag's token
  CHECK(lines_with(n, {" error [parleyd] admin: refusing every token of "
                       "the tokens file",
                       "has mode 0644"})
        == 1);
  REQUIRE(::chmod(file.c_str(), 0600) == 0);
  CHECK(admin_get(n, "/v1/admin/jobs", alice).status == 200);
  CHECK(admin_get(n, "/v1/admin/jobs", bob).status == 403);
}

TEST_CASE("the_admin_log_names_the_arguments_but_never_a_password") {
  node n{admin_args()};
  auto r = ctl(n, {"user", "create", "carol", "very secret words"});
  REQUIRE(r.exit_code == 0);
  CHECK(lines_with(n, {"admin: token=operator", "command=\"user create\"",
                       "name=carol", "password=<hidden>", "status=2"})
        == 1);
  CHECK(lines_with(n, {"very secret"}) == 0);
  // A refused request names no argument from its query or body either.
  auto bad = http_call(n.admin_port, "POST", "/v1/admin/users",
                       R"({"name":"dan","password":"short"})",
                       test_admin_token);
  CHECK(bad.status == 400);
  CHECK(lines_with(n, {"admin: token=operator", "status=400"}) == 1);
  CHECK(lines_with(n, {"\"short\""}) == 0);
  // What a request carries reaches the log escaped: a line break in a
  // name cannot forge a log line.
  auto forged = admin_get(n, "/v1/admin/users/x%0A2099-01-01%20info%20forged");
  CHECK(forged.status == 400);
  CHECK(lines_with(n, {"admin: token=operator", "x\\u000a2099-01-01 info "
                                                "forged"})
        == 1);
  for (auto& l : n.log())
    CHECK(l.rfind("2099-01-01", 0) != 0);
}

TEST_CASE("a_tokens_file_others_can_read_or_a_malformed_one_stops_the_node_"
          "at_start") {
  auto dir = std::filesystem::temp_directory_path()
             / ("parley-admin-tokens-" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto file = (dir / "tokens").string();
  auto start = [&] {
    return run_parleyd({"--data", (dir / "data").string(), "--listen",
                        "127.0.0.1:0", "--parley.admin-listen=127.0.0.1:0",
                        "--parley.admin-tokens=" + file});
  };
  std::ofstream{file} << "ops " << std::string(64, 'a') << "\n";
  REQUIRE(::chmod(file.c_str(), 0644) == 0);
  auto open = start();
  CHECK(open.first == 1);
  CHECK(any_line(open.second, "has mode 0644"));
  CHECK(!any_line(open.second, "node started"));
  REQUIRE(::chmod(file.c_str(), 0600) == 0);
  std::ofstream{file, std::ios::app} << "ops-2 not-a-hash\n";
  auto bad = start();
  CHECK(bad.first == 1);
  CHECK(any_line(bad.second, "line 2: the hash of token ops-2"));
  // A line named operator: the name of --parley.admin-token-hash's token.
  std::ofstream{file, std::ios::trunc} << "operator " << std::string(64, 'a')
                                       << "\n";
  auto reserved = start();
  CHECK(reserved.first == 1);
  CHECK(any_line(reserved.second, "line 1: the token name operator is kept "
                                  "for --parley.admin-token-hash"));
  // A named file that is missing is an error too (a typo must not leave
  // the node without its tokens silently).
  std::filesystem::remove(file);
  auto missing = start();
  CHECK(missing.first == 1);
  CHECK(any_line(missing.second, "cannot read the admin tokens file"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("the_client_port_serves_no_admin_request") {
  node n{admin_args()};
  auto status = http_call(n.port, "GET", "/v1/admin/status", {},
                          test_admin_token);
  CHECK(status.status == 404);
  auto metrics = http_call(n.port, "GET", "/v1/admin/metrics", {},
                           test_admin_token);
  CHECK(metrics.status == 404);
  auto block = http_call(n.port, "POST", "/v1/admin/block",
                         R"({"username":"x","blocked":true})",
                         test_admin_token);
  CHECK(block.status == 404);
}

TEST_CASE("status_reports_the_node_its_connections_and_leveldb_levels") {
  node n{admin_args()};
  auto before = parse(admin_get(n, "/v1/admin/status").body);
  CHECK(number_at(before, {"node"}) == 1);
  CHECK(number_at(before, {"connections"}) == 0);
  CHECK(number_at(before, {"uptime_s"}) >= 0);
  CHECK(number_at(before, {"store_bytes"}) > 0);
  CHECK(number_at(before, {"outbox_backlog"}) == 0);
  CHECK(number_at(before, {"conversations_running"}) == 0);
  CHECK(!before.fields().at("version").string_value().empty());
  // LevelDB's seven levels, each with its files and compaction figures.
  REQUIRE(before.fields().count("levels"));
  auto& levels = before.fields().at("levels").list_value();
  REQUIRE(levels.values_size() == 7);
  for (int i = 0; i < 7; ++i) {
    auto& l = levels.values(i).struct_value();
    CHECK(number_at(l, {"level"}) == i);
    CHECK(number_at(l, {"files"}) >= 0);
    CHECK(number_at(l, {"write_mb"}) >= 0);
  }
  auto alice = n.account("alice", "phone");
  n.account("bob", "phone");
  ws_client c{n.port};
  auto conv = open_chat(c, alice, "bob", gateway::frame_format::binary);
  CHECK(conv > 0);
  auto after = parse(admin_get(n, "/v1/admin/status").body);
  CHECK(number_at(after, {"connections"}) == 1);
  CHECK(number_at(after, {"conversations_running"}) >= 1);
}

TEST_CASE("log_level_changes_at_run_time") {
  node n{admin_args()};
  CHECK(admin_get(n, "/v1/admin/status").status == 200);
  CHECK(lines_with(n, {"admin: request GET /v1/admin/status"}) == 0);
  auto r = ctl(n, {"--json", "log", "level", "debug"});
  REQUIRE(r.exit_code == 0);
  auto body = parse(r.out);
  CHECK(body.fields().at("level").string_value() == "debug");
  CHECK(body.fields().at("was").string_value() == "info");
  CHECK(admin_get(n, "/v1/admin/status").status == 200);
  CHECK(lines_with(n, {"debug", "admin: request GET /v1/admin/status"})
        == 1);
  CHECK(lines_with(n, {"admin: token=operator", "command=\"log level\"",
                       "level=debug", "status=200"})
        == 1);
  auto bad = http_call(n.admin_port, "POST", "/v1/admin/log-level",
                       R"({"level":"loud"})", test_admin_token);
  CHECK(bad.status == 400);
}

TEST_CASE("metrics_counters_grow_after_a_send") {
  node n{admin_args()};
  auto zero = parse(admin_get(n, "/v1/admin/metrics").body);
  CHECK(number_at(zero, {"counters", "logins"}) == 0);
  auto alice = n.account("alice", "phone");
  n.account("bob", "phone");
  ws_client c{n.port};
  auto conv = open_chat(c, alice, "bob", gateway::frame_format::binary);
  auto before = parse(admin_get(n, "/v1/admin/metrics").body);
  CHECK(number_at(before, {"counters", "logins"}) == 2);
  auto a = c.call(send_frame(3, conv, "m1", "hello"),
                  gateway::frame_format::binary);
  REQUIRE(a);
  REQUIRE(a->has_accepted());
  auto after = parse(admin_get(n, "/v1/admin/metrics").body);
  CHECK(number_at(after, {"time_ms"}) >= number_at(before, {"time_ms"}));
  auto grew = [&](std::vector<std::string> path) {
    CAPTURE(path.back());
    CHECK(number_at(after, path) > number_at(before, path));
  };
  grew({"counters", "messages_accepted"});
  grew({"counters", "commits"});
  grew({"counters", "frames_in"});
  CHECK(number_at(after, {"gauges", "connections"}) == 1);
  for (auto* h : {"send", "commit"}) {
    CAPTURE(h);
    auto& lat = after.fields().at("latency").struct_value().fields().at(h)
                  .struct_value();
    auto bounds = lat.fields().at("bounds_us").list_value().values_size();
    auto& counts = lat.fields().at("counts").list_value();
    CHECK(bounds > 0);
    CHECK(counts.values_size() == bounds + 1);
  }
  // The store writer counts a synced write before it answers, so the
  // send's commit is in; the send's own latency is taken after its answer
  // left, so it is not asserted.
  double commits = 0;
  for (auto& v : after.fields().at("latency").struct_value().fields()
                   .at("commit").struct_value().fields().at("counts")
                   .list_value().values())
    commits += v.number_value();
  CHECK(commits >= 1);
}

TEST_CASE("jobs_lists_none_on_a_fresh_node_and_an_unknown_job_is_404") {
  node n{admin_args()};
  auto jobs = admin_get(n, "/v1/admin/jobs");
  CHECK(jobs.status == 200);
  CHECK(jobs.body == R"({"jobs":[]})");
  auto unknown = admin_get(n, "/v1/admin/jobs/12345");
  CHECK(unknown.status == 404);
  CHECK(number_at(parse(unknown.body), {"error", "status"}) == 404);
  auto watch = ctl(n, {"job", "watch", "12345"});
  CHECK(watch.exit_code == 1);
  CHECK(watch.err.find("no job 12345") != std::string::npos);
}
