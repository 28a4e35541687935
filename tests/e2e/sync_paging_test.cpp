// Sync pages on a real parleyd (issue 20): every SyncPage frame stays under
// the limit the Welcome announces, however large the payloads; a
// continuation alone resumes the whole request; bad continuations and
// requests with too many cursors get clear errors.

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <sys/wait.h>
#include <unistd.h>

#include "parleyd_node.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

namespace {

/// A distinct 64 KiB payload for message `i`.
std::string big_payload(int i) {
  std::string p(64 * 1024, '\0');
  for (size_t k = 0; k < p.size(); ++k)
    p[k] = static_cast<char>((k * 31 + static_cast<size_t>(i)) & 0xff);
  return p;
}

} // namespace

TEST_CASE("sync_pages_of_large_payloads_stay_under_the_announced_frame_limit") {
  node n{{"--parley.no-rate-limits"}};
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::binary);
  for (int i = 1; i <= 200; ++i) {
    auto acc = a.call(send_frame(static_cast<uint32_t>(i + 2), conv,
                                 "big-" + std::to_string(i), big_payload(i)),
                      frame_format::binary);
    REQUIRE(acc);
    REQUIRE(acc->has_accepted());
  }
  for (auto fmt : {frame_format::json, frame_format::binary}) {
    CAPTURE(fmt == frame_format::json);
    ws_client b{n.port};
    auto w = b.call(hello(1, bob), fmt);
    REQUIRE(w);
    REQUIRE(w->has_welcome());
    auto limit = w->welcome().max_server_frame_bytes();
    CHECK(limit == 512 * 1024);
    auto pages
      = sync_by_continuation(b, sync_frame(2, {{conv, 0}}, 1000), fmt, limit);
    CHECK(pages.size() > 10);
    uint64_t next = 1;
    for (auto& p : pages)
      for (auto& m : p.messages()) {
        REQUIRE(m.server_sequence() == next);
        CHECK(m.payload() == big_payload(static_cast<int>(next)));
        ++next;
      }
    CHECK(next == 201);
  }
}

TEST_CASE("a_continuation_sent_alone_resumes_every_conversation_of_a_sync") {
  node n;
  auto bob = n.account("bob", "laptop");
  std::map<uint64_t, uint64_t> heads;
  for (auto peer : {"alice", "carol", "dave"}) {
    auto token = n.account(peer, "phone");
    ws_client c{n.port};
    auto conv = open_chat(c, token, "bob", frame_format::binary);
    for (uint32_t i = 1; i <= 7; ++i)
      REQUIRE(c.call(send_frame(i + 2, conv, "m" + std::to_string(i), "hi"),
                     frame_format::binary)
                ->has_accepted());
    heads[conv] = 7;
  }
  // Cursors in every conversation, pages of two: each resumes at its own.
  std::map<uint64_t, uint64_t> cursors;
  uint64_t k = 1;
  for (auto& [conv, head] : heads)
    cursors[conv] = k++ * 2; // 2, 4, 6
  ws_client b{n.port};
  auto w = b.call(hello(1, bob), frame_format::json);
  REQUIRE(w);
  auto pages = sync_by_continuation(b, sync_frame(2, cursors, 2),
                                    frame_format::json,
                                    w->welcome().max_server_frame_bytes());
  std::vector<std::pair<uint64_t, uint64_t>> got, want;
  for (auto& p : pages)
    for (auto& m : p.messages())
      got.emplace_back(m.conversation_id(), m.server_sequence());
  for (auto& [conv, head] : heads)
    for (auto s = cursors[conv] + 1; s <= head; ++s)
      want.emplace_back(conv, s);
  CHECK(got == want);
}

TEST_CASE("bad_continuations_and_too_many_cursors_get_clear_errors") {
  node n;
  auto alice = n.account("alice", "phone");
  auto bob = n.account("bob", "laptop");
  ws_client a{n.port};
  auto conv = open_chat(a, alice, "bob", frame_format::binary);
  for (uint32_t i = 1; i <= 3; ++i)
    REQUIRE(a.call(send_frame(i + 2, conv, "m" + std::to_string(i), "hi"),
                   frame_format::binary)
              ->has_accepted());
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::json)->has_welcome());
  uint32_t rid = 2;
  // A real continuation, truncated or with one character changed.
  v1::ClientFrame first;
  first.set_request_id(rid++);
  first.mutable_sync()->set_page_size(1);
  auto page = b.call(first, frame_format::json);
  REQUIRE(page);
  REQUIRE(page->has_sync_page());
  auto token = page->sync_page().continuation();
  REQUIRE(token.size() > 8);
  auto altered = token;
  altered[token.size() / 2] = altered[token.size() / 2] == 'B' ? 'C' : 'B';
  CHECK(b.call(sync_continue(rid++, token), frame_format::json)->has_sync_page());
  for (auto bad : {std::string("garbage"), std::string("12:34"),
                   std::string("AQ"), std::string(40000, 'A'),
                   token.substr(0, token.size() - 4), altered})
    for (auto fmt : {frame_format::json, frame_format::binary}) {
      CAPTURE(bad.size());
      CHECK(error_of(b.call(sync_continue(rid++, bad), fmt))
            == v1::Error::CODE_BAD_FRAME);
    }
  // Thousands of cursors far apart: refused, with what to do instead.
  v1::ClientFrame many;
  many.set_request_id(rid++);
  for (uint64_t i = 1; i <= 4000; ++i) {
    auto* c = many.mutable_sync()->add_cursors();
    c->set_conversation_id(i << 48);
    c->set_after_sequence(1);
  }
  auto r = b.call(many, frame_format::binary);
  REQUIRE(r);
  REQUIRE(r->has_error());
  CHECK(r->error().code() == v1::Error::CODE_TOO_LARGE);
  CHECK(r->error().message().find("split them over several Syncs")
        != std::string::npos);
  // The connection is still usable.
  CHECK(b.call(ping(rid++), frame_format::json)->has_pong());
}

TEST_CASE("parleyd_refuses_a_server_frame_limit_below_one_largest_message") {
  auto dir = std::filesystem::temp_directory_path()
             / ("parley-frame-limit-" + std::to_string(getpid()));
  child c{PARLEYD,
          {"--data", dir.string(), "--parley.max-server-frame-bytes=65536"}};
  CHECK(c.wait_for_line("max-server-frame-bytes"));
  auto st = c.wait();
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 2);
  std::filesystem::remove_all(dir);
}
