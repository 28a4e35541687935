// parleyctl's interactive shell driven through a pseudo-terminal, and
// Ctrl-C while a one-shot parleyctl follows a job (issue 23). No node is
// needed: help and completion are local, and commands go to a port where
// nothing listens, or to a scripted admin port.

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include <sys/stat.h>

#include "parleyctl_fakes.hpp"
#include "parleyctl_run.hpp"

namespace parley::e2e {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// libedit's history file encodes a space as \040.
bool history_has(const std::string& file, std::string line) {
  if (file.find(line) != std::string::npos)
    return true;
  for (size_t i; (i = line.find(' ')) != std::string::npos;)
    line.replace(i, 1, "\\040");
  return file.find(line) != std::string::npos;
}

} // namespace

TEST_CASE("parleyctl_shell_completes_commands_and_arguments_and_keeps_history") {
  dead_port down;
  auto node = "127.0.0.1:" + std::to_string(down.port);
  pty_session sh{{"--node", node, "--token", "t"}};
  std::string prompt = "parley " + node + "> ";
  REQUIRE(sh.expect(prompt));

  // "stat" + Tab completes to "status", which is sent to the node (down):
  // without the completion "stat" would be an unknown command.
  sh.type_at_prompt("stat\t\r");
  REQUIRE(sh.expect("cannot reach the node at " + node));
  REQUIRE(sh.expect(prompt));
  // An argument value: "de" + Tab completes to the level "debug".
  sh.type_at_prompt("log level de\t\r");
  REQUIRE(sh.expect("cannot reach the node at " + node));
  REQUIRE(sh.expect(prompt));
  CHECK(sh.output.find("unknown command") == std::string::npos);
  CHECK(sh.output.find("bad level") == std::string::npos);

  // A bad command prints the suggestion, and the shell keeps running.
  sh.type_at_prompt("stauts\r");
  REQUIRE(sh.expect("unknown command 'stauts'; did you mean 'status'?"));
  REQUIRE(sh.expect(prompt));
  // Up-arrow brings the last line back; Enter runs it again.
  sh.type_at_prompt("\x1b[A\r");
  REQUIRE(sh.expect("unknown command 'stauts'; did you mean 'status'?"));
  REQUIRE(sh.expect(prompt));

  // help lists the commands; help COMMAND explains one.
  sh.type_at_prompt("help\r");
  REQUIRE(sh.expect("Commands:"));
  REQUIRE(sh.expect("user show USER"));
  REQUIRE(sh.expect("log level LEVEL"));
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("help partition move\r");
  REQUIRE(sh.expect("usage: partition move PARTITION TO"));
  REQUIRE(sh.expect(prompt));

  // Ctrl-D leaves.
  sh.type_at_prompt("\x04");
  int code = sh.wait_exit();
  INFO(sh.output.substr(sh.output.size() > 300 ? sh.output.size() - 300 : 0));
  CHECK(code == 0);
  auto history = read_file(sh.home + "/.parleyctl_history");
  CHECK(history_has(history, "status"));
  CHECK(history_has(history, "log level debug"));
  CHECK(history_has(history, "stauts"));
  CHECK(history_has(history, "help partition move"));
}

TEST_CASE("parleyctl_shell_keeps_passwords_out_of_its_history") {
  dead_port down;
  auto node = "127.0.0.1:" + std::to_string(down.port);
  pty_session sh{{"--node", node, "--token", "t"}};
  std::string prompt = "parley " + node + "> ";
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("user create carol sekrit-password-1\r");
  REQUIRE(sh.expect("cannot reach the node"));
  REQUIRE(sh.expect(prompt));
  // Lines parleyctl refuses before sending them keep their passwords too.
  sh.type_at_prompt("user create Bob hunter2-sekrit\r");
  REQUIRE(sh.expect("bad name 'Bob'"));
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("user create bob sekr\r");
  REQUIRE(sh.expect("bad password"));
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("user crate bob sekrit-typo-1\r");
  REQUIRE(sh.expect("did you mean 'user create'"));
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("help user create\r");
  REQUIRE(sh.expect("usage: user create NAME [PASSWORD]"));
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("quit\r");
  CHECK(sh.wait_exit() == 0);
  auto path = sh.home + "/.parleyctl_history";
  auto history = read_file(path);
  CHECK(history.find("sekr") == std::string::npos);
  CHECK(history.find("hunter2") == std::string::npos);
  CHECK(history_has(history, "help user create"));
  CHECK(history_has(history, "quit"));
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("parleyctl_ctrl_c_leaves_a_followed_job_running_and_says_how_to_watch_it") {
  // A move that never ends: parleyctl follows it until Ctrl-C.
  fake_admin admin{[](const std::string& method, const std::string& target,
                      const std::string&, const std::string&) {
    std::string job = R"({"job":"42","kind":"partition move","what":"p3",)"
                      R"("state":"running","phase":"streaming","done":10,)"
                      R"("total":400,"unit":"keys","error":"","elapsed_ms":5})";
    if (method == "POST" && target == "/v1/admin/partitions/3/move")
      return fake_admin::reply{202, job};
    if (method == "GET" && target == "/v1/admin/jobs/42")
      return fake_admin::reply{200, job};
    return fake_admin::reply{404, R"({"error":{"status":404,"message":"no"}})"};
  }};
  pty_session ctl{{"--node", admin.address(), "--token", "t", "partition",
                   "move", "3", "2"}};
  // On a terminal: a progress bar.
  REQUIRE(ctl.expect("partition move [....."));
  REQUIRE(ctl.expect("10/400 keys  streaming"));
  ctl.type("\x03");
  REQUIRE(ctl.expect("the partition move keeps running on the node; watch it "
                     "with: parleyctl job watch 42"));
  CHECK(ctl.wait_exit() == 130);
}

TEST_CASE("parleyctl_shell_runs_commands_against_a_node_and_survives_refusals") {
  node n{admin_args()};
  auto addr = "127.0.0.1:" + std::to_string(n.admin_port);
  pty_session sh{{"--node", addr, "--token", test_admin_token}};
  std::string prompt = "parley " + addr + "> ";
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("user create dora\r");
  REQUIRE(sh.expect("name"));
  REQUIRE(sh.expect("dora"));
  REQUIRE(sh.expect(prompt));
  // The node refuses (no such user): the shell prints why and goes on.
  sh.type_at_prompt("user show nobody-here\r");
  REQUIRE(sh.expect("the node refused"));
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("user show dora\r");
  REQUIRE(sh.expect("blocked"));
  REQUIRE(sh.expect(prompt));
  sh.type_at_prompt("exit\r");
  CHECK(sh.wait_exit() == 0);
}

TEST_CASE("parleyctl_metrics_top_redraws_on_a_terminal_until_q") {
  std::atomic<int> n{0};
  fake_admin admin{[&](const std::string&, const std::string&,
                       const std::string&, const std::string&) {
    int i = n++;
    return fake_admin::reply{
      200, "{\"time_ms\":" + std::to_string(1796665201000 + i * 1000)
             + ",\"counters\":{\"sends\":" + std::to_string(i * 30)
             + "},\"gauges\":{},\"latency\":{}}"};
  }};
  pty_session top{{"--node", admin.address(), "--token", "t", "metrics",
                   "top"}};
  // Each refresh clears the screen and draws the interval's rates.
  REQUIRE(top.expect("\x1b[H\x1b[2J"));
  REQUIRE(top.expect("(q quits)"));
  REQUIRE(top.expect("\x1b[H\x1b[2J"));
  REQUIRE(top.expect("sends    30.0"));
  REQUIRE(top.expect("\x1b[H\x1b[2J"));
  REQUIRE(top.expect("sends    30.0"));
  top.type("q");
  CHECK(top.wait_exit() == 0);
}

} // namespace parley::e2e
