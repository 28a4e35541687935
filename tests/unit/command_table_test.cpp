// The operator command table's parser, requests, completion and help
// (runtime/admin/command_table.hpp, issue 23).

#include <doctest/doctest.h>

#include <algorithm>

#include "runtime/admin/command_table.hpp"

using namespace parley::admin;

namespace {

/// A valid value of each kind, not already normalized (so that the round
/// trip also checks normalization holds).
std::string sample(const arg_spec& a) {
  switch (a.kind) {
    case arg_kind::name: return "alice.b-1_x";
    case arg_kind::user: return "bob";
    case arg_kind::user_or_all: return "all";
    case arg_kind::password: return "pa ss\"w/rd?&=%";
    case arg_kind::device: return "9223372036854775807";
    case arg_kind::node: return "65535";
    case arg_kind::partition: return "0";
    case arg_kind::conversation: return "0042";
    case arg_kind::count: return "1000";
    case arg_kind::rate: return "50/s";
    case arg_kind::choice: return a.choices.empty() ? "" : a.choices.back();
    case arg_kind::job: return "17";
  }
  return "";
}

parsed_command must_parse(const std::vector<std::string>& words) {
  auto r = parse(words);
  if (auto* e = std::get_if<std::string>(&r))
    FAIL_CHECK("parse refused: " << *e);
  REQUIRE(r.index() == 0);
  return std::get<0>(r);
}

std::string parse_error(const std::vector<std::string>& words) {
  auto r = parse(words);
  REQUIRE(r.index() == 1);
  return std::get<1>(r);
}

refusal refused(const std::string& method, const std::string& target,
                const std::string& body = "") {
  auto r = from_request(method, target, body);
  REQUIRE(r.index() == 1);
  return std::get<1>(r);
}

bool has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("every command survives to_request and from_request unchanged") {
  for (auto& c : commands()) {
    if (c.mode == client_mode::local)
      continue;
    CAPTURE(c.name);
    std::vector<std::string> words = split_words(c.name).value();
    for (auto& a : c.args)
      words.push_back(sample(a));
    auto cmd = must_parse(words);
    REQUIRE(cmd.spec == &c);
    CHECK(cmd.args.size() == c.args.size());
    auto req = to_request(cmd);
    CHECK(req.method == c.method);
    CHECK((req.method == "GET") == req.body.empty());
    auto back = from_request(req.method, req.target, req.body);
    if (auto* r = std::get_if<refusal>(&back))
      FAIL("refused " << r->status << ": " << r->message << " for "
                      << req.target << " " << req.body);
    CHECK(std::get<0>(back).spec == &c);
    CHECK(std::get<0>(back).args == cmd.args);
  }
}

TEST_CASE("optional arguments may be left out, and the request follows") {
  auto cmd = must_parse({"user", "create", "carol"});
  CHECK(cmd.args.size() == 1);
  auto req = to_request(cmd);
  CHECK(req.method == "POST");
  CHECK(req.target == "/v1/admin/users");
  CHECK(req.body == R"({"name":"carol"})");
  auto back = from_request(req.method, req.target, req.body);
  REQUIRE(back.index() == 0);
  CHECK(std::get<0>(back).args == cmd.args);
}

TEST_CASE("requests carry path arguments encoded, numbers as JSON numbers") {
  auto move = to_request(must_parse({"partition", "move", "007", "2"}));
  CHECK(move.target == "/v1/admin/partitions/7/move");
  CHECK(move.body == R"({"to":2})");
  auto tail = to_request(must_parse({"conv", "tail", "12", "5"}));
  CHECK(tail.target == "/v1/admin/conversations/12/tail?count=5");
  auto dots = to_request(must_parse({"user", "show", ".."}));
  CHECK(dots.target == "/v1/admin/users/%2E%2E");
  auto r = from_request("GET", dots.target, "");
  REQUIRE(r.index() == 0);
  CHECK(std::get<0>(r).args.at("user") == "..");
}

TEST_CASE("each argument kind accepts its values and refuses others") {
  struct row {
    arg_kind kind;
    std::vector<std::pair<std::string, std::string>> ok; // typed, normalized
    std::vector<std::string> bad;
  };
  std::vector<row> rows{
    {arg_kind::name, {{"abc", "abc"}, {"a.b_c-9", "a.b_c-9"},
                      {std::string(32, 'x'), std::string(32, 'x')}},
     {"", "ab", "Alice", "a b", "é", "a/b", std::string(33, 'x'), "abc\n"}},
    {arg_kind::user, {{"bob", "bob"}, {"42", "42"}, {"007", "007"}},
     {"", "b b", "x;y", std::string(65, 'u')}},
    {arg_kind::user_or_all, {{"all", "all"}, {"bob", "bob"}, {"5", "5"}},
     {"", "a b"}},
    {arg_kind::password,
     {{"12345678", "12345678"}, {"pass word é", "pass word é"},
      {std::string(1024, 'p'), std::string(1024, 'p')}},
     {"1234567", std::string(1025, 'p'), "tab\there1", "bell\x07here",
      "del\x7fhere!"}},
    {arg_kind::device, {{"1", "1"}, {"0009", "9"},
                        {"9223372036854775807", "9223372036854775807"}},
     {"0", "-1", "+1", "9223372036854775808", "1e3", "0x10", "abc", "",
      "99999999999999999999999"}},
    {arg_kind::node, {{"1", "1"}, {"65535", "65535"}, {"02", "2"}},
     {"0", "65536", "-2", "two", ""}},
    {arg_kind::partition, {{"0", "0"}, {"65535", "65535"}, {"000", "0"}},
     {"65536", "-1", "p1", ""}},
    {arg_kind::conversation,
     {{"1", "1"}, {"77", "77"},
      {"9223372118459154513", "9223372118459154513"}, // a direct chat
      {"18446744073709551615", "18446744073709551615"}},
     {"0", "18446744073709551616", "99999999999999999999", "1.5", ""}},
    {arg_kind::count, {{"1", "1"}, {"1000", "1000"}, {"010", "10"}},
     {"0", "1001", "ten", ""}},
    {arg_kind::rate, {{"50/s", "50/s"}, {"1/min", "1/min"},
                      {"1000000/h", "1000000/h"}, {"07/s", "7/s"},
                      {"off", "off"}, {"OFF", "off"}},
     {"50", "0/s", "1000001/s", "5/d", "/s", "5/", "-5/s", "on", ""}},
    {arg_kind::job, {{"1", "1"}, {"00012", "12"},
                     {std::string(20, '9'), std::string(20, '9')}},
     {"", "x1", "-1", std::string(21, '1')}},
  };
  for (auto& r : rows) {
    arg_spec spec{"thing", r.kind, ""};
    for (auto& [typed, norm] : r.ok) {
      CAPTURE(typed);
      auto v = check_arg(spec, typed);
      REQUIRE(v.index() == 0);
      CHECK(std::get<0>(v) == norm);
    }
    for (auto& typed : r.bad) {
      CAPTURE(typed);
      auto v = check_arg(spec, typed);
      REQUIRE(v.index() == 1);
      CHECK(has(std::get<1>(v), "thing"));
    }
  }
  arg_spec level{"level", arg_kind::choice, "", false, {"debug", "info"}};
  CHECK(std::get<0>(check_arg(level, "debug")) == "debug");
  CHECK(std::get<0>(check_arg(level, "INFO")) == "info");
  auto no = check_arg(level, "loud");
  REQUIRE(no.index() == 1);
  CHECK(has(std::get<1>(no), "debug info"));
}

TEST_CASE("a password never appears in a refusal") {
  arg_spec pw{"password", arg_kind::password, ""};
  auto v = check_arg(pw, "short");
  REQUIRE(v.index() == 1);
  CHECK_FALSE(has(std::get<1>(v), "short"));
}

TEST_CASE("an unknown command suggests the closest one") {
  CHECK(suggest("stauts") == "status");
  CHECK(suggest("user shwo") == "user show");
  CHECK(suggest("partiton move") == "partition move");
  CHECK(suggest("xyzzyplugh") == "");
  CHECK(has(parse_error({"stauts"}), "did you mean 'status'"));
  CHECK(has(parse_error({"user", "shwo", "bob"}), "did you mean 'user show'"));
  CHECK(has(parse_error({"frobnicate"}), "unknown command 'frobnicate'"));
  // A group word alone names its second words.
  auto e = parse_error({"user"});
  CHECK(has(e, "show"));
  CHECK(has(e, "block"));
}

TEST_CASE("parse refuses missing, extra and wrong arguments with the usage") {
  auto missing = parse_error({"user", "show"});
  CHECK(has(missing, "missing USER"));
  CHECK(has(missing, "usage: user show USER"));
  auto extra = parse_error({"status", "now"});
  CHECK(has(extra, "'now'"));
  CHECK(has(parse_error({"status", "--json"}), "options go before the command"));
  auto wrong = parse_error({"partition", "move", "x", "2"});
  CHECK(has(wrong, "partition"));
  CHECK(has(wrong, "usage: partition move PARTITION TO"));
  CHECK(has(parse_error({}), "no command"));
}

TEST_CASE("help takes a command of one or two words, quoted or not") {
  auto h = must_parse({"help"});
  CHECK(h.spec->name == "help");
  CHECK(h.args.empty());
  CHECK(must_parse({"help", "user", "show"}).args.at("command")
        == "user show");
  CHECK(must_parse(*split_words("help \"user show\"")).args.at("command")
        == "user show");
  CHECK(must_parse({"help", "status"}).args.at("command") == "status");
  CHECK(has(parse_error({"help", "stauts"}), "did you mean 'status'"));
  // A group word alone: its commands are named.
  auto group = parse_error({"help", "user"});
  CHECK(has(group, "needs a second word"));
  CHECK(has(group, "limit"));
  CHECK(has(parse_error({"help", "user", "shwo"}), "did you mean 'user show'"));
}

TEST_CASE("split_words groups quotes and refuses an unterminated one") {
  CHECK(*split_words("  a  'b c' \"d'e\" f\"g h\"") ==
        std::vector<std::string>{"a", "b c", "d'e", "fg h"});
  CHECK(*split_words("x ''") == std::vector<std::string>{"x", ""});
  CHECK(split_words("")->empty());
  CHECK_FALSE(split_words("a 'b"));
}

TEST_CASE("from_request refuses garbage, truncated and oversized input") {
  auto r = refused("POST", "/v1/admin/partitions/3/move", "{\"to\": 2");
  CHECK(r.status == 400);
  for (std::string body : {"garbage", "[2]", "\"to\"", "{\"to\":}",
                           "{\"to\": true}", "{\"to\": 1.5}", "{\"to\": null}",
                           "{\"to\": {\"a\":1}}", "{\"to\": -1}",
                           "{\"to\": 1e300}"}) {
    CAPTURE(body);
    CHECK(refused("POST", "/v1/admin/partitions/3/move", body).status == 400);
  }
  auto big = "{\"to\":\"" + std::string(70000, '1') + "\"}";
  CHECK(refused("POST", "/v1/admin/partitions/3/move", big).status == 413);
  CHECK(refused("GET", "/v1/admin/users/" + std::string(70000, 'a')).status
        == 414);
  CHECK(refused("GET", "/v1/admin/users/%zz").status == 400);
  CHECK(refused("GET", "/v1/admin/users/%4").status == 400);
  CHECK(refused("GET", "").status == 400);
  CHECK(refused("GET", "v1/admin/status").status == 400);
}

TEST_CASE("from_request answers 404, 405 and 400 naming the argument") {
  CHECK(refused("GET", "/v1/admin/nothing").status == 404);
  CHECK(refused("GET", "/v1/admin/status/").status == 404);
  CHECK(refused("GET", "/v1/admin/users//devices").status == 404);
  CHECK(refused("POST", "/v1/admin/status").status == 405);
  CHECK(refused("DELETE", "/v1/admin/users/bob").status == 405);
  auto missing = refused("POST", "/v1/admin/partitions/3/move", "{}");
  CHECK(missing.status == 400);
  CHECK(has(missing.message, "argument to"));
  auto bad_path = refused("GET", "/v1/admin/conversations/abc");
  CHECK(bad_path.status == 400);
  CHECK(has(bad_path.message, "conversation"));
  auto unknown = refused("POST", "/v1/admin/log-level",
                         R"({"level":"info","colour":"red"})");
  CHECK(unknown.status == 400);
  CHECK(has(unknown.message, "colour"));
  auto twice = refused("GET", "/v1/admin/conversations/1/tail?count=1&count=2");
  CHECK(has(twice.message, "count"));
  CHECK(refused("POST", "/v1/admin/log-level?level=info").status == 400);
  auto dup = refused("POST", "/v1/admin/users/bob/block", R"({"user":"eve"})");
  CHECK(has(dup.message, "user"));
}

TEST_CASE("from_request takes numbers as JSON numbers or strings") {
  for (std::string body : {R"({"to":2})", R"({"to":"2"})", R"({"to":"002"})",
                           " { \"to\" : 2 } "}) {
    CAPTURE(body);
    auto r = from_request("POST", "/v1/admin/partitions/3/move", body);
    REQUIRE(r.index() == 0);
    CHECK(std::get<0>(r).args.at("to") == "2");
    CHECK(std::get<0>(r).args.at("partition") == "3");
  }
  auto q = from_request("GET", "/v1/admin/conversations/5/tail?count=0%31%30",
                        "");
  REQUIRE(q.index() == 0);
  CHECK(std::get<0>(q).args.at("count") == "10");
  auto empty = from_request("POST", "/v1/admin/users/bob/block", "");
  REQUIRE(empty.index() == 0);
  CHECK(std::get<0>(empty).spec->name == "user block");
}

TEST_CASE("completion offers command words and argument choices") {
  using v = std::vector<std::string>;
  CHECK(complete("stat") == v{"status"});
  CHECK(complete("user s") == v{"show"});
  CHECK(complete("user ") == v{"block", "create", "limit", "show", "unblock"});
  CHECK(complete("partition") == v{"partition", "partitions"});
  CHECK(complete("partition ") == v{"move"});
  CHECK(complete("log level d") == v{"debug"});
  CHECK(complete("log level ") == v{"critical", "debug", "error", "info",
                                    "off", "trace", "warn"});
  CHECK(complete("inbox rebuild a") == v{"all"});
  CHECK(complete("user limit bob ") == v{"send"});
  CHECK(complete("help user sh") == v{"show"});
  CHECK(complete("help st") == v{"status"});
  CHECK(complete("status ").empty());
  CHECK(complete("nothing ").empty());
  CHECK(complete("user show 'unterminated ").empty());
  auto all = complete("");
  CHECK(all.size() >= 10);
  CHECK(std::is_sorted(all.begin(), all.end()));
}

TEST_CASE("help lists every command and explains each one") {
  auto all = help_text();
  for (auto& c : commands()) {
    CAPTURE(c.name);
    CHECK(has(all, usage(c)));
    CHECK(has(all, c.summary));
    auto one = help_text(c);
    CHECK(has(one, "usage: " + usage(c)));
    for (auto& a : c.args)
      CHECK(has(one, a.help));
  }
  CHECK(usage(*find_command("user create")) == "user create NAME [PASSWORD]");
  CHECK(has(help_text(*find_command("log level")), "debug"));
}
