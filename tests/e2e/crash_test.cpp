// Process-level crash test: a driver sends through the real actors with a
// real LevelDB; the test kills it with SIGKILL mid-stream, restarts it on the
// same data, and checks that every send the driver saw acknowledged is
// present exactly once, in order, with no gap in the sequences.

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "process.hpp"

namespace {

struct ack {
  std::string cmid;
  uint64_t seq;
  std::string id;
  bool dedup;
};

/// Runs the driver and collects its output. After `kill_after` acks it sends
/// SIGKILL and keeps reading what the driver had already written.
struct run_result {
  std::vector<ack> acks;
  std::vector<std::string> lines;
  bool killed = false;
  int status = 0;
};

run_result run_driver(std::vector<std::string> args, size_t kill_after) {
  parley::e2e::child c{PARLEY_CRASH_DRIVER, args};
  run_result res;
  std::string line;
  while (c.read_line(line, 120000)) {
    res.lines.push_back(line);
    if (line.rfind("ACK ", 0) == 0) {
      std::istringstream is{line.substr(4)};
      ack a;
      int dedup = 0;
      is >> a.cmid >> a.seq >> a.id >> dedup;
      a.dedup = dedup != 0;
      res.acks.push_back(a);
      if (!res.killed && res.acks.size() == kill_after) {
        c.signal(SIGKILL);
        res.killed = true;
      }
    }
  }
  res.status = c.wait(60000);
  return res;
}

/// seq -> cmid of everything stored in the conversation.
std::map<uint64_t, std::string> dump(const std::string& dir) {
  auto r = run_driver({"dump", dir, "7"}, SIZE_MAX);
  REQUIRE(WIFEXITED(r.status));
  REQUIRE(WEXITSTATUS(r.status) == 0);
  std::map<uint64_t, std::string> out;
  for (auto& line : r.lines) {
    std::istringstream is{line};
    std::string tag, cmid;
    uint64_t seq = 0;
    is >> tag >> seq >> cmid;
    if (tag != "MSG")
      continue; // a log line
    REQUIRE(out.emplace(seq, cmid).second);
  }
  return out;
}

void check_log(const std::map<uint64_t, std::string>& log,
               const std::map<std::string, uint64_t>& acked) {
  // Gapless from 1, each cmid once.
  uint64_t expect = 1;
  std::map<std::string, uint64_t> where;
  for (auto& [seq, cmid] : log) {
    REQUIRE(seq == expect++);
    CAPTURE(cmid);
    REQUIRE(where.emplace(cmid, seq).second);
  }
  // Every acknowledged send is there, at the sequence it was given.
  for (auto& [cmid, seq] : acked) {
    CAPTURE(cmid);
    auto i = where.find(cmid);
    REQUIRE(i != where.end());
    CHECK(i->second == seq);
  }
}

} // namespace

TEST_CASE("kill -9 mid-stream loses no acknowledged send and duplicates "
          "none") {
  auto dir = (std::filesystem::temp_directory_path()
              / ("parley-crash-" + std::to_string(getpid())))
               .string();
  std::filesystem::remove_all(dir);
  std::mt19937_64 rng{std::random_device{}()};
  const size_t total = 6000;
  std::map<std::string, uint64_t> acked;
  size_t landed_unacked = 0; // committed, then killed before the ack printed
  auto record = [&](const run_result& r) {
    for (auto& a : r.acks) {
      if (a.dedup && acked.count(a.cmid) == 0)
        ++landed_unacked;
      auto [it, fresh] = acked.emplace(a.cmid, a.seq);
      CAPTURE(a.cmid);
      CHECK(it->second == a.seq); // a repeat answers the original sequence
    }
  };
  // Three runs killed at random points, each resending everything from the
  // start (a client that does not know which sends landed retries them).
  for (int round = 0; round < 3; ++round) {
    size_t kill_after = 200 + rng() % 2500;
    CAPTURE(round);
    CAPTURE(kill_after);
    auto r = run_driver({"send", dir, "7", "0", std::to_string(total), "64"},
                        kill_after);
    REQUIRE(r.killed);
    REQUIRE(WIFSIGNALED(r.status));
    record(r);
    check_log(dump(dir), acked);
  }
  // Finally one run to completion: every send lands exactly once.
  auto r = run_driver({"send", dir, "7", "0", std::to_string(total), "64"},
                      SIZE_MAX);
  REQUIRE(WIFEXITED(r.status));
  REQUIRE(WEXITSTATUS(r.status) == 0);
  REQUIRE(std::find(r.lines.begin(), r.lines.end(), "DONE") != r.lines.end());
  record(r);
  auto log = dump(dir);
  CHECK(log.size() == total);
  CHECK(acked.size() == total);
  check_log(log, acked);
  MESSAGE(landed_unacked << " sends had landed without their ack reaching "
                            "the driver; their retries got the original");
  std::filesystem::remove_all(dir);
}
