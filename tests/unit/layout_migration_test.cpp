// The key layout's migration from layout 1 (keys without the 'P' slot
// prefix) to layout 2, and on to 3 (account_layout3_test.cpp tests that
// step on its own): everything reads back through the store's own
// functions afterwards, a re-run does nothing, a crash after any chunk
// leaves every record in exactly one layout and a re-run ends identical,
// and keys whose owner cannot be read stop it with a clear error.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "layout_fixture.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/layout_migration.hpp"

using namespace parley;
using namespace std::string_literals;
using parley::test::dump;
using parley::test::kv_map;

namespace {

std::string be(uint64_t x) {
  std::string s;
  keys::append_u64(s, x);
  return s;
}

/// A layout-2 store and its layout-1 twin.
struct stores {
  memory_backend ref; ///< written by today's store functions
  memory_backend old; ///< the same records in layout 1
  kv_map expected;    ///< what `old` must hold after the migration

  stores() {
    REQUIRE_FALSE(ref.write(test::populated(), true));
    test::write_layout_1(ref, old);
    expected = test::as_layout_3(dump(ref)); // 1 -> 2 -> 3
    expected[keys::meta("layout")] = be(keys::layout_version);
  }
};

store::migration_options small_chunks(std::vector<std::string>* log) {
  store::migration_options o;
  o.chunk_keys = 7;
  o.progress_every = 50;
  if (log)
    o.log = [log](const std::string& line) { log->push_back(line); };
  return o;
}

/// The kept layout version: 0 if none, UINT64_MAX if unreadable.
uint64_t layout_of(kv_backend& kv) {
  auto v = store::stored_layout(kv);
  return !v ? UINT64_MAX : v->value_or(0);
}

/// Keys of the 'P' range in `kv`.
size_t moved_keys(memory_backend& kv) {
  size_t n = 0;
  for (auto& [k, v] : dump(kv))
    if (keys::slot_of_key(k))
      ++n;
  return n;
}

} // namespace

TEST_CASE("the layout-1 twin is layout 1: tag first, big-endian fields") {
  stores s;
  auto old = dump(s.old);
  // Written by hand in layout 1's encoding, independent of keys.cpp.
  CHECK(old.count("m"s + be(1) + be(1)) == 1);
  CHECK(old.count("b"s + be(2) + be(12)) == 1);
  CHECK(old.count("y"s + be(12) + be(2)) == 1);
  CHECK(old.count("s"s + be(1) + be(11) + "\x02"s) == 1);
  CHECK(old.count("r"s + be(11) + be(1) + be(1)) == 1);
  CHECK(old.count("uuser10") == 1);
  CHECK(old.count("nuser") == 1);
  CHECK(old.count("t"s + test::token_hash_of(10, 1)) == 1);
  CHECK(moved_keys(s.old) == 0);
  CHECK(old.size() == dump(s.ref).size());
}

TEST_CASE("a layout-1 store migrates and reads back through the store") {
  stores s;
  std::vector<std::string> log;
  auto rep = store::settle_layout(s.old, small_chunks(&log));
  REQUIRE(rep);
  CHECK(rep->found == 1);
  CHECK(rep->moved == dump(s.ref).size());
  CHECK(rep->accounts == 4); // then 2 -> 3: users 10-13, one chunk
  CHECK(rep->chunks == (rep->moved + 6) / 7 + 1);
  CHECK(dump(s.old) == s.expected); // exactly the layout-3 records
  CHECK(layout_of(s.old) == 3);
  REQUIRE(log.size() >= 5);
  CHECK(log.front().find("from layout 1 to 2") != std::string::npos);
  CHECK(log[1].find("keys moved") != std::string::npos); // progress
  CHECK(log[log.size() - 3].find("done, " + std::to_string(rep->moved)
                                 + " keys")
        != std::string::npos);
  CHECK(log[log.size() - 2].find("from layout 2 to 3") != std::string::npos);
  CHECK(log.back().find("done, 4 accounts") != std::string::npos);
  auto& kv = s.old;
  // Messages, members, receipts, watermark, sweep mark, idempotency.
  auto msgs = store::fetch_messages(kv, 3, 0, 100);
  REQUIRE(msgs);
  REQUIRE(msgs->size() == 5);
  CHECK(msgs->back().payload == "hello 5 in 3");
  auto snap = store::load_conversation(kv, 4);
  REQUIRE(snap);
  CHECK(snap->exists);
  CHECK(snap->head == 6);
  CHECK(snap->dispatched == 4);
  CHECK(snap->swept == 1);
  CHECK(snap->name == "group 4");
  CHECK(snap->members.size() == 2);
  CHECK(snap->receipts.size() == 2);
  auto hit = store::lookup_idempotency(kv, 3, 13, 1, "cm-3-1");
  REQUIRE(hit);
  CHECK(hit->found);
  CHECK(hit->seq == 1);
  // Memberships, inbox.
  auto convs = store::user_conversations(kv, 11);
  REQUIRE(convs);
  CHECK(*convs == std::vector<conversation_id>{1, 4, 5});
  auto users = store::users_with_conversations(kv);
  REQUIRE(users);
  CHECK(users->size() == 4);
  auto inbox = store::list_inbox(kv, 11);
  REQUIRE(inbox);
  CHECK(inbox->size() == 3);
  auto entry = store::load_inbox_entry(kv, 12, 2);
  REQUIRE(entry);
  REQUIRE(*entry);
  CHECK((*entry)->pinned);
  // Accounts, devices, tokens, cursors, counters.
  auto acct = store::find_account(kv, "user12");
  REQUIRE(acct);
  REQUIRE(*acct);
  CHECK((*acct)->user == 12);
  CHECK((*acct)->password_hash == "$argon2id$user12");
  CHECK((*acct)->created_at_ms == 112);
  auto devs = store::list_devices(kv, 12);
  REQUIRE(devs);
  CHECK(devs->size() == 2);
  CHECK(store::last_device_id(kv, 12) == device_id{2});
  auto dev = store::find_device(kv, 13, 2);
  REQUIRE(dev);
  REQUIRE(*dev);
  CHECK((*dev)->token_hash == test::token_hash_of(13, 2));
  auto tok = kv.get(keys::token(test::token_hash_of(13, 2)));
  REQUIRE(tok);
  REQUIRE(*tok);
  store::v1::TokenRecord tr;
  REQUIRE(tr.ParseFromString(**tok));
  CHECK(tr.user_id() == 13);
  auto cur = kv.get(keys::delivered(11, 1, 5));
  REQUIRE(cur);
  CHECK(*cur == std::optional<std::string>{be(1)});
  auto counter = kv.get(keys::counter("user"));
  REQUIRE(counter);
  REQUIRE(*counter);
  auto limit = store::ack_limit(kv, 11, 4);
  REQUIRE(limit);
  CHECK(*limit == 6);
  auto undispatched = store::undispatched_conversations(kv);
  REQUIRE(undispatched);
  CHECK(undispatched->size() == 6); // watermark c < head c + 2
}

TEST_CASE("migrating again is a no-op") {
  stores s;
  REQUIRE(store::settle_layout(s.old, small_chunks(nullptr)));
  auto writes = s.old.writes();
  auto again = store::settle_layout(s.old, small_chunks(nullptr));
  REQUIRE(again);
  CHECK(again->found == keys::layout_version);
  CHECK(again->moved == 0);
  CHECK(s.old.writes() == writes);
  auto direct = store::migrate_v1_to_v2(s.old, small_chunks(nullptr));
  REQUIRE(direct);
  CHECK(direct->moved == 0);
  CHECK(dump(s.old) == s.expected);
}

TEST_CASE("a crash after any chunk leaves each record in one layout, and a "
          "re-run ends identical") {
  stores probe;
  auto chunks = store::settle_layout(probe.old, small_chunks(nullptr))->chunks;
  REQUIRE(chunks > 3);
  // k chunks written, then the power fails (the next write is refused,
  // then unsynced writes are lost); k == chunks: only the version is lost.
  for (uint64_t k : {uint64_t{0}, uint64_t{1}, uint64_t{3}, chunks}) {
    CAPTURE(k);
    stores s;
    uint64_t n = 0;
    s.old.fail_write = [&](const write_batch&) { return n++ >= k; };
    auto rep = store::settle_layout(s.old, small_chunks(nullptr));
    REQUIRE_FALSE(rep);
    CHECK(is(rep.error(), errc::storage_failed));
    s.old.fail_write = nullptr;
    CHECK(s.old.lose_unsynced() == 0); // every chunk was synced
    CHECK(moved_keys(s.old) == std::min<uint64_t>(k * 7, s.expected.size() - 1));
    CHECK(layout_of(s.old) == 0);
    auto now = dump(s.old);
    for (auto& [key, value] : dump(s.ref)) {
      if (!keys::slot_of_key(key))
        continue;
      auto in_2 = now.count(key);
      auto in_1 = now.count(key.substr(keys::tag_pos));
      CHECK(in_1 + in_2 == 1);
    }
    auto again = store::settle_layout(s.old, small_chunks(nullptr));
    REQUIRE(again);
    uint64_t total = dump(s.ref).size(); // layout-1 keys to move
    CHECK(again->moved == total - std::min<uint64_t>(k * 7, total));
    CHECK(dump(s.old) == s.expected);
  }
}

TEST_CASE("a key whose owner cannot be read stops the migration") {
  stores s;
  write_batch bad;
  bad.put("m"s + be(3) + "\x01\x02\x03\x04\x05"s, "truncated"); // 14 bytes
  REQUIRE_FALSE(s.old.write(bad, true));
  auto rep = store::settle_layout(s.old, small_chunks(nullptr));
  REQUIRE_FALSE(rep);
  CHECK(is(rep.error(), errc::storage_corrupt));
  auto text = to_string(rep.error());
  CAPTURE(text);
  CHECK(text.find("table 'm' (messages) keys are 17 bytes, this one is 14")
        != std::string::npos);
  CHECK(text.find("nothing was dropped") != std::string::npos);
  // Nothing dropped: the bad key is still there, the version is not.
  CHECK(dump(s.old).count("m"s + be(3) + "\x01\x02\x03\x04\x05"s) == 1);
  CHECK(layout_of(s.old) == 0);
  // A key of no table, too.
  memory_backend stray;
  write_batch b;
  b.put("Aardvark", "x");
  REQUIRE_FALSE(stray.write(b, true));
  auto r2 = store::settle_layout(stray, {});
  REQUIRE_FALSE(r2);
  CHECK(to_string(r2.error()).find("no layout-1 table has tag 'A'")
        != std::string::npos);
}

TEST_CASE("a fresh store gets the current layout, and a newer one is refused") {
  memory_backend fresh;
  auto rep = store::settle_layout(fresh, {});
  REQUIRE(rep);
  CHECK(rep->found == 0);
  CHECK(layout_of(fresh) == keys::layout_version);
  // Meta keys alone are no data.
  memory_backend meta_only;
  write_batch m;
  m.put(keys::meta("partitions"), be(64));
  REQUIRE_FALSE(meta_only.write(m, true));
  REQUIRE(store::settle_layout(meta_only, {}));
  CHECK(store::settle_layout(meta_only, {})->found == keys::layout_version);
  // A layout this binary does not know.
  memory_backend newer;
  write_batch v;
  v.put(keys::meta("layout"), be(99));
  REQUIRE_FALSE(newer.write(v, true));
  auto refused = store::settle_layout(newer, {});
  REQUIRE_FALSE(refused);
  CHECK(is(refused.error(), errc::conflict));
  CHECK(to_string(refused.error()).find("key layout is version 99; this "
                                        "binary supports layouts up to 3")
        != std::string::npos);
  // A broken version record.
  memory_backend broken;
  write_batch x;
  x.put(keys::meta("layout"), "abc");
  REQUIRE_FALSE(broken.write(x, true));
  CHECK(is(store::settle_layout(broken, {}).error(), errc::storage_corrupt));
}
