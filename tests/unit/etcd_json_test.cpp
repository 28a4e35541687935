// etcd's JSON bodies as the control-plane client reads and writes them:
// base64, requests, and every answer reader fed real answers (captured from
// etcd 3.4.23), garbage, every truncation and oversized text.

#include <doctest/doctest.h>

#include "runtime/cluster/etcd_json.hpp"

using namespace parley::cluster;
namespace ej = parley::cluster::etcd_json;

namespace {

const std::string range_answer =
  R"({"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"2"},)"
  R"("kvs":[{"key":"YQ==","create_revision":"2","mod_revision":"5",)"
  R"("version":"2","value":"Yg==","lease":"4111120502004368390"}],"count":"1"})";
const std::string txn_failed =
  R"({"header":{"revision":"9"},"responses":[{"response_range":)"
  R"({"header":{"revision":"9"},"kvs":[{"key":"YQ==","create_revision":"2",)"
  R"("mod_revision":"8","value":"Yw=="}],"count":"1"}}]})";
const std::string watch_line =
  R"({"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"YQ==",)"
  R"("create_revision":"2","mod_revision":"2","value":"Yg=="}},)"
  R"({"type":"DELETE","kv":{"key":"YQ==","mod_revision":"3"}}]}})";

} // namespace

TEST_CASE("etcd_json_base64_round_trips_every_byte_and_refuses_garbage") {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 1) {
    auto in = all.substr(0, n);
    auto back = ej::b64_decode(ej::b64_encode(in));
    REQUIRE(back.has_value());
    CHECK(*back == in);
  }
  CHECK(ej::b64_encode("a") == "YQ==");
  CHECK(ej::b64_encode("/w/a") == "L3cvYQ==");
  for (const char* bad : {"Y", "YQ=", "Y===", "YQ==YQ==", "Y!==", "=QQQ",
                          "YQ=a", "a b=", "\xff\xff\xff\xff"})
    CHECK_MESSAGE(!ej::b64_decode(bad).has_value(), bad);
  CHECK(!ej::b64_decode(std::string("YQ\0=", 4)).has_value());
}

TEST_CASE("etcd_json_prefix_range_end_increments_the_last_byte") {
  CHECK(prefix_range_end("/parley/") == "/parley0");
  CHECK(prefix_range_end("a\xff") == "b");
  CHECK(prefix_range_end("\xff\xff") == std::string(1, '\0'));
  CHECK(prefix_range_end("") == std::string(1, '\0'));
  CHECK(ej::range_body("/p/") == R"({"key":"L3Av","range_end":"L3Aw"})");
}

TEST_CASE("etcd_json_reads_real_answers") {
  auto r = ej::parse_range(range_answer);
  REQUIRE(r.ok());
  CHECK(r->revision == 7);
  REQUIRE(r->kvs.size() == 1);
  CHECK(r->kvs[0].key == "a");
  CHECK(r->kvs[0].value == "b");
  CHECK(r->kvs[0].create_revision == 2);
  CHECK(r->kvs[0].mod_revision == 5);
  CHECK(r->kvs[0].lease == 4111120502004368390);
  // "succeeded" is left out when false (proto3 JSON omits defaults).
  auto t = ej::parse_txn(txn_failed);
  REQUIRE(t.ok());
  CHECK(!t->succeeded);
  CHECK(t->revision == 9);
  REQUIRE(t->ranges.size() == 1);
  CHECK(t->ranges[0].kvs.at(0).value == "c");
  auto w = ej::parse_watch_line(watch_line);
  REQUIRE(w.ok());
  REQUIRE(w->events.size() == 2);
  CHECK(w->events[0].type == watch_event::kind::put);
  CHECK(w->events[1].type == watch_event::kind::del);
  CHECK(w->events[1].mod_revision == 3);
  // etcd 3.4's answer to a watch from a compacted revision.
  auto compacted = ej::parse_watch_line(
    R"({"result":{"header":{"cluster_id":"1","raft_term":"2"},)"
    R"("canceled":true,"compact_revision":"3"}})");
  REQUIRE(compacted.ok());
  CHECK(compacted->canceled);
  CHECK(compacted->compact_revision == 3);
  CHECK(!ej::parse_watch_line(R"({"result":{"header":{},"events":[]}})").ok());
  auto g = ej::parse_grant(R"({"header":{"revision":"1"},"ID":"41","TTL":"5"})");
  REQUIRE(g.ok());
  CHECK(g.value() == 41);
  auto k = ej::parse_keep_alive(
    R"({"result":{"header":{"revision":"2"},"ID":"41","TTL":"5"}})");
  REQUIRE(k.ok());
  CHECK(k.value() == 5);
  // etcd answers an unknown lease's keep-alive with 200 and no TTL.
  auto gone = ej::parse_keep_alive(
    R"({"result":{"header":{"revision":"2"},"ID":"41"}})");
  REQUIRE(!gone.ok());
  CHECK(gone.error().code == cp_errc::lease_gone);
  auto e = ej::error_of(404, R"({"error":"etcdserver: requested lease not )"
                             R"(found","message":"etcdserver: requested )"
                             R"(lease not found","code":5})");
  CHECK(e.code == cp_errc::lease_gone);
  CHECK(ej::error_of(500, "<html>").code == cp_errc::http);
}

TEST_CASE("etcd_json_every_truncation_of_an_answer_is_an_error") {
  for (auto* text : {&range_answer, &txn_failed, &watch_line}) {
    for (size_t n = 0; n < text->size(); ++n) {
      std::string cut = text->substr(0, n);
      CHECK_MESSAGE(!ej::parse_range(cut).ok(), cut);
      CHECK_MESSAGE(!ej::parse_txn(cut).ok(), cut);
      CHECK_MESSAGE(!ej::parse_watch_line(cut).ok(), cut);
      CHECK_MESSAGE(!ej::parse_revision(cut).ok(), cut);
    }
  }
}

TEST_CASE("etcd_json_garbage_and_oversized_answers_are_errors") {
  for (const char* bad :
       {"", "null", "[]", "42", "\"x\"", "{", "{}}", "{'a':1}",
        R"({"header":{"revision":"x"}})", R"({"header":{"revision":"-"}})",
        R"({"header":{"revision":1.5}})", R"({"header":{"revision":true}})",
        R"({"header":{"revision":"99999999999999999999999"}})",
        R"({"header":{"revision":"3"},"kvs":{}})",
        R"({"header":{"revision":"3"},"kvs":[1]})",
        R"({"header":{"revision":"3"},"kvs":[{"key":"YQ=","value":"Yg=="}]})",
        R"({"header":{"revision":"3"},"kvs":[{"value":"Yg=="}]})",
        R"({"error":"boom","code":2})"}) {
    auto r = ej::parse_range(bad);
    CHECK_MESSAGE(!r.ok(), bad);
  }
  CHECK(!ej::parse_txn(R"({"header":{"revision":"3"},"succeeded":"yes"})").ok());
  CHECK(!ej::parse_watch_line(
           R"({"result":{"header":{"revision":"3"},"events":[{"type":"X",)"
           R"("kv":{"key":"YQ=="}}]}})")
           .ok());
  std::string deep(100000, '[');
  CHECK(!ej::parse_range(deep).ok());
  std::string huge = range_answer;
  huge.insert(huge.size() - 1,
              ",\"pad\":\"" + std::string(ej::max_answer_bytes, 'a') + "\"");
  auto big = ej::parse_range(huge);
  REQUIRE(!big.ok());
  CHECK(big.error().code == cp_errc::bad_answer);
  CHECK(big.error().message.find("too large") != std::string::npos);
}
