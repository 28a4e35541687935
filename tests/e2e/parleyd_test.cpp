// parleyd as a user runs it: help, bad arguments, a clean stop on SIGTERM
// and SIGINT, and a restart on the same data.

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "process.hpp"

using parley::e2e::child;
using parley::e2e::exit_code;

namespace {

std::string temp_dir(const char* name) {
  auto p = std::filesystem::temp_directory_path()
           / (std::string("parley-") + name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(p);
  return p.string();
}


} // namespace

TEST_CASE("parleyd_help_lists_its_options_and_exits_0") {
  child c{PARLEYD, {"--help"}};
  auto st = c.wait();
  CHECK(exit_code(st) == 0);
  CHECK(c.saw("--data DIR"));
  CHECK(c.saw("--config FILE"));
  child l{PARLEYD, {"--long-help"}};
  CHECK(exit_code(l.wait()) == 0);
  CHECK(l.saw("--parley.idempotency-window-s"));
  CHECK(l.saw("--parley.compaction-nice"));
  CHECK(l.saw("--parley.write-buffer-mb"));
  CHECK(l.saw("--parley.table-write-mb-s"));
}

TEST_CASE("parleyd_refuses_bad_arguments_with_exit_2") {
  for (auto args : std::vector<std::vector<std::string>>{
         {"--no-such-flag"},
         {"--log-level", "loud"},
         {"--parley.idempotency-window-s=0"},
         {"--parley.max-batch-ops=many"},
         {"--parley.compaction-nice=20"},
         {"--parley.compaction-nice=-1"},
         {"--parley.write-buffer-mb=0"},
         {"--parley.write-buffer-mb=4096"},
         {"--parley.table-write-mb-s=5000"},
         {"--config", "/nonexistent/parley.ini"}}) {
    CAPTURE(args.front());
    child c{PARLEYD, args};
    auto st = c.wait();
    CHECK(exit_code(st) != 0);
    CHECK(exit_code(st) != -1);
  }
}

TEST_CASE("parleyd_reports_an_unusable_data_directory") {
  auto file = temp_dir("notadir");
  std::ofstream{file} << "x";
  child c{PARLEYD, {"--data", file + "/sub"}};
  CHECK(exit_code(c.wait()) == 1);
  CHECK(c.saw("data directory"));
  std::filesystem::remove_all(file);
}

TEST_CASE("parleyd_stops_cleanly_on_sigterm_and_sigint_and_restarts") {
  auto dir = temp_dir("node");
  for (int sig : {SIGTERM, SIGINT}) {
    CAPTURE(sig);
    child c{PARLEYD, {"--data", dir, "--listen", "127.0.0.1:0"}};
    REQUIRE(c.wait_for_line("node started"));
    c.signal(sig);
    auto st = c.wait(15000);
    REQUIRE(st != -1);
    CHECK(exit_code(st) == 0);
    CHECK(c.saw("stopping"));
    CHECK(c.saw("stopped"));
  }
  CHECK(std::filesystem::exists(dir + "/CURRENT")); // a LevelDB lives there
  // A second node on the same data is refused (LevelDB's lock), clearly.
  child a{PARLEYD, {"--data", dir, "--listen", "127.0.0.1:0"}};
  REQUIRE(a.wait_for_line("node started"));
  child b{PARLEYD, {"--data", dir, "--listen", "127.0.0.1:0"}};
  CHECK(exit_code(b.wait()) == 1);
  CHECK(b.saw("cannot open database"));
  a.signal(SIGTERM);
  CHECK(exit_code(a.wait(15000)) == 0);
  std::filesystem::remove_all(dir);
}
