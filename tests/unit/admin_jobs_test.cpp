// The admin job board (runtime/admin/jobs.hpp): a job's JSON, updates that
// arrive after the job ended, and which jobs the board keeps.

#include <doctest/doctest.h>

#include <string>

#include "runtime/admin/jobs.hpp"

namespace {

using parley::admin::job;
using parley::admin::job_board;

/// How many times `needle` occurs in `text`.
size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1))
    ++n;
  return n;
}

/// A job's JSON up to its elapsed_ms (which depends on the clock); checks
/// that the rest is a number and the closing brace.
std::string without_elapsed(const std::string& json) {
  auto at = json.find(",\"elapsed_ms\":");
  REQUIRE(at != std::string::npos);
  auto rest = json.substr(at + 14);
  REQUIRE(rest.size() >= 2);
  CHECK(rest.back() == '}');
  CHECK(rest.find_first_not_of("0123456789") == rest.size() - 1);
  return json.substr(0, at);
}

} // namespace

TEST_CASE("a job's JSON has its id, kind, what, state, phase, progress, "
          "unit and error") {
  job_board board;
  auto j = board.create("inbox rebuild", "user \"bob\"", "users");
  CHECK(without_elapsed(j->to_json())
        == "{\"job\":\"1\",\"kind\":\"inbox rebuild\",\"what\":\"user "
           "\\\"bob\\\"\",\"state\":\"running\",\"phase\":\"starting\","
           "\"done\":0,\"total\":0,\"unit\":\"users\",\"error\":\"\"");
  j->set_phase("rebuilding");
  j->set_progress(2, 5);
  j->add_done(1);
  CHECK(without_elapsed(j->to_json()).find(
          "\"state\":\"running\",\"phase\":\"rebuilding\",\"done\":3,"
          "\"total\":5")
        != std::string::npos);
  auto k = board.create("partition move", "partition 3 to node 2", "keys");
  k->finish("node 2 went away");
  CHECK(without_elapsed(k->to_json()).find(
          "\"state\":\"failed\",\"phase\":\"failed\",\"done\":0,\"total\":0,"
          "\"unit\":\"keys\",\"error\":\"node 2 went away\"")
        != std::string::npos);
  // The board: newest first.
  auto all = board.to_json();
  CHECK(all.rfind("{\"jobs\":[{\"job\":\"2\"", 0) == 0);
  CHECK(all.find("},{\"job\":\"1\"") != std::string::npos);
  CHECK(all.substr(all.size() - 3) == "}]}");
  CHECK(job_board{}.to_json() == "{\"jobs\":[]}");
}

TEST_CASE("updates that reach a job after it finished are ignored") {
  job_board board;
  auto j = board.create("partition move", "partition 1 to node 2", "keys");
  j->set_phase("streaming");
  j->set_progress(400, 400);
  j->finish();
  j->set_phase("streaming");
  j->set_progress(390, 400);
  j->add_done(7);
  auto text = without_elapsed(j->to_json());
  CHECK(text.find("\"state\":\"done\",\"phase\":\"done\",\"done\":400,"
                  "\"total\":400")
        != std::string::npos);
  j->finish("late failure"); // a second end is ignored too
  CHECK(j->to_json().find("\"state\":\"done\"") != std::string::npos);

  // A refresh hook that read its source just before the job ended (here:
  // the end lands inside the hook, as a move thread's finish may).
  auto k = board.create("partition move", "partition 2 to node 2", "keys");
  k->set_progress(10, 100);
  k->set_refresh([](job& x) {
    x.set_progress(100, 100);
    x.finish();
    x.set_phase("streaming");   // what the hook read before the end
    x.set_progress(60, 100);
  });
  text = without_elapsed(k->to_json());
  CHECK(text.find("\"state\":\"done\",\"phase\":\"done\",\"done\":100,"
                  "\"total\":100")
        != std::string::npos);
  // finish() dropped the hook: asked again, nothing changes.
  CHECK(without_elapsed(k->to_json()) == text);
}

TEST_CASE("the job board keeps at most 100 jobs, dropping the oldest "
          "finished ones and never a running one") {
  REQUIRE(job_board::max_jobs == 100);
  job_board board;
  for (int i = 0; i < 100; ++i)
    board.create("inbox rebuild", "user " + std::to_string(i + 1), "users");
  for (uint64_t id = 50; id <= 60; ++id)
    board.find(id)->finish();
  // Five more: the five oldest finished go (50-54), the older running
  // ones stay.
  for (int i = 0; i < 5; ++i)
    board.create("inbox rebuild", "more", "users");
  CHECK(count_of(board.to_json(), "{\"job\":") == 100);
  for (uint64_t id = 50; id <= 54; ++id)
    CHECK(!board.find(id));
  for (uint64_t id : {1, 49, 55, 60, 101, 105})
    CHECK(bool(board.find(id)));
  // Ten more: 55-60 go, then only running jobs are left: all kept.
  for (int i = 0; i < 10; ++i)
    board.create("inbox rebuild", "more", "users");
  CHECK(count_of(board.to_json(), "{\"job\":") == 104);
  for (uint64_t id = 55; id <= 60; ++id)
    CHECK(!board.find(id));
  for (uint64_t id : {1, 49, 61, 100, 115})
    CHECK(bool(board.find(id)));
  // One finishes: the next create drops it, the running ones stay.
  board.find(1)->finish();
  board.create("inbox rebuild", "more", "users");
  CHECK(!board.find(1));
  CHECK(bool(board.find(2)));
  CHECK(bool(board.find(116)));
  CHECK(count_of(board.to_json(), "{\"job\":") == 104);
}

TEST_CASE("the job board finds no job for an unknown id") {
  job_board board;
  CHECK(!board.find(1));
  auto j = board.create("node drain", "node 2", "partitions");
  CHECK((board.find(j->id()) == j));
  CHECK(!board.find(0));
  CHECK(!board.find(j->id() + 1));
  CHECK(!board.find(UINT64_MAX));
}
