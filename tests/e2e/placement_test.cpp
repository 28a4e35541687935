// parleyd keeps the partition count of its data directory: the number of
// the first start stays, another one later is refused with a clear message
// and a non-zero exit, and leaving the option out uses the stored number.

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "process.hpp"

using parley::e2e::child;
using parley::e2e::exit_code;

namespace {


/// Runs parleyd on `dir` with `extra` until it has started, then stops it
/// with SIGTERM; checks that it exited 0 and logged `expect`.
void start_and_stop(const std::string& dir, std::vector<std::string> extra,
                    const std::string& expect) {
  std::vector<std::string> args{"--data", dir, "--listen", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  child c{PARLEYD, args};
  REQUIRE(c.wait_for_line("node started"));
  CHECK(c.saw(expect));
  c.signal(SIGTERM);
  auto st = c.wait(15000);
  REQUIRE(st != -1);
  CHECK(exit_code(st) == 0);
}

} // namespace

TEST_CASE("parleyd_refuses_a_partition_count_other_than_its_stores") {
  auto dir = (std::filesystem::temp_directory_path()
              / ("parley-partitions-" + std::to_string(getpid())))
               .string();
  std::filesystem::remove_all(dir);
  start_and_stop(dir, {"--partitions", "16"}, "placement partitions=16");
  {
    child c{PARLEYD, {"--data", dir, "--listen", "127.0.0.1:0",
                      "--partitions", "64"}};
    CHECK(exit_code(c.wait(15000)) == 1);
    CHECK(c.saw("created with 16 partitions and cannot change to 64"));
    CHECK_FALSE(c.saw("node started"));
  }
  {
    child c{PARLEYD, {"--data", dir, "--partitions", "65537"}};
    CHECK(exit_code(c.wait(15000)) == 2);
    CHECK(c.saw("parley.partitions must be 0-65536"));
  }
  // Without the option, or with the same number: the store's.
  start_and_stop(dir, {}, "placement partitions=16");
  start_and_stop(dir, {"--parley.partitions=16"}, "placement partitions=16");
  std::filesystem::remove_all(dir);
}

TEST_CASE("parleyd_starts_a_new_data_directory_with_64_partitions") {
  auto dir = (std::filesystem::temp_directory_path()
              / ("parley-partitions-new-" + std::to_string(getpid())))
               .string();
  std::filesystem::remove_all(dir);
  start_and_stop(dir, {}, "placement partitions=64");
  std::filesystem::remove_all(dir);
}
