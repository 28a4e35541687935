// parleyctl one-shot: bad input, the ways a node can refuse, and what it
// prints for tables, jobs and metrics (issue 23). The node's answers come
// from a scripted admin port (parleyctl_fakes.hpp) where a real node would
// rarely give them on demand; parleyctl itself is the real binary.

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include <unistd.h>

#include <sys/stat.h>

#include "parleyctl_fakes.hpp"
#include "parleyctl_run.hpp"

namespace parley::e2e {

namespace {

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::vector<std::string> at(const fake_admin& a,
                            std::vector<std::string> args) {
  std::vector<std::string> all{"--node", a.address(), "--token", "tok"};
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

const std::string job_json =
  R"({"job":"7","kind":"inbox rebuild","what":"all","state":"%s",)"
  R"("phase":"%s","done":%d,"total":300,"unit":"users","error":"%s",)"
  R"("elapsed_ms":%d})";

std::string job(const char* state, const char* phase, int done,
                const char* error = "") {
  char buf[512];
  std::snprintf(buf, sizeof buf, job_json.c_str(), state, phase, done, error,
                done * 10);
  return buf;
}

} // namespace

TEST_CASE("parleyctl_unknown_command_exits_2_with_the_closest_suggested") {
  auto r = run_parleyctl({"--token", "t", "stauts"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "did you mean 'status'"));
  r = run_parleyctl({"--token", "t", "user", "shwo", "bob"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "did you mean 'user show'"));
}

TEST_CASE("parleyctl_wrong_argument_exits_2_naming_it") {
  auto r = run_parleyctl({"--token", "t", "partition", "move", "x", "2"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "bad partition 'x'"));
  CHECK(has(r.err, "usage: partition move PARTITION TO"));
  r = run_parleyctl({"--token", "t", "log", "level", "loud"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "bad level 'loud'"));
  r = run_parleyctl({"--token", "t", "user", "show"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "missing USER"));
  r = run_parleyctl({"--bogus", "status"});
  CHECK(r.exit_code == 2);
}

TEST_CASE("parleyctl_without_a_token_exits_2_and_says_where_one_goes") {
  auto r = run_parleyctl({"status"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "no admin token"));
  // A token that would break the request's header is refused here.
  r = run_parleyctl({"--token", "tok\r\nX-Evil: 1", "status"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "control character"));
  // help needs neither token nor node.
  r = run_parleyctl({"help", "user", "limit"});
  CHECK(r.exit_code == 0);
  CHECK(has(r.out, "usage: user limit USER LIMIT RATE"));
}

TEST_CASE("parleyctl_exits_3_when_the_node_is_down") {
  dead_port down;
  auto node = "127.0.0.1:" + std::to_string(down.port);
  auto r = run_parleyctl({"--node", node, "--token", "t", "status"});
  CHECK(r.exit_code == 3);
  CHECK(has(r.err, "cannot reach the node at " + node));
  // The same through the environment.
  r = run_parleyctl({"status"},
                    {{"PARLEYCTL_NODE", node}, {"PARLEYCTL_TOKEN", "t"}});
  CHECK(r.exit_code == 3);
  CHECK(has(r.err, "cannot reach the node at " + node));
}

TEST_CASE("parleyctl_refuses_a_config_file_others_can_read") {
  dead_port down;
  auto dir = std::filesystem::temp_directory_path()
             / ("parleyctl-conf-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "parleyctl.conf").string();
  {
    std::ofstream f{path};
    f << "# test\nnode = 127.0.0.1:" << down.port << "\ntoken = t\n";
  }
  chmod(path.c_str(), 0644);
  auto r = run_parleyctl({"status"}, {{"PARLEYCTL_CONFIG", path}});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "chmod 600 " + path));
  // Private, it is read: the node it names is tried (and is down).
  chmod(path.c_str(), 0600);
  r = run_parleyctl({"--config", path, "status"});
  CHECK(r.exit_code == 3);
  CHECK(has(r.err, "127.0.0.1:" + std::to_string(down.port)));
  std::filesystem::remove_all(dir);
}

TEST_CASE("parleyctl_exits_4_on_a_refused_token_and_1_on_a_refused_command") {
  fake_admin admin{[](const std::string&, const std::string& target,
                      const std::string&, const std::string& auth) {
    if (auth != "Bearer tok")
      return fake_admin::reply{
        403, R"({"error":{"status":403,"message":"unknown admin token"}})"};
    return fake_admin::reply{
      404, R"({"error":{"status":404,"message":"no user )" + target.substr(16)
             + "\"}}"};
  }};
  auto r = run_parleyctl({"--node", admin.address(), "--token", "wrong",
                          "status"});
  CHECK(r.exit_code == 4);
  CHECK(has(r.err, "unknown admin token"));
  r = run_parleyctl(at(admin, {"user", "show", "nobody"}));
  CHECK(r.exit_code == 1);
  CHECK(has(r.err, "no user nobody"));
}

TEST_CASE("parleyctl_prints_tables_and_one_json_line") {
  const std::string status =
    R"({"node_id":1,"started_ms":1796665201000,"uptime_ms":3723000,)"
    R"("store_bytes":1572864,"nodes":[{"id":1,"address":"127.0.0.1:7001",)"
    R"("live":true},{"id":22,"address":"127.0.0.1:7002","live":false}],)"
    R"("backlogs":{"outbox":3,"fanout":0}})";
  fake_admin admin{[&](const std::string& method, const std::string& target,
                       const std::string&, const std::string&) {
    CHECK(method == "GET");
    CHECK(target == "/v1/admin/status");
    return fake_admin::reply{200, status};
  }};
  auto r = run_parleyctl(at(admin, {"status"}));
  REQUIRE(r.exit_code == 0);
  CHECK(has(r.out, "node_id      1\n"));
  CHECK(has(r.out, "started_ms   2026-12-07 17:40:01\n"));
  CHECK(has(r.out, "uptime_ms    1h 02m\n"));
  CHECK(has(r.out, "store_bytes  1.5 MiB\n"));
  CHECK(has(r.out, "nodes:\n  id  address         live\n"
                   "  1   127.0.0.1:7001  true\n  22  127.0.0.1:7002  false\n"));
  CHECK(has(r.out, "backlogs:\n  outbox  3\n  fanout  0\n"));
  r = run_parleyctl(at(admin, {"--json", "status"}));
  REQUIRE(r.exit_code == 0);
  CHECK(r.out == status + "\n");
}

TEST_CASE("parleyctl_follows_a_job_to_its_end_and_reports_a_failed_one") {
  for (bool fail : {false, true}) {
    CAPTURE(fail);
    std::atomic<int> polls{0};
    fake_admin admin{[&](const std::string& method, const std::string& target,
                         const std::string& body, const std::string&) {
      if (method == "POST") {
        CHECK(target == "/v1/admin/inbox/rebuild");
        CHECK(body == R"({"user":"all"})");
        return fake_admin::reply{202, job("running", "starting", 0)};
      }
      CHECK(target == "/v1/admin/jobs/7");
      int n = ++polls;
      if (n < 3)
        return fake_admin::reply{200, job("running", "scanning", n * 100)};
      return fake_admin::reply{
        200, fail ? job("failed", "scanning", 200, "store closed")
                  : job("done", "finished", 300)};
    }};
    auto r = run_parleyctl(at(admin, {"inbox", "rebuild", "all"}));
    CHECK(polls == 3);
    if (fail) {
      CHECK(r.exit_code == 1);
      CHECK(has(r.err, "the inbox rebuild failed: store closed"));
    } else {
      CHECK(r.exit_code == 0);
      CHECK(has(r.out, "inbox rebuild: starting 0/300 users"));
      CHECK(has(r.out, "inbox rebuild done: 300/300 users in 3.0 s\n"));
    }
    // --json: each polled job as one line.
    polls = 0;
    r = run_parleyctl(at(admin, {"--json", "inbox", "rebuild", "all"}));
    CHECK(r.exit_code == (fail ? 1 : 0));
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 4);
    CHECK(has(r.out, job("running", "scanning", 200) + "\n"));
  }
}

TEST_CASE("parleyctl_metrics_top_shows_rates_and_percentiles_per_interval") {
  // Each sample: one second later, 100 more sends, and 10 more send
  // latencies: 5 under 100 us, 4 under 250 us, 1 over 1000 us.
  std::atomic<int> n{0};
  fake_admin admin{[&](const std::string&, const std::string& target,
                       const std::string&, const std::string&) {
    CHECK(target == "/v1/admin/metrics");
    int i = n++;
    std::string b = "{\"time_ms\":" + std::to_string(1796665201000 + i * 1000)
                    + ",\"counters\":{\"sends\":" + std::to_string(i * 100)
                    + "},\"gauges\":{\"connections\":7},\"latency\":{\"send\":"
                      "{\"bounds_us\":[100,250,1000],\"counts\":["
                    + std::to_string(i * 5) + "," + std::to_string(i * 4)
                    + ",0," + std::to_string(i) + "],\"sum_us\":"
                    + std::to_string(i * 5000) + "}}}";
    return fake_admin::reply{200, b};
  }};
  auto r = run_parleyctl(at(admin, {"--count", "2", "metrics", "top"}));
  REQUIRE(r.exit_code == 0);
  CHECK(n == 3); // a first sample, then one per refresh
  CHECK(has(r.out, "metrics of " + admin.address()
                     + " at 2026-12-07 17:40:02 UTC"));
  CHECK(has(r.out, "metrics of " + admin.address()
                     + " at 2026-12-07 17:40:03 UTC"));
  CHECK(has(r.out, "sends    100.0       200\n"));
  CHECK(has(r.out, "connections  7\n"));
  CHECK(has(r.out, "send     10.0        <=100 us  >1.0 ms  500 us\n"));
}

TEST_CASE("parleyctl_takes_the_flag_then_the_environment_then_the_config_file") {
  // Three nodes, all down: the one parleyctl tries names where it looked.
  dead_port by_flag, by_env, by_file;
  auto addr = [](const dead_port& p) {
    return "127.0.0.1:" + std::to_string(p.port);
  };
  auto dir = std::filesystem::temp_directory_path()
             / ("parleyctl-order-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "parleyctl.conf").string();
  {
    std::ofstream f{path};
    f << "node = " << addr(by_file) << "\ntoken = t\n";
  }
  chmod(path.c_str(), 0600);
  std::map<std::string, std::string> env{{"PARLEYCTL_CONFIG", path},
                                         {"PARLEYCTL_NODE", addr(by_env)}};
  auto r = run_parleyctl({"--node", addr(by_flag), "status"}, env);
  CHECK(r.exit_code == 3);
  CHECK(has(r.err, "cannot reach the node at " + addr(by_flag)));
  r = run_parleyctl({"status"}, env);
  CHECK(r.exit_code == 3);
  CHECK(has(r.err, "cannot reach the node at " + addr(by_env)));
  r = run_parleyctl({"status"}, {{"PARLEYCTL_CONFIG", path}});
  CHECK(r.exit_code == 3);
  CHECK(has(r.err, "cannot reach the node at " + addr(by_file)));

  // The token likewise: a node that says which token it got.
  fake_admin admin{[](const std::string&, const std::string&,
                      const std::string&, const std::string& auth) {
    return fake_admin::reply{
      403, R"({"error":{"status":403,"message":"got )" + auth + "\"}}"};
  }};
  {
    std::ofstream f{path};
    f << "node = " << admin.address() << "\ntoken = from-file\n";
  }
  env = {{"PARLEYCTL_CONFIG", path}, {"PARLEYCTL_TOKEN", "from-env"}};
  r = run_parleyctl({"--token", "from-flag", "status"}, env);
  CHECK(r.exit_code == 4);
  CHECK(has(r.err, "got Bearer from-flag"));
  r = run_parleyctl({"status"}, env);
  CHECK(has(r.err, "got Bearer from-env"));
  r = run_parleyctl({"status"}, {{"PARLEYCTL_CONFIG", path}});
  CHECK(has(r.err, "got Bearer from-file"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("parleyctl_refuses_a_config_file_with_bad_lines_binary_or_too_large") {
  auto dir = std::filesystem::temp_directory_path()
             / ("parleyctl-badconf-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "parleyctl.conf").string();
  struct bad_case {
    std::string text, message;
  };
  for (auto& [text, message] : std::vector<bad_case>{
         {"node = 127.0.0.1:1\nnode 127.0.0.1:2\n",
          path + ":2: expected `key = value`"},
         {"tokn = t\n", path + ":1: unknown key 'tokn'"},
         {std::string("\x7f" "ELF\x02\x01\0\0\0token=\0\0", 16),
          path + ":1: not text"},
         {"# " + std::string(100000, 'x') + "\n", "larger than 65536 bytes"},
       }) {
    CAPTURE(message);
    {
      std::ofstream f{path, std::ios::binary | std::ios::trunc};
      f << text;
    }
    chmod(path.c_str(), 0600);
    auto r = run_parleyctl({"status"}, {{"PARLEYCTL_CONFIG", path}});
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, message));
  }
  // A directory, and a named file that does not exist.
  auto r = run_parleyctl({"--config", dir.string(), "status"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "not a regular file"));
  r = run_parleyctl({"--config", (dir / "none").string(), "status"});
  CHECK(r.exit_code == 2);
  CHECK(has(r.err, "cannot read the config file"));
  // Another user's file (only root can give a file away to test this).
  {
    std::ofstream f{path, std::ios::trunc};
    f << "token = t\n";
  }
  chmod(path.c_str(), 0600);
  if (geteuid() == 0 && chown(path.c_str(), 65534, 65534) == 0) {
    r = run_parleyctl({"--config", path, "status"});
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "belongs to uid 65534, not to the user running "
                     "parleyctl"));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("parleyctl_escapes_control_characters_in_the_nodes_messages") {
  // A refusal quoting a name a client chose, and a job's error.
  fake_admin admin{[](const std::string& method, const std::string&,
                      const std::string&, const std::string&) {
    if (method == "GET")
      return fake_admin::reply{
        404, R"({"error":{"status":404,"message":"no user \u001b[2Jx"}})"};
    return fake_admin::reply{
      202, R"({"job":"7","kind":"inbox rebuild","state":"failed",)"
           R"("phase":"p\u001b]0;t\u0007","error":"bad \u009b31m"})"};
  }};
  auto r = run_parleyctl(at(admin, {"user", "show", "bob"}));
  CHECK(r.exit_code == 1);
  CHECK(has(r.err, "no user \\x1b[2Jx"));
  r = run_parleyctl(at(admin, {"inbox", "rebuild", "all"}));
  CHECK(r.exit_code == 1);
  CHECK(has(r.err, "the inbox rebuild failed: bad \\u009b31m"));
  for (auto& text : {r.out, r.err})
    CHECK(std::count_if(text.begin(), text.end(), [](unsigned char c) {
            return c == 0x1b || c == 0x07 || c == 0x9b;
          }) == 0);
}

TEST_CASE("parleyctl_says_how_to_watch_a_job_when_the_node_stops_answering") {
  std::optional<fake_admin> admin;
  admin.emplace([](const std::string& method, const std::string&,
                   const std::string&, const std::string&) {
    if (method == "POST")
      return fake_admin::reply{202, job("running", "starting", 0)};
    return fake_admin::reply{200, job("running", "scanning", 100)};
  });
  auto addr = admin->address();
  pty_session ctl{{"--node", addr, "--token", "tok", "inbox", "rebuild",
                   "all"}};
  REQUIRE(ctl.expect("100/300 users  scanning"));
  admin.reset(); // the node restarts: its port refuses connections
  REQUIRE(ctl.expect("cannot reach the node at " + addr));
  REQUIRE(ctl.expect("the inbox rebuild likely keeps running on the node; "
                     "watch it with: parleyctl job watch 7"));
  CHECK(ctl.wait_exit() == 3);
}

} // namespace parley::e2e
