// Sync requests split over several Syncs (cursors_only), and what a
// continuation carries besides the cursors (page size, cursors_only); a
// cursor ahead of its head refused on the first page; the membership
// window on resumed pages; the tightest frame limit; how much a page reads
// (issue 20, review of the sync paging).

#include <doctest/doctest.h>

#include <map>
#include <set>

#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/sync_paging.hpp"
#include "sync_test_support.hpp"

using namespace parley;
using namespace parley::sync_test;

namespace {

constexpr uint32_t limit = default_max_server_frame_bytes;

/// A continuation with raw body bytes `bin` (checksum and base64url as
/// sync_paging.cpp writes them), to forge tokens of other versions.
std::string raw_token(std::string bin) {
  uint32_t h = 2166136261u; // FNV-1a
  for (auto c : bin) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  for (int i = 3; i >= 0; --i)
    bin.push_back(static_cast<char>(h >> (8 * i)));
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                                     "opqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (auto c : bin) {
    acc = (acc << 8) | static_cast<uint8_t>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0)
    out.push_back(alphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

/// Counts the message records of 64 KiB and more that scans visit.
class counting_kv : public kv_backend {
public:
  explicit counting_kv(kv_backend& kv) : kv_(kv) {
  }

  caf::error write(const write_batch& batch, bool sync) override {
    return kv_.write(batch, sync);
  }

  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    return kv_.get(key);
  }

  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    return kv_.scan(from, to, [&](std::string_view k, std::string_view v) {
      if (v.size() >= 64 * 1024)
        ++big_reads;
      return f(k, v);
    });
  }

  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    return kv_.last(from, to);
  }

  size_t big_reads = 0;

private:
  kv_backend& kv_;
};

sync_request with_cursors(const std::map<conversation_id, sequence>& cursors) {
  sync_request req;
  req.max_frame_bytes = limit;
  for (auto& [conv, after] : cursors) {
    req.cursor_conversations.push_back(conv);
    req.cursor_sequences.push_back(after);
  }
  return req;
}

/// User 7 in conversations `x` and `y`, 30 messages from user 8 in each
/// (payloads "x" and "y").
void two_chats_of_30(memory_backend& kv, conversation_id x,
                     conversation_id y) {
  write_batch b;
  store::add_member(b, x, member{7, 1, 1, 0});
  store::add_member(b, y, member{7, 1, 1, 0});
  for (sequence s = 1; s <= 30; ++s) {
    store::add_message(b, message(x, s, 8, "x"));
    store::add_message(b, message(y, s, 8, "y"));
  }
  REQUIRE_FALSE(kv.write(b, true));
}

} // namespace

TEST_CASE("a split request: the first as usual, the others cursors only") {
  memory_backend kv;
  write_batch b;
  constexpr conversation_id direct = uint64_t{1} << 63;
  // 4000 conversations far apart (a continuation cannot hold all their
  // cursors), three messages each; the client holds the first two of each.
  // Direct ones (every tenth) have the peer's receipts.
  std::vector<conversation_id> convs;
  for (uint64_t i = 1; i <= 4000; ++i) {
    auto conv = (i << 48) | (i % 10 == 0 ? direct : 0);
    convs.push_back(conv);
    store::add_member(b, conv, member{7, 1, 1, 0});
    for (sequence s = 1; s <= 3; ++s)
      store::add_message(b, message(conv, s, 8, "m"));
    if (is_direct(conv))
      store::add_receipt(b, conv, receipt_cursor{8, 1, 3});
  }
  REQUIRE_FALSE(kv.write(b, true));
  std::sort(convs.begin(), convs.end());
  std::map<conversation_id, sequence> all, first_half, second_half;
  for (size_t i = 0; i < convs.size(); ++i) {
    all[convs[i]] = 2;
    (i < 2000 ? first_half : second_half)[convs[i]] = 2;
  }
  auto whole = page_of(kv, with_cursors(all));
  REQUIRE_FALSE(whole);
  REQUIRE(is(whole.error(), errc::too_large));
  auto why = whole.error().context().get_as<std::string>(0);
  CHECK(why.find("split them over several Syncs") != std::string::npos);
  CHECK(why.find("cursorsOnly") != std::string::npos);

  // The first as usual: the whole inbox and the receipts.
  auto first = sync_all(kv, with_cursors(first_half));
  std::set<conversation_id> listed;
  for (auto& p : first)
    for (auto& e : p.inbox)
      listed.insert(e.conversation);
  CHECK(listed.size() == 4000);
  CHECK(first.front().total_unread == 4000 * 3);
  // The others: only their cursors' conversations, from the cursors, over
  // pages that send nothing but the continuation.
  auto rest_req = with_cursors(second_half);
  rest_req.cursors_only = true;
  rest_req.page_size = 7;
  auto rest = sync_all(kv, rest_req);
  CHECK(rest.size() > 100); // 2000 messages, 7 a page
  seen_list want;
  for (auto& [conv, after] : second_half)
    want.emplace_back(conv, 3);
  CHECK(messages_of(rest) == want);
  for (auto& p : rest) {
    CHECK(p.inbox.empty());
    CHECK(p.receipts.empty());
    CHECK(p.total_unread == 0);
    CHECK(p.messages.size() <= 7);
  }
}

TEST_CASE("the page size travels in the continuation") {
  memory_backend kv;
  two_chats_of_30(kv, 5, 6);
  auto req = with_cursors({{5, 0}, {6, 0}});
  req.page_size = 10;
  auto pages = sync_all(kv, req); // later requests: default page size
  CHECK(pages.size() == 6);       // 10 on each
  for (auto& p : pages)
    CHECK(p.messages.size() <= 10);
  CHECK(messages_of(pages).size() == 60);
  // A token of version 1 (no page size) or with a page size out of range
  // is refused: resend the Sync without it.
  sync_request old;
  old.continuation
    = raw_token(std::string("\x01\x02\x00\x00\x01\x05\x00", 7));
  CHECK(is(page_of(kv, old).error(), errc::bad_request));
  for (auto bad : {std::string("\x02\x02\x00\x00\x00\x00", 6),  // size 0
                   std::string("\x02\x02\xe9\x07\x00\x00\x00", 7)}) { // 1001
    sync_request r;
    r.continuation = raw_token(bad);
    CHECK(is(page_of(kv, r).error(), errc::bad_request));
  }
  sync_request good; // the same bytes with size 1000 are a token
  good.continuation = raw_token(std::string("\x02\x02\xe8\x07\x00\x00\x00", 7));
  CHECK(page_of(kv, good));
}

TEST_CASE("a cursor ahead of its head is refused on the first page") {
  memory_backend kv;
  write_batch b;
  store::add_member(b, 3, member{7, 1, 1, 0});
  store::add_member(b, 9, member{7, 1, 1, 0});
  for (sequence s = 1; s <= 30; ++s)
    store::add_message(b, message(3, s, 8, "x"));
  store::add_message(b, message(9, 1, 8, "y"));
  store::add_message(b, message(9, 2, 8, "y"));
  REQUIRE_FALSE(kv.write(b, true));
  // Conversation 9 would come pages later; its cursor is refused now,
  // while the client can still correct it.
  auto req = with_cursors({{3, 0}, {9, 5}});
  req.page_size = 10;
  auto page = page_of(kv, req);
  REQUIRE_FALSE(page);
  CHECK(is(page.error(), errc::cursor_ahead));
  CHECK(page.error().context().get_as<std::string>(0).find("9")
        != std::string::npos);
  // A forged position with such a cursor is still refused when reached.
  store::sync_position forged;
  forged.phase = store::sync_phase::messages;
  forged.started = true;
  forged.conv = 3;
  forged.after = 28;
  forged.cursors = {{9, 5}};
  sync_request r;
  r.continuation = store::encode_continuation(forged);
  CHECK(is(page_of(kv, r).error(), errc::cursor_ahead));
}

TEST_CASE("a resumed page keeps to the membership window read for it") {
  memory_backend kv;
  two_chats_of_30(kv, 5, 8);
  auto req = with_cursors({{5, 0}, {8, 0}});
  req.page_size = 10;
  auto first = page_of(kv, req);
  REQUIRE(first);
  REQUIRE(first->messages.size() == 10);
  REQUIRE(first->messages.back().seq == 10);
  // Between pages user 7 leaves 5 at 15 and rejoins 8 at 25: the rest of
  // 5 stops at 14, and 8 starts at 25 despite the cursor at 0.
  write_batch change;
  store::add_member(change, 5, member{7, 1, 1, 15});
  store::add_member(change, 8, member{7, 1, 25, 0});
  REQUIRE_FALSE(kv.write(change, true));
  sync_request next;
  next.max_frame_bytes = limit;
  next.continuation = first->continuation;
  auto rest = sync_all(kv, next);
  seen_list want;
  for (sequence s = 11; s <= 14; ++s)
    want.emplace_back(5, s);
  for (sequence s = 25; s <= 30; ++s)
    want.emplace_back(8, s);
  CHECK(messages_of(rest) == want);
  // A position inside 8 before the join starts at the join as well.
  store::sync_position inside;
  inside.phase = store::sync_phase::messages;
  inside.started = true;
  inside.conv = 8;
  inside.after = 3;
  sync_request r;
  r.continuation = store::encode_continuation(inside);
  auto page = page_of(kv, r);
  REQUIRE(page);
  REQUIRE_FALSE(page->messages.empty());
  CHECK(page->messages.front().seq == 25);
}

TEST_CASE("the tightest frame limit holds 64 KiB messages and many cursors") {
  memory_backend kv;
  write_batch b;
  // 3000 cursors far apart: a continuation of nearly 32 KiB.
  std::map<conversation_id, sequence> cursors;
  seen_list want;
  for (uint64_t i = 1; i <= 3000; ++i) {
    conversation_id conv = i << 48;
    store::add_member(b, conv, member{7, 1, 1, 0});
    bool big = i % 300 == 0;
    for (sequence s = 1; s <= (big ? 3 : 1); ++s) {
      auto m = message(conv, s, 8, std::string(big ? 64 * 1024 : 10,
                                                static_cast<char>(s)));
      m.client_message_id.assign(128, '\x01'); // the widest in JSON
      store::add_message(b, m);
      if (big)
        want.emplace_back(conv, s);
    }
    cursors[conv] = big ? 0 : 1;
  }
  REQUIRE_FALSE(kv.write(b, true));
  auto req = with_cursors(cursors);
  REQUIRE(store::continuation_reserve(
            std::vector<std::pair<conversation_id, sequence>>(
              cursors.begin(), cursors.end()))
          > store::max_continuation_bytes - 1024);
  req.max_frame_bytes
    = static_cast<uint32_t>(store::min_server_frame_bytes(64 * 1024));
  req.page_size = 1000;
  auto pages = sync_all(kv, req); // checks every page against the limit
  CHECK(messages_of(pages) == want);
  size_t entries = 0;
  for (auto& p : pages)
    entries += p.inbox.size();
  CHECK(entries == 3000);
}

TEST_CASE("a page of large messages reads few more than it sends") {
  memory_backend mem;
  write_batch b;
  store::add_member(b, 5, member{7, 1, 1, 0});
  for (sequence s = 1; s <= 40; ++s)
    store::add_message(b, message(5, s, 8, std::string(64 * 1024, 'z')));
  REQUIRE_FALSE(mem.write(b, true));
  counting_kv kv{mem};
  auto req = with_cursors({{5, 0}});
  req.page_size = 1000;
  size_t sent = 0;
  for (int i = 0; i < 100; ++i) {
    kv.big_reads = 0;
    auto page = page_of(kv, req);
    REQUIRE(page);
    CAPTURE(i);
    // About five fit a page; reading 16 for them wastes 700 KiB. (The
    // first page also reads the inbox's unread messages to count them.)
    if (i > 0)
      CHECK(kv.big_reads <= page->messages.size() + 1);
    sent += page->messages.size();
    if (page->continuation.empty())
      break;
    req = sync_request{};
    req.max_frame_bytes = limit;
    req.continuation = page->continuation;
  }
  CHECK(sent == 40);
}
