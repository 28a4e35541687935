// Key layout 2 -> 3 (issue 21, item 7): every account's record moves to
// 'a' user (the id's partition) and 'u' username keeps only the id, in
// synced chunks (both writes of an account in one batch); a re-run does
// nothing, a crash after any chunk leaves every account whole in one form
// and a re-run ends identical, a 'u' value that is not an account record
// stops the migration naming its key, and the store reads an account by id
// from one partition afterwards.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "layout_fixture.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/layout_migration.hpp"

using namespace parley;
using parley::test::dump;
using parley::test::kv_map;

namespace {

namespace pb = parley::store::v1;

std::string be(uint64_t x) {
  std::string s;
  keys::append_u64(s, x);
  return s;
}

/// A store of layout 2 (populated(): users 10-13, whole records under
/// 'u') and what layout 3 makes of it.
struct v2_store {
  memory_backend kv;
  kv_map expected;

  v2_store() {
    auto b = test::populated();
    b.put(keys::meta("layout"), be(2));
    REQUIRE_FALSE(kv.write(b, true));
    expected = test::as_layout_3(dump(kv));
    expected[keys::meta("layout")] = be(keys::layout_version);
  }
};

/// One account per chunk.
store::migration_options one_by_one() {
  store::migration_options o;
  o.chunk_keys = 1;
  return o;
}

/// How the account of user `u` (name "user<u>") is stored: 2 (whole record
/// under 'u', no 'a'), 3 (slim 'u' and 'a'), 0 (anything else: half).
int form_of(kv_backend& kv, user_id u) {
  auto name = kv.get(keys::account("user" + std::to_string(u)));
  auto rec = kv.get(keys::user_account(u));
  REQUIRE(name);
  REQUIRE(*name);
  REQUIRE(rec);
  pb::AccountRecord n;
  REQUIRE(n.ParseFromString(**name));
  CHECK(n.user_id() == u);
  bool slim = n.password_hash().empty() && n.created_at_ms() == 0;
  if (!slim && !*rec)
    return 2;
  if (slim && *rec)
    return 3;
  return 0;
}

} // namespace

TEST_CASE("layout 2 -> 3: every account gets its record under its id") {
  v2_store s;
  std::vector<std::string> log;
  auto opts = one_by_one();
  opts.log = [&](const std::string& line) { log.push_back(line); };
  auto rep = store::settle_layout(s.kv, opts);
  REQUIRE(rep);
  CHECK(rep->found == 2);
  CHECK(rep->moved == 0);
  CHECK(rep->accounts == 4);
  CHECK(rep->chunks == 4);
  CHECK(dump(s.kv) == s.expected);
  REQUIRE(log.size() == 2);
  CHECK(log.front().find("from layout 2 to 3") != std::string::npos);
  CHECK(log.back().find("done, 4 accounts") != std::string::npos);
  for (user_id u = 10; u <= 13; ++u) {
    CAPTURE(u);
    CHECK(form_of(s.kv, u) == 3);
    // The record is in the id's slot; the name's entry in the name's.
    CHECK(keys::slot_of_key(keys::user_account(u)) == keys::user_slot(u));
    auto acct = store::find_account_by_id(s.kv, u);
    REQUIRE(acct);
    REQUIRE(*acct);
    CHECK((*acct)->name == "user" + std::to_string(u));
    CHECK((*acct)->password_hash == "$argon2id$user" + std::to_string(u));
    CHECK((*acct)->created_at_ms == int64_t(100 + u));
    auto id = store::find_user_id(s.kv, "user" + std::to_string(u));
    REQUIRE(id);
    CHECK(*id == std::optional<user_id>{u});
  }
}

TEST_CASE("layout 2 -> 3 again is a no-op") {
  v2_store s;
  REQUIRE(store::settle_layout(s.kv, one_by_one()));
  auto writes = s.kv.writes();
  auto again = store::settle_layout(s.kv, one_by_one());
  REQUIRE(again);
  CHECK(again->found == keys::layout_version);
  CHECK(s.kv.writes() == writes);
  auto direct = store::migrate_v2_to_v3(s.kv, one_by_one());
  REQUIRE(direct);
  CHECK(direct->accounts == 0);
  CHECK(direct->chunks == 0);
  CHECK(s.kv.writes() == writes);
  CHECK(dump(s.kv) == s.expected);
}

TEST_CASE("layout 2 -> 3: a crash after 0, 1 or all chunks, then a re-run") {
  for (uint64_t k : {uint64_t{0}, uint64_t{1}, uint64_t{4}}) {
    CAPTURE(k);
    v2_store s;
    uint64_t n = 0;
    s.kv.fail_write = [&](const write_batch&) { return n++ >= k; };
    auto rep = store::settle_layout(s.kv, one_by_one());
    REQUIRE_FALSE(rep);
    CHECK(is(rep.error(), errc::storage_failed));
    s.kv.fail_write = nullptr;
    CHECK(s.kv.lose_unsynced() == 0); // every chunk was synced
    CHECK(*store::stored_layout(s.kv) == std::optional<uint64_t>{2});
    // Every account whole, in one form: the first k in layout 3.
    int migrated = 0;
    for (user_id u = 10; u <= 13; ++u) {
      auto form = form_of(s.kv, u);
      CHECK(form != 0);
      migrated += form == 3;
    }
    CHECK(migrated == int(k));
    auto again = store::settle_layout(s.kv, one_by_one());
    REQUIRE(again);
    CHECK(again->accounts == 4 - k);
    CHECK(dump(s.kv) == s.expected);
  }
}

TEST_CASE("layout 2 -> 3: a slim entry without its record gets it back") {
  // Not written by Parley, but a re-run must not leave an account without
  // its record: a slim 'u' whose 'a' is missing gets the one it can.
  v2_store s;
  REQUIRE(store::settle_layout(s.kv, one_by_one()));
  write_batch b;
  b.erase(keys::user_account(11));
  REQUIRE_FALSE(s.kv.write(b, true));
  auto rep = store::migrate_v2_to_v3(s.kv, one_by_one());
  REQUIRE(rep);
  CHECK(rep->accounts == 1);
  auto acct = store::find_account_by_id(s.kv, 11);
  REQUIRE(acct);
  REQUIRE(*acct);
  CHECK((*acct)->user == 11);
}

TEST_CASE("layout 2 -> 3: a garbage username entry stops it, naming the key") {
  v2_store s;
  // A value in the table that is not an account record.
  auto bad_key = keys::account("user115");
  write_batch b;
  b.put(bad_key, "\xff\xff\xff not a record");
  REQUIRE_FALSE(s.kv.write(b, true));
  auto rep = store::settle_layout(s.kv, one_by_one());
  REQUIRE_FALSE(rep);
  CHECK(is(rep.error(), errc::storage_corrupt));
  auto text = to_string(rep.error());
  CAPTURE(text);
  CHECK(text.find(store::key_hex(bad_key)) != std::string::npos);
  CHECK(text.find("table 'u' (usernames)") != std::string::npos);
  CHECK(text.find("nothing was dropped") != std::string::npos);
  // Nothing dropped, the version not written, every good account whole.
  CHECK(dump(s.kv).at(bad_key) == "\xff\xff\xff not a record");
  CHECK(*store::stored_layout(s.kv) == std::optional<uint64_t>{2});
  for (user_id u = 10; u <= 13; ++u)
    CHECK(form_of(s.kv, u) != 0);
  // The operator removes it: the next start finishes.
  write_batch fix;
  fix.erase(bad_key);
  REQUIRE_FALSE(s.kv.write(fix, true));
  REQUIRE(store::settle_layout(s.kv, one_by_one()));
  CHECK(dump(s.kv) == s.expected);
}

TEST_CASE("layout 3 account writes: by id, the name's entry holds the id") {
  memory_backend kv;
  constexpr uint32_t partitions = 64;
  store::account a;
  a.name = "alice";
  // An id of the name's partition, as registration picks it.
  auto p = partition_of(placement_key::username("alice"), partitions);
  a.user = *store::next_user_id(0, p, partitions);
  a.password_hash = "$argon2id$x";
  a.created_at_ms = 5;
  write_batch b;
  store::add_account(b, a, partitions);
  for (auto& op : b.ops)
    CHECK(partition_of_slot(*keys::slot_of_key(op.key), partitions) == p);
  REQUIRE_FALSE(kv.write(b, true));
  CHECK(**store::find_user_id(kv, "alice") == a.user);
  a.blocked = true;
  a.read_receipts_off = true;
  write_batch u;
  store::update_account(u, a);
  REQUIRE(u.ops.size() == 1);
  CHECK(u.ops[0].key == keys::user_account(a.user));
  REQUIRE_FALSE(kv.write(u, true));
  auto back = **store::find_account_by_id(kv, a.user);
  CHECK(back.blocked);
  CHECK(back.read_receipts_off);
  CHECK(back.password_hash == "$argon2id$x");
  CHECK(back.name == "alice");
  // The name's entry stays the id alone.
  pb::AccountRecord entry;
  REQUIRE(entry.ParseFromString(**kv.get(keys::account("alice"))));
  CHECK(entry.user_id() == a.user);
  CHECK(entry.password_hash().empty());
  CHECK_FALSE(entry.blocked());
}
