#include <doctest/doctest.h>

#include <filesystem>
#include <memory>

#include <unistd.h>

#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/leveldb_backend.hpp"
#include "runtime/store/memory_backend.hpp"
#include "sync_test_support.hpp"
#include "temp_dir.hpp"

using namespace parley;

namespace {

using sync_test::page_of;
using test::temp_dir;

stored_message msg(conversation_id conv, sequence seq, std::string cmid) {
  stored_message m;
  m.conversation = conv;
  m.seq = seq;
  m.sender_user = 7;
  m.sender_device = 3;
  m.client_message_id = std::move(cmid);
  m.sent_at_ms = 1000 + static_cast<int64_t>(seq);
  m.kind = 1;
  m.payload = std::string("payload-") + std::to_string(seq);
  return m;
}

/// The same checks against both backends: they must agree.
void check_backend(kv_backend& kv) {
  write_batch b;
  store::add_conversation(b, 5, 2, 99, "trip", "to the sea", 7, "req-1");
  store::add_member(b, 5, member{7, 1, 1, 0});
  store::add_member(b, 5, member{8, 1, 3, 0});
  for (sequence s = 1; s <= 10; ++s)
    store::add_message(b, msg(5, s, "c" + std::to_string(s)));
  store::add_message(b, msg(6, 1, "other")); // neighbour conversation
  store::add_watermark(b, 5, 4);
  REQUIRE_FALSE(kv.write(b, true));

  auto snap = store::load_conversation(kv, 5);
  REQUIRE(snap);
  CHECK(snap->exists);
  CHECK(snap->head == 10);
  CHECK(snap->dispatched == 4);
  CHECK(snap->kind == 2);
  CHECK(snap->name == "trip");
  CHECK(snap->description == "to the sea");
  CHECK(snap->created_at_ms == 99);
  CHECK(snap->creator == 7);
  CHECK(snap->create_request_id == "req-1");
  REQUIRE(snap->members.size() == 2);
  CHECK(snap->members[1].user == 8);
  CHECK(snap->members[1].joined_at_sequence == 3);

  auto none = store::load_conversation(kv, 4);
  REQUIRE(none);
  CHECK_FALSE(none->exists);
  CHECK(none->head == 0);
  CHECK(none->members.empty());

  auto page = store::fetch_messages(kv, 5, 4, 3);
  REQUIRE(page);
  REQUIRE(page->size() == 3);
  CHECK((*page)[0].seq == 5);
  CHECK((*page)[2].seq == 7);
  CHECK((*page)[0].payload == "payload-5");
  CHECK((*page)[0].client_message_id == "c5");
  auto tail = store::fetch_messages(kv, 5, 8, 100);
  REQUIRE(tail);
  CHECK(tail->size() == 2); // stops at the conversation's end

  auto hit = store::lookup_idempotency(kv, 5, 7, 3, "c9");
  REQUIRE(hit);
  CHECK(hit->found);
  CHECK(hit->seq == 9);
  CHECK(hit->accepted_at_ms == 1009);
  auto miss = store::lookup_idempotency(kv, 5, 7, 4, "c9");
  REQUIRE(miss);
  CHECK_FALSE(miss->found);

  auto behind = store::undispatched_conversations(kv);
  REQUIRE(behind);
  CHECK(*behind == std::vector<conversation_id>{5});
}

} // namespace

TEST_CASE("memory backend stores, reads and scans conversations") {
  memory_backend kv;
  check_backend(kv);
}

TEST_CASE("leveldb backend stores, reads and scans conversations") {
  temp_dir dir;
  auto kv = leveldb_backend::open(dir.path.string());
  REQUIRE(kv);
  check_backend(**kv);
}

TEST_CASE("leveldb backend keeps synced writes across reopen") {
  temp_dir dir;
  {
    auto kv = leveldb_backend::open(dir.path.string());
    REQUIRE(kv);
    write_batch b;
    store::add_message(b, msg(1, 1, "a"));
    REQUIRE_FALSE((*kv)->write(b, true));
  }
  auto kv = leveldb_backend::open(dir.path.string());
  REQUIRE(kv);
  auto snap = store::load_conversation(**kv, 1);
  REQUIRE(snap);
  CHECK(snap->head == 1);
}

TEST_CASE("leveldb backend gathers writes in memory up to its write "
          "buffer") {
  // 4,096 messages of about 2 KB (a long client message id, which the
  // message and its idempotency key both hold): a 1 MiB buffer writes
  // level-0 tables, the default (64 MiB) keeps them in memory and its log.
  auto tables_after = [](size_t buffer) {
    temp_dir dir;
    {
      leveldb_options opts;
      opts.write_buffer = buffer;
      auto kv = leveldb_backend::open(dir.path.string(), opts);
      REQUIRE(kv);
      for (uint64_t batch = 0; batch < 64; ++batch) {
        write_batch b;
        for (uint64_t i = 1; i <= 64; ++i)
          store::add_message(b, msg(1, batch * 64 + i,
                                    std::string(1000, 'a' + char(i % 26))));
        REQUIRE_FALSE((*kv)->write(b, false));
      }
    } // closing waits for LevelDB's background work
    int tables = 0;
    for (auto& e : std::filesystem::directory_iterator(dir.path))
      tables += e.path().extension() == ".ldb";
    return tables;
  };
  CHECK(tables_after(size_t{1} << 20) > 0);
  CHECK(tables_after(default_write_buffer) == 0);
}

TEST_CASE("an injected write failure applies nothing of the batch") {
  memory_backend kv;
  kv.fail_write = [](const write_batch&) { return true; };
  write_batch b;
  store::add_message(b, msg(1, 1, "a"));
  auto err = kv.write(b, true);
  CHECK(is(err, errc::storage_failed));
  kv.fail_write = nullptr;
  auto snap = store::load_conversation(kv, 1);
  REQUIRE(snap);
  CHECK(snap->head == 0);
  CHECK(kv.failed_writes() == 1);
}

TEST_CASE("a power loss of the memory backend keeps what synced writes "
          "covered, and only that") {
  memory_backend kv;
  auto put = [&](const char* k, const char* v, bool sync) {
    write_batch b;
    b.put(k, v);
    REQUIRE(!kv.write(b, sync));
  };
  auto value = [&](const char* k) {
    auto v = kv.get(k);
    REQUIRE(v);
    return v->value_or("-");
  };
  put("a", "1", false);
  put("b", "1", true); // makes "a" durable too, as LevelDB's log does
  put("a", "2", false);
  write_batch e;
  e.erase("b");
  REQUIRE(!kv.write(e, false));
  put("c", "1", false);
  // Visible before the loss, as written.
  CHECK(value("a") == "2");
  CHECK(value("b") == "-");
  CHECK(value("c") == "1");
  CHECK(kv.lose_unsynced() == 3);
  CHECK(value("a") == "1");
  CHECK(value("b") == "1");
  CHECK(value("c") == "-");
  CHECK(kv.lose_unsynced() == 0); // nothing more to lose
  CHECK(value("a") == "1");
}

TEST_CASE("a corrupt record is reported, not misread") {
  memory_backend kv;
  write_batch b;
  b.put(keys::message(1, 1), "\xff\xff\xff garbage");
  b.put(keys::outbox(2), std::string("\x08", 1)); // truncated varint
  REQUIRE_FALSE(kv.write(b, true));
  auto page = store::fetch_messages(kv, 1, 0, 10);
  CHECK_FALSE(page);
  CHECK(is(page.error(), errc::storage_corrupt));
  auto snap = store::load_conversation(kv, 2);
  CHECK_FALSE(snap);
}

TEST_CASE("an idempotency sweep finds records past the window, in order, "
          "and keeps re-used keys") {
  memory_backend kv;
  write_batch b;
  // seq 1..6 sent at 1001..1006; "c2" was re-used by seq 6 (its window had
  // passed), so its record now points at 6.
  for (sequence s = 1; s <= 5; ++s)
    store::add_message(b, msg(5, s, "c" + std::to_string(s)));
  store::add_message(b, msg(5, 6, "c2"));
  REQUIRE_FALSE(kv.write(b, true));

  auto names = [](const idempotency_sweep& s) {
    std::vector<std::string> out;
    for (auto& k : s.expired)
      out.push_back(k.client_message_id);
    return out;
  };
  // Cutoff 1004: messages sent before it (1, 2, 3) are past the window.
  auto r = store::find_expired_idempotency(kv, 5, 0, 1004, 100);
  REQUIRE(r);
  CHECK(r->swept == 3);
  CHECK_FALSE(r->more);
  CHECK(names(*r) == std::vector<std::string>{"c1", "c3"}); // c2 re-used
  // The page limit stops early and says so.
  auto p = store::find_expired_idempotency(kv, 5, 0, 9999, 2);
  REQUIRE(p);
  CHECK(p->swept == 2);
  CHECK(p->more);
  // Resuming after the mark, nothing before it is looked at again.
  auto q = store::find_expired_idempotency(kv, 5, 3, 9999, 100);
  REQUIRE(q);
  CHECK(q->swept == 6);
  CHECK(names(*q) == std::vector<std::string>{"c4", "c5", "c2"});
  // Nothing expired: the mark stays where it was.
  auto none = store::find_expired_idempotency(kv, 5, 0, 1001, 100);
  REQUIRE(none);
  CHECK(none->swept == 0);
  CHECK(none->expired.empty());
  // Erasing and marking is what the conversation then commits.
  write_batch del;
  for (auto& k : r->expired)
    store::erase_idempotency(del, 5, k);
  store::add_sweep_mark(del, 5, r->swept);
  REQUIRE_FALSE(kv.write(del, true));
  CHECK_FALSE(store::lookup_idempotency(kv, 5, 7, 3, "c1")->found);
  CHECK(store::lookup_idempotency(kv, 5, 7, 3, "c2")->seq == 6);
  CHECK(store::load_conversation(kv, 5)->swept == 3);
}

TEST_CASE("sync pages respect membership history, cursors and continuations") {
  memory_backend kv;
  write_batch b;
  store::add_conversation(b, 5, 1, 0);
  store::add_conversation(b, 6, 1, 0);
  // User 7 joined conversation 5 at seq 4 and left at seq 9 (sees 4..8);
  // is a member of 6 from the start.
  store::add_member(b, 5, member{7, 1, 4, 9});
  store::add_member(b, 6, member{7, 1, 1, 0});
  for (sequence s = 1; s <= 12; ++s)
    store::add_message(b, msg(5, s, "a" + std::to_string(s)));
  for (sequence s = 1; s <= 3; ++s)
    store::add_message(b, msg(6, s, "b" + std::to_string(s)));
  REQUIRE_FALSE(kv.write(b, true));

  auto all = [&](sync_request req) {
    std::vector<std::pair<conversation_id, sequence>> got;
    for (int pages = 0; pages < 50; ++pages) {
      auto page = page_of(kv, req);
      REQUIRE(page);
      if (pages == 0)
        CHECK(page->inbox.size() == 2);
      else
        CHECK(page->inbox.empty());
      for (auto& m : page->messages)
        got.emplace_back(m.conversation, m.seq);
      if (page->continuation.empty())
        return got;
      req.continuation = page->continuation;
    }
    FAIL("sync did not end");
    return got;
  };
  sync_request none; // no cursors: recent history, within membership
  none.page_size = 2;
  auto got = all(none);
  std::vector<std::pair<conversation_id, sequence>> want{
    {5, 4}, {5, 5}, {5, 6}, {5, 7}, {5, 8}, {6, 1}, {6, 2}, {6, 3}};
  CHECK(got == want);
  sync_request cur;
  cur.cursor_conversations = {5, 6};
  cur.cursor_sequences = {6, 3};
  cur.page_size = 1;
  want = {{5, 7}, {5, 8}};
  CHECK(all(cur) == want);
  sync_request ahead;
  ahead.cursor_conversations = {6};
  ahead.cursor_sequences = {4};
  CHECK(is(page_of(kv, ahead).error(), errc::cursor_ahead));
  sync_request other;
  other.cursor_conversations = {99};
  other.cursor_sequences = {0};
  CHECK(is(page_of(kv, other).error(), errc::forbidden));
  sync_request bad;
  bad.continuation = "garbage";
  CHECK(is(page_of(kv, bad).error(), errc::bad_request));
}
