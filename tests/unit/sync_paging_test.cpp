// Sync pages bounded in encoded bytes, and continuations that carry the
// whole rest of a request (issue 20): the user actor's page builder
// (store::user_sync) over the in-memory backend's partitions, each page
// encoded as the gateway encodes it.

#include <doctest/doctest.h>

#include <map>
#include <set>

#include "runtime/core/errors.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/gateway/frame_codec.hpp"
#include "runtime/gateway/ws_sink.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/sync_paging.hpp"
#include "sync_test_support.hpp"

using namespace parley;
using namespace parley::sync_test;
using gateway::frame_format;

namespace {

constexpr uint32_t limit = 512 * 1024;

} // namespace

TEST_CASE("size bounds hold for the widest items in both formats") {
  auto fits = [](const v1::SyncPage& p, size_t bound) {
    for (auto fmt : {frame_format::json, frame_format::binary})
      CHECK(gateway::encode_message(p, fmt).size() <= bound);
  };
  for (size_t n : {0, 1, 2, 3, 4, 1000, 65535, 65536}) {
    stored_message m;
    m.conversation = UINT64_MAX;
    m.seq = UINT64_MAX;
    m.sender_user = UINT64_MAX;
    m.sender_device = UINT64_MAX;
    m.client_message_id.assign(128, '\x01'); // escaped as \u0001
    m.sent_at_ms = INT64_MIN;
    m.kind = 1;
    m.payload.assign(n, '\xff');
    v1::SyncPage p;
    gateway::to_wire_message(m, *p.add_messages());
    fits(p, store::wire_size_bound(m));
  }
  // Membership events are shown structured: small ids and a control-
  // character name grow most in JSON.
  v1::Membership mem;
  mem.set_change(v1::Membership::CHANGE_ADDED);
  mem.set_actor_user_id(UINT64_MAX);
  for (int i = 0; i < 5000; ++i)
    mem.add_target_user_ids(i % 128);
  mem.set_name(std::string(100, '\x02'));
  stored_message ev;
  ev.conversation = UINT64_MAX;
  ev.seq = UINT64_MAX;
  ev.kind = message_kind_membership;
  ev.payload = mem.SerializeAsString();
  v1::SyncPage pm;
  gateway::to_wire_message(ev, *pm.add_messages());
  REQUIRE(pm.messages(0).has_membership());
  fits(pm, store::wire_size_bound(ev));
  inbox_entry e{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
                UINT64_MAX, INT64_MIN,  true,       true,
                true};
  v1::SyncPage pi;
  gateway::to_wire_inbox(e, *pi.add_inbox());
  fits(pi, store::wire_size_bound(e));
  receipt_event r{UINT64_MAX, UINT64_MAX, 2,          UINT64_MAX, INT64_MIN,
                  true,       0,          UINT32_MAX, UINT32_MAX, UINT32_MAX};
  v1::SyncPage pr;
  gateway::to_wire_receipt(r, *pr.add_receipts());
  fits(pr, store::wire_size_bound(r));
  // An empty page with the longest continuation fits the overhead.
  v1::ServerFrame f;
  f.set_request_id(UINT32_MAX);
  f.set_event_seq(UINT32_MAX);
  f.mutable_sync_page()->set_total_unread(UINT64_MAX);
  f.mutable_sync_page()->set_continuation(
    std::string(store::max_continuation_bytes, 'A'));
  for (auto fmt : {frame_format::json, frame_format::binary})
    CHECK(gateway::encode_server_frame(f, fmt).size()
          <= store::sync_frame_overhead + store::max_continuation_bytes);
}

TEST_CASE("continuations round-trip and refuse anything else") {
  store::sync_position p;
  p.phase = store::sync_phase::messages;
  p.started = true;
  p.conv = (uint64_t{1} << 63) | 12345;
  p.after = 77;
  p.cursors = {{1, 0}, {2, UINT64_MAX}, {UINT64_MAX, 5}};
  p.page_size = 7;
  p.cursors_only = true;
  auto token = store::encode_continuation(p);
  auto back = store::decode_continuation(token);
  REQUIRE(back);
  CHECK(*back == p);
  CHECK(back->page_size == 7);
  CHECK(back->cursors_only);
  p.cursors_only = false;
  p.page_size = store::max_sync_page_size;
  back = store::decode_continuation(store::encode_continuation(p));
  REQUIRE(back);
  CHECK(*back == p);
  for (auto c : token) // base64url, safe in JSON and URLs
    CHECK((isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'));
  CHECK_FALSE(store::decode_continuation("garbage!"));
  CHECK_FALSE(store::decode_continuation("1:5"));
  CHECK_FALSE(store::decode_continuation(token.substr(0, token.size() - 3)));
  CHECK_FALSE(store::decode_continuation(token + "AA"));
  CHECK_FALSE(
    store::decode_continuation(std::string(store::max_continuation_bytes + 4,
                                           'A')));
  // Any single changed character is caught (checksum, base64, version).
  for (size_t i = 0; i < token.size(); ++i) {
    auto t = token;
    t[i] = t[i] == 'B' ? 'C' : 'B';
    CHECK_FALSE(store::decode_continuation(t));
  }
}

TEST_CASE("two hundred 64 KiB messages page within the frame limit") {
  memory_backend kv;
  write_batch b;
  store::add_member(b, 5, member{7, 1, 1, 0});
  for (sequence s = 1; s <= 200; ++s)
    store::add_message(b, message(5, s, 8, std::string(64 * 1024, 'a' + s % 26)));
  REQUIRE_FALSE(kv.write(b, true));
  sync_request req;
  req.cursor_conversations = {5};
  req.cursor_sequences = {0};
  req.page_size = 1000;
  req.max_frame_bytes = limit;
  auto pages = sync_all(kv, req);
  CHECK(pages.size() > 10); // about 5 of 88 KiB (in JSON) on each
  seen_list want;
  for (sequence s = 1; s <= 200; ++s)
    want.emplace_back(5, s);
  CHECK(messages_of(pages) == want);
  for (auto& p : pages)
    for (auto& m : p.messages)
      CHECK(m.payload == std::string(64 * 1024, 'a' + m.seq % 26));
}

TEST_CASE("an inbox of 20000 conversations spans pages, each listed once") {
  memory_backend kv;
  write_batch b;
  uint64_t unread = 0;
  for (conversation_id c = 1; c <= 20000; ++c) {
    store::add_member(b, c, member{7, 1, 1, 0});
    if (c % 7 == 0) { // one message from someone else: unread
      store::add_message(b, message(c, 1, 8, "hi"));
      ++unread;
    }
  }
  REQUIRE_FALSE(kv.write(b, true));
  sync_request req;
  req.max_frame_bytes = limit;
  auto pages = sync_all(kv, req);
  CHECK(pages.size() > 2);
  std::set<conversation_id> listed;
  size_t entries = 0;
  for (auto& p : pages)
    for (auto& e : p.inbox) {
      listed.insert(e.conversation);
      ++entries;
      CHECK(e.unread == (e.conversation % 7 == 0 ? 1 : 0));
    }
  CHECK(entries == 20000);
  CHECK(listed.size() == 20000);
  CHECK(pages[0].total_unread == unread);
  for (size_t i = 1; i < pages.size(); ++i)
    CHECK(pages[i].total_unread == 0); // first page only
  // The recent messages of every conversation follow the inbox.
  CHECK(messages_of(pages).size() == unread);
}

TEST_CASE("receipts of many direct conversations page too, each once") {
  memory_backend kv;
  write_batch b;
  constexpr conversation_id direct = uint64_t{1} << 63;
  for (conversation_id i = 1; i <= 3000; ++i) {
    store::add_member(b, direct | i, member{7, 1, 1, 0});
    store::add_message(b, message(direct | i, 1, 7, "mine"));
    store::add_receipt(b, direct | i, receipt_cursor{8, 1, 1});
    store::add_receipt(b, direct | i, receipt_cursor{8, 2, 1});
    store::add_receipt(b, direct | i, receipt_cursor{7, 2, 1}); // own: not listed
  }
  REQUIRE_FALSE(kv.write(b, true));
  sync_request req;
  req.max_frame_bytes = limit;
  auto pages = sync_all(kv, req);
  std::map<conversation_id, int> receipts;
  for (auto& p : pages)
    for (auto& r : p.receipts) {
      CHECK(r.user == 8);
      receipts[r.conversation]++;
    }
  CHECK(receipts.size() == 3000);
  for (auto& [conv, n] : receipts)
    CHECK(n == 2);
  CHECK(messages_of(pages).size() == 3000);
}

TEST_CASE("a continuation alone resumes every conversation at its cursor") {
  memory_backend kv;
  write_batch b;
  std::map<conversation_id, sequence> heads{{3, 9}, {5, 4}, {8, 12}, {11, 6}};
  for (auto& [conv, head] : heads) {
    store::add_member(b, conv, member{7, 1, 1, 0});
    for (sequence s = 1; s <= head; ++s)
      store::add_message(b, message(conv, s, 8, "x"));
  }
  REQUIRE_FALSE(kv.write(b, true));
  // Cursors for three of the four; conversation 11 has none (its recent
  // history comes, here all of it: fewer than `recent`).
  std::map<conversation_id, sequence> cursors{{3, 2}, {5, 1}, {8, 10}};
  sync_request req;
  req.max_frame_bytes = limit;
  req.page_size = 2;
  for (auto& [conv, after] : cursors) {
    req.cursor_conversations.push_back(conv);
    req.cursor_sequences.push_back(after);
  }
  auto pages = sync_all(kv, req); // pages after the first: continuation only
  CHECK(pages.size() > 5);
  seen_list want;
  for (auto& [conv, head] : heads) {
    auto c = cursors.find(conv);
    for (sequence s = c == cursors.end() ? 1 : c->second + 1; s <= head; ++s)
      want.emplace_back(conv, s);
  }
  CHECK(messages_of(pages) == want);

  // Cursors and a page size sent along with a continuation are ignored:
  // it wins.
  auto first = page_of(kv, req);
  REQUIRE(first);
  sync_request mixed;
  mixed.max_frame_bytes = limit;
  mixed.page_size = 100;
  mixed.continuation = first->continuation;
  mixed.cursor_conversations = {3, 5, 8};
  mixed.cursor_sequences = {0, 0, 0};
  auto rest = sync_all(kv, mixed);
  seen_list got;
  for (auto& m : first->messages)
    got.emplace_back(m.conversation, m.seq);
  for (auto& p : rest) {
    CHECK(p.messages.size() <= 2);
    for (auto& m : p.messages)
      got.emplace_back(m.conversation, m.seq);
  }
  CHECK(got == want);
}

TEST_CASE("bad continuations are refused and grant nothing") {
  memory_backend kv;
  write_batch b;
  store::add_member(b, 5, member{7, 1, 1, 0});
  store::add_member(b, 99, member{8, 1, 1, 0}); // user 8's only
  for (sequence s = 1; s <= 3; ++s) {
    store::add_message(b, message(5, s, 8, "mine"));
    store::add_message(b, message(99, s, 8, "secret"));
  }
  REQUIRE_FALSE(kv.write(b, true));
  sync_request req;
  req.page_size = 1;
  auto first = page_of(kv, req);
  REQUIRE(first);
  REQUIRE_FALSE(first->continuation.empty());
  auto& token = first->continuation;
  for (auto bad : {std::string("garbage"), std::string("5:0"),
                   token.substr(0, token.size() / 2), token + "x",
                   std::string(store::max_continuation_bytes + 1, 'A')}) {
    sync_request r;
    r.continuation = bad;
    auto page = page_of(kv, r);
    REQUIRE_FALSE(page);
    CHECK(is(page.error(), errc::bad_request));
  }
  // A well-formed token is only a position: a cursor outside the user's
  // memberships is refused, and a position in someone else's conversation
  // lists nothing of it.
  store::sync_position forged;
  forged.phase = store::sync_phase::messages;
  forged.cursors = {{99, 0}};
  sync_request r;
  r.continuation = store::encode_continuation(forged);
  CHECK(is(page_of(kv, r).error(), errc::forbidden));
  forged.cursors.clear();
  forged.started = true;
  forged.conv = 99;
  r.continuation = store::encode_continuation(forged);
  auto page = page_of(kv, r);
  REQUIRE(page);
  CHECK(page->messages.empty());
  forged.conv = 4; // before 5: user 7's own conversation comes
  r.continuation = store::encode_continuation(forged);
  page = page_of(kv, r);
  REQUIRE(page);
  for (auto& m : page->messages)
    CHECK(m.conversation == 5);
  CHECK(page->messages.size() == 3);
}

TEST_CASE("more cursors than one continuation holds are refused clearly") {
  memory_backend kv;
  write_batch b;
  sync_request many;
  many.max_frame_bytes = limit;
  // Ids far apart: each cursor costs 9 bytes and more in a continuation.
  for (uint64_t i = 1; i <= 4000; ++i) {
    store::add_member(b, i << 48, member{7, 1, 1, 0});
    store::add_message(b, message(i << 48, 1, 8, "m"));
    many.cursor_conversations.push_back(i << 48);
    many.cursor_sequences.push_back(1); // has it
  }
  REQUIRE_FALSE(kv.write(b, true));
  auto page = page_of(kv, many);
  REQUIRE_FALSE(page);
  CHECK(is(page.error(), errc::too_large));
  auto ctx = page.error().context();
  REQUIRE(ctx.match_element<std::string>(0));
  CHECK(ctx.get_as<std::string>(0).find("split them over several Syncs")
        != std::string::npos);
  // Half as many fit; the continuation alone keeps every cursor: the
  // conversations with one get nothing, the others their message.
  many.cursor_conversations.resize(2000);
  many.cursor_sequences.resize(2000);
  many.page_size = 100;
  auto pages = sync_all(kv, many);
  std::set<conversation_id> listed;
  for (auto& p : pages)
    for (auto& e : p.inbox)
      listed.insert(e.conversation);
  CHECK(listed.size() == 4000);
  seen_list want;
  for (uint64_t i = 2001; i <= 4000; ++i)
    want.emplace_back(i << 48, 1);
  CHECK(messages_of(pages) == want);
}
