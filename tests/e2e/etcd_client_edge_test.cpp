// The control-plane client against what is not a healthy etcd: nothing
// listening, a server that never answers, garbage, truncated and oversized
// HTTP answers, and a watch stream that drops mid-way. Each gives a clear
// error (or a resumed watch), never a hang.

#include <doctest/doctest.h>

#include "etcd_fixture.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>

using namespace parley::cluster;
using parley::e2e::fake_http_server;

namespace {

std::string answer(const std::string& status, const std::string& body) {
  return "HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\n"
         "Content-Length: "
         + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string ok_json(const std::string& body) {
  return answer("200 OK", body);
}

/// The error code of a range call against one canned answer.
cp_errc range_error(const std::string& answer, bool hold = false) {
  fake_http_server fake({answer}, hold);
  etcd_client c(fake.options());
  auto r = c.range("/p/");
  REQUIRE(!r.ok());
  return r.error().code;
}

} // namespace

TEST_CASE("etcd_client_call_to_a_closed_port_is_unreachable") {
  etcd_options o;
  o.at = {"127.0.0.1", parley::e2e::free_port()};
  etcd_client c(o);
  auto g = c.grant(5);
  REQUIRE(!g.ok());
  CHECK(g.error().code == cp_errc::unreachable);
  CHECK(!c.healthy());
}

TEST_CASE("etcd_client_server_that_never_answers_is_a_timeout") {
  CHECK(range_error("", true) == cp_errc::timeout);
}

TEST_CASE("etcd_client_garbage_truncated_and_oversized_answers_are_errors") {
  // Garbage JSON with a 200.
  CHECK(range_error(ok_json("{\"header\":{\"revision\":")) == cp_errc::bad_answer);
  CHECK(range_error(ok_json("<html>no</html>")) == cp_errc::bad_answer);
  CHECK(range_error(ok_json("{\"header\":{\"revision\":\"1\"},\"kvs\":"
                            "[{\"key\":\"!!notbase64\"}]}"))
        == cp_errc::bad_answer);
  // Not HTTP at all, and HTTP truncated in the headers or the body.
  CHECK(range_error("hello there\r\n\r\n") == cp_errc::http);
  CHECK(range_error("HTTP/1.1 200 OK\r\nContent-Le") == cp_errc::closed);
  CHECK(range_error("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"hea")
        == cp_errc::closed);
  CHECK(range_error("") == cp_errc::closed); // closed without a byte
  // Oversized: refused from the Content-Length, unread.
  CHECK(range_error("HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n")
        == cp_errc::bad_answer);
  // An HTTP error with and without etcd's error body.
  CHECK(range_error(answer("500 Internal",
                           "{\"error\":\"boom\",\"message\":\"boom\"}"))
        == cp_errc::server);
  CHECK(range_error("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        == cp_errc::http);
}

TEST_CASE("etcd_watch_resumes_after_the_last_seen_revision") {
  auto line = [](int rev, const char* key_b64) {
    return "{\"result\":{\"header\":{\"revision\":\"" + std::to_string(rev)
           + "\"},\"events\":[{\"kv\":{\"key\":\"" + key_b64
           + "\",\"mod_revision\":\"" + std::to_string(rev) + "\"}}]}}\n";
  };
  auto created = [](int rev) {
    return "{\"result\":{\"header\":{\"revision\":\"" + std::to_string(rev)
           + "\"},\"created\":true}}\n";
  };
  const std::string head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
  // First connection: created, the event of revision 5, then a drop in the
  // middle of the next line. Second: revision 5 again (must not repeat)
  // and 6; then the connection stays open.
  fake_http_server fake({head + created(4) + line(5, "L3cvYQ==")
                           + "{\"result\":{\"hea",
                         head + created(6) + line(5, "L3cvYQ==")
                           + line(6, "L3cvYg==")},
                        true);
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<watch_event> events;
  etcd_client c(fake.options());
  auto w = c.watch("/w/", 5, [&](const watch_event& ev) {
    std::lock_guard<std::mutex> guard(mtx);
    events.push_back(ev);
    cv.notify_all();
  });
  {
    std::unique_lock<std::mutex> lock(mtx);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(20),
                        [&] { return events.size() >= 2; }));
  }
  w->cancel();
  REQUIRE(events.size() == 2);
  CHECK(events[0].key == "/w/a");
  CHECK(events[0].mod_revision == 5);
  CHECK(events[1].key == "/w/b");
  CHECK(events[1].mod_revision == 6);
  auto reqs = fake.requests();
  REQUIRE(reqs.size() >= 2);
  CHECK(reqs[0].find("\"start_revision\":\"5\"") != std::string::npos);
  CHECK(reqs[1].find("\"start_revision\":\"6\"") != std::string::npos);
}

TEST_CASE("etcd_watch_reconnects_when_the_stream_stays_silent_past_its_idle_deadline") {
  // The first connection answers "created" and then nothing: no progress
  // notification comes, so the watch must drop it and connect again.
  fake_http_server fake(
    {"HTTP/1.1 200 OK\r\n\r\n{\"result\":{\"header\":{\"revision\":"
     "\"4\"},\"created\":true}}\n"},
    true);
  auto opts = fake.options();
  opts.watch_idle_deadline = std::chrono::milliseconds(300);
  etcd_client c(opts);
  auto w = c.watch("/w/", 0, [](const watch_event&) {});
  REQUIRE(fake.wait_for_requests(2));
  w->cancel();
  auto reqs = fake.requests();
  CHECK(reqs[0].find("\"progress_notify\":true") != std::string::npos);
  // "From now" became "after what etcd had when the watch was created".
  CHECK(reqs[1].find("\"start_revision\":\"5\"") != std::string::npos);
}
