// The gateway's edge: refunds of the rate limiter, the spread of retry
// hints, and the strict JSON validator that runs before protobuf's lenient
// parser.

#include <doctest/doctest.h>

#include <random>
#include <set>
#include <vector>
#include <string>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "runtime/gateway/frame_codec.hpp"
#include "runtime/gateway/rate_limiter.hpp"
#include "runtime/gateway/strict_json.hpp"

using namespace parley;
using namespace parley::gateway;

TEST_CASE("a refund gives back what a take took, never beyond the burst") {
  int64_t now = 0;
  rate_limiter lim{rate_limits{}, [&] { return now; }, 1};
  bucket_spec spec{1, 2};
  CHECK(lim.take("a", spec) == 0);
  CHECK(lim.take("a", spec) == 0);
  CHECK(lim.take("a", spec) > 0); // empty
  lim.refund("a", spec);
  CHECK(lim.take("a", spec) == 0); // the refunded token
  CHECK(lim.take("a", spec) > 0);
  // Refunds beyond the burst are capped: two takes, then empty again.
  for (int i = 0; i < 10; ++i)
    lim.refund("a", spec);
  CHECK(lim.take("a", spec) == 0);
  CHECK(lim.take("a", spec) == 0);
  CHECK(lim.take("a", spec) > 0);
  // A key never taken from gets no bucket (it is full already).
  auto before = lim.size();
  lim.refund("never", spec);
  CHECK(lim.size() == before);
  // A cost refunds that many tokens.
  CHECK(lim.take("c", bucket_spec{1, 10}, 10) == 0);
  lim.refund("c", bucket_spec{1, 10}, 4);
  CHECK(lim.take("c", bucket_spec{1, 10}, 4) == 0);
  CHECK(lim.take("c", bucket_spec{1, 10}, 1) > 0);
}

TEST_CASE("a retry hint is the wait, the backlog ahead and a jittered slot") {
  CHECK(spread_retry_ms(10, 0, 10, 0) == 10);
  CHECK(spread_retry_ms(10, 0, 10, 0.55) == 16); // rounded up
  CHECK(spread_retry_ms(10, 500, 10, 0.5) == 515);
  CHECK(spread_retry_ms(10, -5, -1, 7) == 10); // nonsense is clamped
  CHECK(spread_retry_ms(0, 1e12, 1e12, 1) == 3'600'000); // at most an hour
}

TEST_CASE("refusals in a storm get hints spread over the backlog's drain") {
  // 10,000 devices behind one address reconnect at once against a limit of
  // 100 connects per second (burst 10): every refusal used to say "the next
  // token, in 10 ms", and all came back together.
  int64_t now = 0;
  rate_limiter lim{rate_limits{}, [&] { return now; }, 7};
  bucket_spec spec{100, 10};
  for (int i = 0; i < 10; ++i)
    REQUIRE(lim.take("connect/ip/10.0.0.1", spec) == 0);
  std::vector<uint64_t> hints;
  for (int i = 0; i < 9990; ++i)
    hints.push_back(lim.take("connect/ip/10.0.0.1", spec));
  // Each hint is no sooner than the bucket allows, and the i-th refusal is
  // told the i-th token's slot (10 ms each), jittered within it.
  std::vector<int> per_second(101, 0);
  for (size_t i = 0; i < hints.size(); ++i) {
    CHECK(hints[i] >= 10 + 10 * i);
    CHECK(hints[i] <= 10 + 10 * (i + 1) + 1);
    per_second[hints[i] / 1000]++;
  }
  // Spread: about the rate (100) come back in each second of the drain,
  // never a crowd at one moment.
  for (int s = 0; s < 100; ++s)
    CHECK_MESSAGE(per_second[s] <= 101, s);
  std::set<uint64_t> distinct(hints.begin(), hints.end());
  CHECK(distinct.size() > 9000);
  // Jitter: the same storm with another seed gets other moments.
  rate_limiter other{rate_limits{}, [&] { return now; }, 8};
  for (int i = 0; i < 10; ++i)
    other.take("connect/ip/10.0.0.1", spec);
  int same = 0;
  for (int i = 0; i < 1000; ++i)
    same += other.take("connect/ip/10.0.0.1", spec) == hints[i];
  CHECK(same < 300);
  // Time drains the backlog: a refusal a minute later waits for its own
  // slot only, not behind the refusals already served.
  now += 200'000;
  for (int i = 0; i < 10; ++i)
    lim.take("connect/ip/10.0.0.1", spec);
  auto late = lim.take("connect/ip/10.0.0.1", spec);
  CHECK(late >= 10);
  CHECK(late <= 21);
}

TEST_CASE("strict JSON takes RFC 8259 text and nothing more") {
  for (const char* good :
       {"{}", "[]", " {} ", "\t[\r\n]\n", "0", "-0", "1.5e+10", "-12.25E-3",
        "true", "false", "null", "\"\"", R"("a\"\\\/\b\f\n\r\t\u00e9")",
        R"({"a":1,"b":[1,2,{"c":null}],"d":{"e":"f"}})", "[[],[[]],{}]",
        "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", R"({"":""})"})
    CHECK_MESSAGE(strict_json_error(good).empty(), good);
  struct bad_case {
    const char* text;
    const char* why; ///< part of the error
  };
  for (auto [text, why] : std::initializer_list<bad_case>{
         {"", "end of input"},
         {"   ", "end of input"},
         {"{'requestId':1}", "keys must be strings"},
         {"{\"a\":'x'}", "double quotes"},
         {"{requestId:1}", "keys must be strings"},
         {"{\"a\":1,}", "trailing comma"},
         {"[1,2,]", "trailing comma"},
         {"[,]", "expected a value"},
         {"{,}", "keys must be strings"},
         {R"({"a":"\x41"})", "invalid escape"},
         {R"({"a":"\u12"})", "four hex digits"},
         {R"({"a":"\'"})", "invalid escape"},
         {"\"tab\there\"", "control character"},
         {"{\"a\" 1}", "expected ':'"},
         {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
         {"[1 2]", "expected ',' or ']'"},
         {"{} {}", "text after the value"},
         {"01", "leading zero"},
         {"1.", "fraction"},
         {".5", "expected a value"},
         {"+1", "expected a value"},
         {"1e", "exponent"},
         {"NaN", "expected a value"},
         {"Infinity", "expected a value"},
         {"tru", "expected a value"},
         {"nul", "expected a value"},
         {"[1]]", "text after the value"},
         {"{\"a\":1]", "expected ',' or '}'"},
         {"\"\xff\"", "UTF-8"},
         {"\"\xc0\xaf\"", "UTF-8"},         // overlong '/'
         {"\"\xed\xa0\x80\"", "UTF-8"},    // a surrogate
         {"\"\xe2\x82\"", "UTF-8"},         // truncated
         {"/* c */ {}", "expected a value"},
         {"\xef\xbb\xbf{}", "expected a value"}, // no byte-order mark
       }) {
    auto err = strict_json_error(text);
    CHECK_MESSAGE(err.find(why) != std::string::npos,
                  text << " -> '" << err << "'");
  }
}

TEST_CASE("strict JSON refuses every truncation, deep nesting and oversize") {
  std::string doc =
    R"({"requestId":5,"send":{"conversationId":"42","payload":"aGk=",)"
    R"("x":[1,-2.5e3,true,false,null,"\u00e9\n"]}})";
  REQUIRE(strict_json_error(doc).empty());
  for (size_t n = 0; n < doc.size(); ++n)
    CHECK_MESSAGE(!strict_json_error(doc.substr(0, n)).empty(), n);
  // Nesting: up to the bound is fine, one more is refused; a million
  // levels is refused without recursion (no stack to exhaust).
  json_limits lim{1 << 24, 64};
  auto nest = [](size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
  };
  CHECK(strict_json_error(nest(64), lim).empty());
  CHECK(strict_json_error(nest(65), lim).find("nested too deeply")
        != std::string::npos);
  CHECK(strict_json_error(std::string(1'000'000, '['), lim).find("nested")
        != std::string::npos);
  std::string objs;
  for (int i = 0; i < 100; ++i)
    objs += R"({"a":)";
  CHECK(strict_json_error(objs + "1" + std::string(100, '}'), lim)
          .find("nested") != std::string::npos);
  // Oversized text is refused before it is read.
  std::string big = "\"" + std::string(2000, 'a') + "\"";
  CHECK(strict_json_error(big, {1000, 64}).find("longer than 1000")
        != std::string::npos);
  CHECK(strict_json_error(big, {4000, 64}).empty());
  // Garbage, and mutations of a valid document, never crash. What is
  // accepted is JSON to an independent parser as well (protobuf's, which
  // takes a superset of JSON, into a google.protobuf.Value, which holds any
  // value), and protobuf's printing of it is accepted again; what is
  // refused names a byte within the text.
  std::mt19937_64 rng{20};
  size_t accepted = 0;
  size_t refused = 0;
  const std::string alphabet = "{}[]:,\"\\ tfnrue0123456789.-+eE'\x01\xc3\xa9u";
  for (int i = 0; i < 20000; ++i) {
    std::string t;
    if (i % 2) {
      t = doc;
      for (int k = rng() % 4; k >= 0; --k)
        t[rng() % t.size()] = alphabet[rng() % alphabet.size()];
    } else {
      for (int n = rng() % 24; n > 0; --n)
        t += alphabet[rng() % alphabet.size()];
    }
    auto err = strict_json_error(t);
    if (err.empty()) {
      ++accepted;
      google::protobuf::Value v;
      CHECK_MESSAGE(google::protobuf::util::JsonStringToMessage(t, &v).ok(),
                    t);
      std::string printed;
      REQUIRE(google::protobuf::util::MessageToJsonString(v, &printed).ok());
      CHECK_MESSAGE(strict_json_error(printed).empty(), t << " -> " << printed);
    } else {
      ++refused;
      REQUIRE_MESSAGE(err.rfind("at byte ", 0) == 0, err);
      CHECK_MESSAGE(std::stoul(err.substr(8)) <= t.size(), t << ": " << err);
    }
  }
  // Both verdicts occur often enough for the checks above to matter.
  MESSAGE(accepted << " accepted, " << refused << " refused");
  CHECK(accepted >= 100);
  CHECK(refused >= 10000);
}

TEST_CASE("lenient JSON text frames are refused as BAD_FRAME") {
  route_protobuf_logs();
  // Each of these protobuf 3.21's JSON parser accepts on its own.
  for (const char* lenient :
       {"{'requestId':1,'ping':{}}", "{requestId:1,ping:{}}",
        R"({"requestId":1,"ping":{},})", R"({"requestId":1,"ping":{}} x)",
        R"({"requestId":1,"send":{"clientMessageId":"\q"}})"}) {
    auto d = decode_client_frame(lenient, frame_format::json, 1 << 16);
    CHECK_MESSAGE(!d.ok, lenient);
    CHECK(d.code == v1::Error::CODE_BAD_FRAME);
    CHECK_MESSAGE(d.message.rfind("not JSON: at byte ", 0) == 0, d.message);
  }
  auto d = decode_client_frame(R"({"requestId":1,"ping":{}})",
                               frame_format::json, 1 << 16);
  CHECK(d.ok);
  // HTTP bodies go through the same check.
  v1::ClientFrame f;
  CHECK(!parse_json_lenient("{'requestId':1}", f).empty());
  CHECK(parse_json_lenient(R"({"requestId":1,"future":[1]})", f).empty());
}
