// Sync on a real parleyd, after the review of its paging (issue 20): the
// page size kept by a continuation sent alone, cursorsOnly for the later
// parts of a split request, a Sync frame over max-frame-bytes told to
// split, a cursor ahead refused at once, and the tightest frame limit.

#include <doctest/doctest.h>

#include <map>
#include <set>

#include "parleyd_node.hpp"
#include "runtime/store/sync_paging.hpp"

using namespace parley;
using namespace parley::e2e;
using gateway::frame_format;

namespace {

/// Bob with a chat from each of `peers`, `n` messages in each (payloads
/// from `payload`); returns the conversations.
template <class Payload>
std::vector<uint64_t> chats(node& n, std::initializer_list<const char*> peers,
                            uint32_t count, Payload payload) {
  std::vector<uint64_t> out;
  for (auto peer : peers) {
    auto token = n.account(peer, "phone");
    ws_client c{n.port};
    auto conv = open_chat(c, token, "bob", frame_format::binary);
    for (uint32_t i = 1; i <= count; ++i)
      REQUIRE(c.call(send_frame(i + 2, conv, "m" + std::to_string(i),
                                payload(i)),
                     frame_format::binary)
                ->has_accepted());
    out.push_back(conv);
  }
  return out;
}

} // namespace

TEST_CASE("sync_page_size_holds_when_only_the_continuation_is_sent") {
  node n{{"--parley.no-rate-limits"}};
  auto bob = n.account("bob", "laptop");
  auto convs = chats(n, {"alice", "carol"}, 25,
                     [](uint32_t i) { return "hi " + std::to_string(i); });
  ws_client b{n.port};
  auto w = b.call(hello(1, bob), frame_format::json);
  REQUIRE(w);
  auto first = sync_frame(2, {{convs[0], 0}, {convs[1], 0}});
  first.mutable_sync()->set_page_size(10);
  auto pages = sync_by_continuation(b, first, frame_format::json,
                        w->welcome().max_server_frame_bytes());
  CHECK(pages.size() == 5);
  size_t total = 0;
  for (auto& p : pages) {
    CHECK(p.messages_size() <= 10);
    total += static_cast<size_t>(p.messages_size());
  }
  CHECK(total == 50);
}

TEST_CASE("sync_cursors_only_lists_only_the_conversations_with_a_cursor") {
  node n{{"--parley.no-rate-limits"}};
  auto bob = n.account("bob", "laptop");
  auto convs = chats(n, {"alice", "carol", "dave"}, 5,
                     [](uint32_t) { return std::string("hello"); });
  for (auto fmt : {frame_format::json, frame_format::binary}) {
    CAPTURE(fmt == frame_format::json);
    ws_client b{n.port};
    auto w = b.call(hello(1, bob), fmt);
    REQUIRE(w);
    // The second part of a split request: carol's chat only, from 2.
    auto f = sync_frame(2, {{convs[1], 2}});
    f.mutable_sync()->set_cursors_only(true);
    f.mutable_sync()->set_page_size(1);
    auto pages = sync_by_continuation(b, f, fmt, w->welcome().max_server_frame_bytes());
    CHECK(pages.size() == 3);
    std::vector<std::pair<uint64_t, uint64_t>> got;
    for (auto& p : pages) {
      CHECK(p.inbox_size() == 0);
      CHECK(p.receipts_size() == 0);
      CHECK(p.total_unread() == 0);
      for (auto& m : p.messages())
        got.emplace_back(m.conversation_id(), m.server_sequence());
    }
    std::vector<std::pair<uint64_t, uint64_t>> want{
      {convs[1], 3}, {convs[1], 4}, {convs[1], 5}};
    CHECK(got == want);
  }
}

TEST_CASE("a_sync_frame_over_max_frame_bytes_is_told_to_split") {
  node n;
  auto bob = n.account("bob", "laptop");
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::json)->has_welcome());
  uint32_t rid = 2;
  // 19-digit ids: about 60 bytes a cursor in JSON, 15 in binary.
  for (auto [fmt, count] : {std::pair{frame_format::json, 3000},
                            std::pair{frame_format::binary, 8000}}) {
    std::map<uint64_t, uint64_t> cursors;
    for (uint64_t i = 1; i <= static_cast<uint64_t>(count); ++i)
      cursors[(uint64_t{1} << 63) | (i << 32) | 2] = 1;
    // Refused before decoding: the answer has request id 0.
    b.send(sync_frame(rid++, cursors), fmt);
    auto r = b.read();
    REQUIRE(r);
    REQUIRE(r->has_error());
    CHECK(r->error().code() == v1::Error::CODE_TOO_LARGE);
    CHECK(r->error().message().find("split them over several Syncs")
          != std::string::npos);
    CHECK(r->error().message().find("cursorsOnly") != std::string::npos);
  }
  // Another frame as large is refused without that advice.
  b.send(send_frame(rid++, 5, "big", std::string(100 * 1024, 'x')),
         frame_format::json);
  auto r = b.read();
  REQUIRE(r);
  REQUIRE(r->has_error());
  CHECK(r->error().code() == v1::Error::CODE_TOO_LARGE);
  CHECK(r->error().message().find("split") == std::string::npos);
  CHECK(b.call(ping(rid++), frame_format::json)->has_pong());
}

TEST_CASE("a_cursor_ahead_of_its_head_is_refused_on_the_first_sync_page") {
  node n;
  auto bob = n.account("bob", "laptop");
  auto convs = chats(n, {"alice", "carol"}, 6,
                     [](uint32_t) { return std::string("hey"); });
  ws_client b{n.port};
  REQUIRE(b.call(hello(1, bob), frame_format::json)->has_welcome());
  // The second conversation comes pages later (pages of one message).
  std::map<uint64_t, uint64_t> cursors{{convs[0], 0}, {convs[1], 9}};
  auto f = sync_frame(2, cursors);
  f.mutable_sync()->set_page_size(1);
  CHECK(error_of(b.call(f, frame_format::json))
        == v1::Error::CODE_CURSOR_AHEAD);
}

TEST_CASE("sync_pages_stay_under_the_tightest_server_frame_limit") {
  auto least = store::min_server_frame_bytes(64 * 1024);
  node n{{"--parley.no-rate-limits",
          "--parley.max-server-frame-bytes=" + std::to_string(least)}};
  auto bob = n.account("bob", "laptop");
  auto convs = chats(n, {"alice", "carol", "dave"}, 4, [](uint32_t i) {
    return std::string(64 * 1024, static_cast<char>('a' + i));
  });
  for (auto fmt : {frame_format::json, frame_format::binary}) {
    CAPTURE(fmt == frame_format::json);
    ws_client b{n.port};
    auto w = b.call(hello(1, bob), fmt);
    REQUIRE(w);
    CHECK(w->welcome().max_server_frame_bytes() == least);
    auto f = sync_frame(2, {{convs[0], 0}, {convs[1], 0}, {convs[2], 0}});
    f.mutable_sync()->set_page_size(1000);
    auto pages = sync_by_continuation(b, f, fmt, static_cast<uint32_t>(least));
    CHECK(pages.size() >= 12); // one 64 KiB message a page
    size_t got = 0;
    for (auto& p : pages)
      for (auto& m : p.messages()) {
        CHECK(m.payload()
              == std::string(64 * 1024,
                             static_cast<char>('a' + m.server_sequence())));
        ++got;
      }
    CHECK(got == 12);
  }
}
