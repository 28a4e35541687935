// parleyctl's pure parts: its JSON reader, the rendering of answers, the
// arithmetic of metrics top, addresses and flags (tools/parleyctl).

#include <doctest/doctest.h>

#include "tools/parleyctl/config.hpp"
#include "tools/parleyctl/http.hpp"
#include "tools/parleyctl/json.hpp"
#include "tools/parleyctl/render.hpp"
#include "tools/parleyctl/top.hpp"

using namespace parley::ctl;

namespace {

json must(const std::string& text) {
  auto j = parse_json(text);
  REQUIRE(j);
  return *j;
}

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("parleyctl's JSON keeps field order, exact numbers and escapes") {
  auto j = must(R"( {"b":1,"a":[true,false,null],"id":9223372036854775807,)"
                R"("s":"q\"\\\/\n\u00e9\ud83d\ude00","o":{}} )");
  REQUIRE(j.fields.size() == 5);
  CHECK(j.fields[0].first == "b");
  CHECK(j.fields[1].first == "a");
  CHECK(j.str("id") == "9223372036854775807");
  CHECK(j.str("s") == "q\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(j.get("a")->items.size() == 3);
  CHECK(j.get("a")->items[2].kind == json::null);
  CHECK(to_json(j) == R"({"b":1,"a":[true,false,null],)"
                      R"("id":9223372036854775807,"s":"q\"\\/\u000a)"
                      "\xc3\xa9\xf0\x9f\x98\x80" R"(","o":{}})");
  CHECK(j.num("b") == 1);
  CHECK(j.num("missing") == 0);
}

TEST_CASE("parleyctl's JSON refuses malformed and too deep documents") {
  for (std::string bad : {"", "{", "{\"a\":}", "{\"a\" 1}", "[1,]", "{,}",
                          "\"open", "tru", "01x", "{\"a\":1} x", "\"\\x\"",
                          "\"\\u12\"", "-", "{\"a\":\"\x01\"}", "[1 2]"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_json(bad));
  }
  CHECK(parse_json(std::string(64, '[') + std::string(64, ']')));
  CHECK_FALSE(parse_json(std::string(100, '[') + std::string(100, ']')));
}

TEST_CASE("values show epoch times as UTC, durations and sizes readably") {
  json n{json::number, "1796665201000", {}, {}};
  CHECK(show_value("created_ms", n) == "2026-12-07 17:40:01");
  n.text = "5310";
  CHECK(show_value("elapsed_ms", n) == "5.3 s");
  CHECK(show_value("elapsed", n) == "5310");
  n.text = "0";
  CHECK(show_value("last_seen_ms", n) == "never");
  n.text = "1536";
  CHECK(show_value("store_bytes", n) == "1.5 KiB");
  CHECK(show_value("count", json{json::null, "", {}, {}}) == "-");
  CHECK(duration(90061000) == "1d 01h");
  CHECK(duration(125000) == "2m 05s");
  CHECK(human_bytes(3.5 * 1024 * 1024 * 1024) == "3.5 GiB");
  CHECK(human_bytes(512) == "512 B");
}

TEST_CASE("an answer renders as key lines, tables and titled blocks") {
  auto out = render(must(
    R"({"name":"alice","blocked":false,"tags":["a","b"],"none":[],)"
    R"("limits":{"send":"50/s"},"devices":[{"id":1,"name":"phone"},)"
    R"({"id":12,"name":"laptop","online":true}],"stats":"l1\nl2"})"));
  CHECK(out == "name     alice\n"
               "blocked  false\n"
               "tags     a, b\n"
               "none     (none)\n"
               "\nlimits:\n  send  50/s\n"
               "\ndevices:\n  id  name    online\n  1   phone\n"
               "  12  laptop  true\n"
               "\nstats:\n  l1\n  l2\n");
}

TEST_CASE("top's percentiles come from the interval's bucket counts") {
  std::vector<double> bounds{100, 250, 1000};
  CHECK(percentile(bounds, {0, 0, 0, 0}, 0.5) == "-");
  CHECK(percentile(bounds, {5, 4, 0, 1}, 0.5) == "<=100 us");
  CHECK(percentile(bounds, {5, 4, 0, 1}, 0.9) == "<=250 us");
  CHECK(percentile(bounds, {5, 4, 0, 1}, 0.99) == ">1.0 ms");
  CHECK(micros(2500000) == "2.50 s");
  auto prev = must(R"({"time_ms":1000,"counters":{"sends":50},)"
                   R"("latency":{"send":{"bounds_us":[100],"counts":[10,0],)"
                   R"("sum_us":500}}})");
  auto cur = must(R"({"time_ms":3000,"counters":{"sends":250,"new":4},)"
                  R"("gauges":{"queue_bytes":2048},)"
                  R"("latency":{"send":{"bounds_us":[100],"counts":[10,4],)"
                  R"("sum_us":2500}}})");
  auto view = top_view(prev, cur, 0);
  CHECK(has(view, "sends    100.0       250\n"));  // 200 in 2 s
  CHECK(has(view, "new      2.0         4\n"));    // absent before: 0
  CHECK(has(view, "queue_bytes  2.0 KiB\n"));
  CHECK(has(view, "send     2.0         >100 us  >100 us  500 us\n"));
  // A restarted node's counters go down: no negative rates.
  CHECK(has(top_view(cur, prev, 0), "sends    0.0"));
}

TEST_CASE("parleyctl reads node addresses and its flags") {
  endpoint e;
  CHECK(parse_endpoint("10.0.0.2:9000", e));
  CHECK(e.host == "10.0.0.2");
  CHECK(e.port == "9000");
  CHECK(parse_endpoint("[::1]:8091", e));
  CHECK(e.host == "::1");
  CHECK(e.text() == "[::1]:8091");
  CHECK(parse_endpoint("localhost", e));
  CHECK(e.port == "8090");
  for (std::string bad : {"", "h:", "h:0", "h:65536", "h:x", "[::1", ":80"})
    CHECK_FALSE(parse_endpoint(bad, e));

  flags f;
  std::vector<std::string> rest;
  CHECK_FALSE(parse_flags({"--node=h:1", "--json", "--token", "t", "--count",
                           "3", "user", "show", "--json"},
                          f, rest));
  CHECK(*f.node == "h:1");
  CHECK(*f.token == "t");
  CHECK(f.json);
  CHECK(f.count == 3);
  CHECK(rest == std::vector<std::string>{"user", "show", "--json"});
  flags g;
  CHECK(parse_flags({"--count", "0", "status"}, g, rest));
  CHECK(parse_flags({"--token"}, g, rest));
  CHECK(parse_flags({"--colour", "status"}, g, rest));
}
