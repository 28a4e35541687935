// runtime/core/reply_deadlines.hpp: tags, take, expiry order, and the one
// timer (arm/tick) that only runs while entries wait.

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/reply_deadlines.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

using table = reply_deadlines<std::string>;

table::time_point at(std::chrono::milliseconds ms) {
  return table::time_point{} + ms;
}

/// Expires at `now`, returning (tag, entry) in the order f was called.
std::vector<std::pair<uint64_t, std::string>> expire(table& t,
                                                     table::time_point now) {
  std::vector<std::pair<uint64_t, std::string>> out;
  t.expire(now, [&](uint64_t tag, std::string& e) { out.emplace_back(tag, e); });
  return out;
}

} // namespace

TEST_CASE("reply_deadlines: tags grow, take finds an entry exactly once") {
  table t{1000ms};
  auto a = t.add(at(0ms), "a");
  auto b = t.add(at(1ms), "b");
  auto c = t.add(at(2ms), "c");
  CHECK(a == 1);
  CHECK(b == 2);
  CHECK(c == 3);
  CHECK(t.size() == 3);
  CHECK(t.take(b) == std::optional<std::string>{"b"});
  CHECK_FALSE(t.take(b).has_value()); // answered twice: the second is late
  CHECK_FALSE(t.take(99).has_value()); // never added
  CHECK_FALSE(t.take(0).has_value());
  CHECK(t.take(a) == std::optional<std::string>{"a"});
  CHECK(t.size() == 1);
  CHECK(t.add(at(3ms), "d") == 4); // tags are never reused
  CHECK(t.take(c) == std::optional<std::string>{"c"});
  CHECK(t.take(4) == std::optional<std::string>{"d"});
  CHECK(t.empty());
  CHECK(t.add(at(4ms), "e") == 5); // not even once the table emptied
}

TEST_CASE("reply_deadlines: expire takes exactly the entries past their "
          "deadline, in tag order, and a late take finds nothing") {
  table t{100ms};
  t.add(at(0ms), "a");  // due 100
  t.add(at(10ms), "b"); // due 110
  t.add(at(20ms), "c"); // due 120
  t.add(at(50ms), "d"); // due 150
  CHECK(t.take(2).has_value()); // b answered in time
  CHECK(expire(t, at(99ms)).empty());
  auto first = expire(t, at(120ms));
  REQUIRE(first.size() == 2);
  CHECK(first[0] == std::make_pair(uint64_t{1}, std::string{"a"}));
  CHECK(first[1] == std::make_pair(uint64_t{3}, std::string{"c"}));
  CHECK_FALSE(t.take(1).has_value()); // a late answer: dropped
  CHECK_FALSE(t.take(3).has_value());
  CHECK(t.size() == 1);
  CHECK(expire(t, at(149ms)).empty());
  auto second = expire(t, at(150ms));
  REQUIRE(second.size() == 1);
  CHECK(second[0].second == "d");
  CHECK(t.empty());
}

TEST_CASE("reply_deadlines: a clock that goes back keeps deadlines in tag "
          "order") {
  table t{100ms};
  t.add(at(50ms), "a"); // due 150
  t.add(at(10ms), "b"); // due 110 by its clock, clamped to 150
  CHECK(expire(t, at(149ms)).empty());
  CHECK(expire(t, at(150ms)).size() == 2);
}

TEST_CASE("reply_deadlines: f may add and take while expiring") {
  table t{100ms};
  t.add(at(0ms), "a");
  t.add(at(0ms), "b");
  auto kept = t.add(at(90ms), "kept");
  std::vector<std::string> seen;
  t.expire(at(100ms), [&](uint64_t, std::string& e) {
    seen.push_back(e);
    if (e == "a") {
      CHECK(t.take(kept).has_value()); // answered from inside f
      CHECK_FALSE(t.take(2).has_value()); // b is expiring already
      t.add(at(100ms), "again");
    }
  });
  CHECK(seen == std::vector<std::string>{"a", "b"});
  CHECK(t.size() == 1);
  CHECK(expire(t, at(199ms)).empty());
  CHECK(expire(t, at(200ms)).size() == 1);
}

TEST_CASE("reply_deadlines: one tick at a time, only while entries wait") {
  table t{1000ms};
  CHECK(t.period() == 200ms);
  CHECK_FALSE(t.arm()); // empty: no timer
  t.add(at(0ms), "a");
  CHECK(t.arm());        // empty -> non-empty: the caller schedules a tick
  t.add(at(1ms), "b");
  CHECK_FALSE(t.arm()); // one is outstanding already
  CHECK(t.ticking());
  // Ticks every period until the entries expire; count them.
  auto now = at(0ms);
  int ticks = 0;
  bool armed = true;
  while (armed) {
    now += t.period();
    ++ticks;
    t.tick();
    expire(t, now);
    armed = t.arm();
  }
  CHECK(t.empty());
  CHECK_FALSE(t.ticking());
  // Due at 1000 and 1001: expired by the tick at 1200, not earlier.
  CHECK(ticks == 6);
  // A table emptied by take stops at its next tick.
  t.add(now, "c");
  CHECK(t.arm());
  CHECK(t.take(3).has_value());
  t.tick();
  CHECK_FALSE(t.arm());
}
