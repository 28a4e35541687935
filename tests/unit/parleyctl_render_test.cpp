// parleyctl's pure parts: its JSON reader, the rendering of answers, the
// arithmetic of metrics top, addresses and flags (tools/parleyctl).

#include <doctest/doctest.h>

#include <algorithm>

#include "tools/parleyctl/config.hpp"
#include "tools/parleyctl/http.hpp"
#include "tools/parleyctl/json.hpp"
#include "tools/parleyctl/render.hpp"
#include "tools/parleyctl/shell.hpp"
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

TEST_CASE("parleyctl_tables_show_control_characters_clients_chose_escaped") {
  // A device name, a group name, a client_message_id: chosen by clients;
  // the JSON reader turns \u001b back into ESC.
  auto answer = must(
    R"({"name":"\u001b]0;owned\u0007","devices":[{"id":1,)"
    R"("name":"ph\u001b[2Jone\u007f","client_message_id":"a\u009bb\u00e9"}],)"
    R"("tags":["\r\n"],"group":{"title":"x\u0085y"}})");
  auto out = render(answer);
  auto raw = std::count_if(out.begin(), out.end(), [](unsigned char c) {
    return c != '\n' && (c < 0x20 || c == 0x7f);
  });
  CHECK(raw == 0);
  CHECK(out.find("\xc2\x9b") == std::string::npos);
  CHECK(out.find("\xc2\x85") == std::string::npos);
  CHECK(has(out, "name  \\x1b]0;owned\\x07\n"));
  CHECK(has(out, "ph\\x1b[2Jone\\x7f"));
  CHECK(has(out, "a\\u009bb\xc3\xa9"));  // C1 escaped, other UTF-8 kept
  CHECK(has(out, "tags  \\x0d\\x0a\n"));
  CHECK(has(out, "title  x\\u0085y\n"));
  // Stray bytes that are not UTF-8 (C1 on an 8-bit terminal).
  CHECK(visible("a\x9b" "b\xff") == "a\\x9bb\\xff");
  std::string utf8 = "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac";
  CHECK(visible(utf8) == utf8);
  // --json keeps the text as the node sent it.
  CHECK(to_json(answer).find("\\u001b]0;owned") != std::string::npos);
}

TEST_CASE("parleyctl_shows_a_zero_point_in_time_as_never_and_keeps_durations") {
  json zero{json::number, "0", {}, {}};
  for (std::string key : {"created_ms", "last_seen_ms", "started_ms",
                          "sent_ms", "blocked_at_ms", "time_ms"}) {
    CAPTURE(key);
    CHECK(point_in_time(key));
    CHECK(show_value(key, zero) == "never");
  }
  for (std::string key : {"elapsed_ms", "unavailable_ms", "uptime_ms"}) {
    CAPTURE(key);
    CHECK_FALSE(point_in_time(key));
    CHECK(show_value(key, zero) == "0 ms");
  }
  json t{json::number, "1796665201000", {}, {}};
  CHECK(show_value("created_ms", t) == "2026-12-07 17:40:01");
  CHECK(show_value("blocked_at_ms", t) == "2026-12-07 17:40:01");
  // In a table too: a device that never connected.
  auto out = render(must(R"({"devices":[{"id":1,"created_ms":0,)"
                         R"("last_seen_ms":0}]})"));
  CHECK(has(out, "  1   never       never\n"));
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

TEST_CASE("parleyctl_top_divides_by_the_nodes_time_between_samples") {
  auto sample = [](const std::string& time, int sends) {
    return must("{" + time + "\"counters\":{\"sends\":"
                + std::to_string(sends) + "}}");
  };
  // The node's samples 2 s apart, the client's polls 4 s apart (a slow
  // answer): the rate is over the node's 2 s.
  CHECK(has(top_view(sample("\"time_ms\":1000,", 0),
                     sample("\"time_ms\":3000,", 200), 4),
            "sends    100.0"));
  // No time_ms in one of the samples, or not increasing: the client's 4 s.
  CHECK(has(top_view(sample("", 0), sample("\"time_ms\":3000,", 200), 4),
            "sends    50.0"));
  CHECK(has(top_view(sample("\"time_ms\":3000,", 0),
                     sample("", 200), 4),
            "sends    50.0"));
  CHECK(has(top_view(sample("\"time_ms\":3000,", 0),
                     sample("\"time_ms\":3000,", 200), 4),
            "sends    50.0"));
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

TEST_CASE("parleyctl_config_file_refuses_bad_lines_binary_and_large_files") {
  std::optional<std::string> node, token;
  auto err = parse_config("# c\n\n  node = h:1  \r\ntoken=t\n", "f", node,
                          token);
  CHECK_FALSE(err);
  CHECK(*node == "h:1");
  CHECK(*token == "t");
  // Set already (a flag or the environment): the file does not override.
  std::optional<std::string> flag_node = std::string{"flag:2"}, no_token;
  CHECK_FALSE(parse_config("node = h:1\ntoken = t\n", "f", flag_node,
                           no_token));
  CHECK(*flag_node == "flag:2");
  CHECK(*no_token == "t");

  struct bad_case {
    std::string text, message;
  };
  for (auto& [text, message] : std::vector<bad_case>{
         {"node = h:1\njust words\n", "f:2: expected `key = value`"},
         {"colour = red\n", "f:1: unknown key 'colour' (node, token)"},
         {std::string("\x7f" "ELF\x02\x01\x01\0\0=\0", 11),
          "f:1: not text"},
         {"token = a\x1b[2Jb\n", "f:1: not text"},
         {std::string(max_config_bytes + 1, '#'), "larger than 65536 bytes"},
       }) {
    CAPTURE(message);
    std::optional<std::string> n, t;
    auto e = parse_config(text, "f", n, t);
    REQUIRE(e);
    CHECK(has(*e, message));
  }
}

TEST_CASE("parleyctl_config_file_must_be_the_users_own_private_regular_file") {
  struct stat st{};
  st.st_mode = S_IFREG | 0600;
  st.st_uid = 1000;
  st.st_size = 40;
  CHECK_FALSE(config_file_problem(st, 1000, "f"));
  auto e = config_file_problem(st, 1001, "f");
  REQUIRE(e);
  CHECK(has(*e, "belongs to uid 1000, not to the user running parleyctl"));
  st.st_mode = S_IFREG | 0640;
  e = config_file_problem(st, 1000, "f");
  REQUIRE(e);
  CHECK(has(*e, "chmod 600 f"));
  st.st_mode = S_IFIFO | 0600;
  e = config_file_problem(st, 1000, "f");
  REQUIRE(e);
  CHECK(has(*e, "not a regular file"));
  st.st_mode = S_IFREG | 0600;
  st.st_size = 1 << 30;
  e = config_file_problem(st, 1000, "f");
  REQUIRE(e);
  CHECK(has(*e, "larger than"));
}

TEST_CASE("parleyctl_shell_history_keeps_out_password_lines_that_fail_to_parse") {
  for (std::string line :
       {"user create carol sekrit-password-1", // parses
        "user create Bob hunter2",             // a bad name
        "user create bob short",               // a short password
        "user create bob \"half quoted",       // an unterminated quote
        "User  Create bob pw",                  // spelled otherwise
        "user crate bob hunter2-long",          // a typo of the command
        "\"user create\" bob hunter2-long", "user create"}) {
    CAPTURE(line);
    CHECK(history_secret(line));
  }
  for (std::string line : {"status", "user show bob", "help user create",
                           "user block bob", "stauts", "quit", ""}) {
    CAPTURE(line);
    CHECK_FALSE(history_secret(line));
  }
}
