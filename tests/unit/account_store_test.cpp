// The account tables (runtime/store/account_store.hpp): round trips of
// accounts, devices, tokens and delivered cursors, and the on-disk form
// that existing data directories hold (the records the accounts actor
// wrote before the encoding moved into the store).

#include <doctest/doctest.h>

#include <string>

#include "parley/v1/store.pb.h"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"

using namespace parley;
using namespace std::string_literals;

namespace {

namespace pb = parley::store::v1;

store::account alice() {
  store::account a;
  a.name = "alice";
  a.user = 41;
  a.password_hash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA";
  a.created_at_ms = 1700000000123;
  a.blocked = true;
  a.read_receipts_off = true;
  return a;
}

store::device_record phone(device_id id, std::string hash) {
  store::device_record d;
  d.device = id;
  d.name = "phone-" + std::to_string(id);
  d.token_hash = std::move(hash);
  d.created_at_ms = 1700000000000 + static_cast<int64_t>(id);
  return d;
}

/// A 32-byte token hash with a zero byte inside (it is raw bytes).
std::string hash_of(char c) {
  std::string h(32, c);
  h[5] = '\0';
  return h;
}

/// alice's partition among 64 (her 'u' record and counter live there).
const uint32_t alice_p = partition_of(placement_key::username("alice"), 64);

void apply(memory_backend& kv, const write_batch& b) {
  REQUIRE_FALSE(kv.write(b, true));
}

} // namespace

TEST_CASE("account_store: an account round-trips by name and by id") {
  memory_backend kv;
  auto none = store::find_account(kv, "alice");
  REQUIRE(none);
  CHECK_FALSE(*none);
  CHECK_FALSE(*store::account_exists(kv, "alice"));
  CHECK(*store::last_user_id(kv, alice_p, 64) == 0);

  write_batch b;
  store::add_account(b, alice(), 64);
  apply(kv, b);

  CHECK(*store::account_exists(kv, "alice"));
  CHECK_FALSE(*store::account_exists(kv, "alicf"));
  CHECK(*store::last_user_id(kv, alice_p, 64) == 41);
  CHECK(*store::last_user_id(kv, (alice_p + 1) % 64, 64) == 0); // its own
  CHECK(*store::legacy_last_user_id(kv) == 0);
  for (auto found : {store::find_account(kv, "alice"),
                     store::find_account_by_id(kv, 41)}) {
    REQUIRE(found);
    REQUIRE(*found);
    auto& a = **found;
    CHECK(a.name == "alice");
    CHECK(a.user == 41);
    CHECK(a.password_hash == alice().password_hash);
    CHECK(a.created_at_ms == 1700000000123);
    CHECK(a.blocked);
    CHECK(a.read_receipts_off);
  }
  CHECK(**store::user_name(kv, 41) == "alice");
  CHECK_FALSE(*store::user_name(kv, 42));
  CHECK_FALSE(*store::find_account_by_id(kv, 42));
  CHECK_FALSE(*store::find_account(kv, "bob"));
}

TEST_CASE("account_store: update_account replaces the record only") {
  memory_backend kv;
  write_batch b;
  store::add_account(b, alice(), 64);
  apply(kv, b);
  auto a = **store::find_account(kv, "alice");
  a.blocked = false;
  a.read_receipts_off = false;
  write_batch u;
  store::update_account(u, a);
  REQUIRE(u.ops.size() == 1); // neither the name nor the counter
  apply(kv, u);
  auto back = **store::find_account_by_id(kv, 41);
  CHECK_FALSE(back.blocked);
  CHECK_FALSE(back.read_receipts_off);
  CHECK(back.password_hash == alice().password_hash);
  CHECK(*store::last_user_id(kv, alice_p, 64) == 41);
}

TEST_CASE("account_store: records keep the layout existing stores hold") {
  // What the accounts actor wrote before the encoding moved here.
  pb::AccountRecord old_acct;
  old_acct.set_user_id(41);
  old_acct.set_password_hash(alice().password_hash);
  old_acct.set_created_at_ms(1700000000123);
  old_acct.set_blocked(true);
  old_acct.set_read_receipts_off(true);
  pb::Counter old_counter;
  old_counter.set_value(41);
  pb::DeviceRecord old_dev;
  old_dev.set_name("phone-3");
  old_dev.set_token_hash(hash_of('a'));
  old_dev.set_created_at_ms(1700000000003);
  pb::TokenRecord old_token;
  old_token.set_user_id(41);
  old_token.set_device_id(3);

  write_batch b;
  store::add_account(b, alice(), 64);
  store::add_device(b, 41, phone(3, hash_of('a')));
  REQUIRE(b.ops.size() == 6);
  // Key layout 3: the name's entry holds the id alone, the record is kept
  // under the id (the same bytes layout 2 kept under the name).
  pb::AccountRecord entry;
  entry.set_user_id(41);
  CHECK(b.ops[0].key == keys::account("alice"));
  CHECK(b.ops[0].value == entry.SerializeAsString());
  CHECK(b.ops[1].key == keys::user_account(41));
  CHECK(b.ops[1].value == old_acct.SerializeAsString());
  CHECK(b.ops[2].key == keys::user_name(41));
  CHECK(b.ops[2].value == "alice");
  // The counter and the token record moved to their partitions' keys; the
  // records are the same.
  CHECK(b.ops[3].key == store::user_counter_key(alice_p, 64));
  CHECK(b.ops[3].value == old_counter.SerializeAsString());
  CHECK(b.ops[4].key == keys::device(41, 3));
  CHECK(b.ops[4].value == old_dev.SerializeAsString());
  CHECK(b.ops[5].key == keys::token(41, hash_of('a')));
  CHECK(b.ops[5].value == old_token.SerializeAsString());
  for (auto& op : b.ops) {
    CHECK_FALSE(op.erase);
    CHECK_FALSE(op.max_u64);
  }

  // And the old records read back.
  memory_backend kv;
  write_batch old;
  old.put(keys::device(41, 3), old_dev.SerializeAsString());
  old.put(keys::token(hash_of('a')), old_token.SerializeAsString());
  apply(kv, old);
  auto dev = **store::find_device(kv, 41, 3);
  CHECK(dev.device == 3);
  CHECK(dev.name == "phone-3");
  CHECK(dev.token_hash == hash_of('a'));
  auto owner = **store::find_legacy_token(kv, hash_of('a'));
  CHECK(owner.user == 41);
  CHECK(owner.device == 3);
  CHECK_FALSE(*store::find_token(kv, 41, hash_of('a'))); // not a new one
}

TEST_CASE("account_store: a missing or corrupt record") {
  memory_backend kv;
  CHECK_FALSE(*store::find_token(kv, 41, hash_of('z')));
  CHECK_FALSE(*store::find_legacy_token(kv, hash_of('z')));
  CHECK_FALSE(*store::find_device(kv, 41, 1));
  CHECK(*store::last_device_id(kv, 41) == 0);
  CHECK(store::list_devices(kv, 41)->empty());

  write_batch b;
  b.put(keys::account("mallory"), "\xff\xff\xff"s);
  b.put(keys::token(41, hash_of('m')), "\xff\xff\xff"s);
  b.put(keys::token(hash_of('m')), "\xff\xff\xff"s);
  apply(kv, b);
  auto acct = store::find_account(kv, "mallory");
  REQUIRE_FALSE(acct);
  CHECK(is(acct.error(), errc::storage_corrupt));
  CHECK(*store::account_exists(kv, "mallory")); // taken all the same
  for (auto tok : {store::find_token(kv, 41, hash_of('m')),
                   store::find_legacy_token(kv, hash_of('m'))}) {
    REQUIRE_FALSE(tok);
    CHECK(is(tok.error(), errc::storage_corrupt));
  }
}

TEST_CASE("account_store: devices list in id order, per user") {
  memory_backend kv;
  write_batch b;
  // Written out of order, with ids that differ in a high byte (big-endian
  // keys order numerically), and neighbours that must not be listed.
  store::add_device(b, 41, phone(300, hash_of('c')));
  store::add_device(b, 41, phone(2, hash_of('b')));
  store::add_device(b, 41, phone(1, hash_of('a')));
  store::add_device(b, 40, phone(9, hash_of('x')));
  store::add_device(b, 42, phone(1, hash_of('y')));
  apply(kv, b);
  auto list = store::list_devices(kv, 41);
  REQUIRE(list);
  REQUIRE(list->size() == 3);
  CHECK((*list)[0].device == 1);
  CHECK((*list)[1].device == 2);
  CHECK((*list)[2].device == 300);
  CHECK((*list)[2].name == "phone-300");
  CHECK((*list)[2].token_hash == hash_of('c'));
  CHECK((*list)[2].created_at_ms == 1700000000300);
  CHECK(*store::last_device_id(kv, 41) == 300);
  CHECK(*store::last_device_id(kv, 40) == 9);
  CHECK(*store::last_device_id(kv, 43) == 0);
}

TEST_CASE("account_store: a revoked device keeps its record, not its token") {
  memory_backend kv;
  write_batch b;
  store::add_device(b, 41, phone(1, hash_of('a')));
  store::add_device(b, 41, phone(2, hash_of('b')));
  apply(kv, b);
  REQUIRE(*store::find_token(kv, 41, hash_of('a')));
  CHECK_FALSE(*store::find_token(kv, 42, hash_of('a'))); // not 42's

  write_batch r;
  store::revoke_device(r, 41, **store::find_device(kv, 41, 1));
  apply(kv, r);
  CHECK_FALSE(*store::find_token(kv, 41, hash_of('a')));
  auto dev = **store::find_device(kv, 41, 1);
  CHECK(dev.revoked);
  CHECK(dev.name == "phone-1");
  // The other device and its token are untouched; the id stays taken.
  CHECK((**store::find_token(kv, 41, hash_of('b'))).device == 2);
  CHECK_FALSE((**store::find_device(kv, 41, 2)).revoked);
  auto list = *store::list_devices(kv, 41);
  REQUIRE(list.size() == 2);
  CHECK(list[0].revoked);
  CHECK_FALSE(list[1].revoked);
  CHECK(*store::last_device_id(kv, 41) == 2);
}

TEST_CASE("account_store: a delivered cursor is a max-merged 8-byte value") {
  write_batch b;
  store::add_delivered_cursor(b, 41, 3, 0x0102030405060708, 0x1122);
  REQUIRE(b.ops.size() == 1);
  CHECK(b.ops[0].key == keys::delivered(41, 3, 0x0102030405060708));
  CHECK(b.ops[0].value == "\0\0\0\0\0\0\x11\x22"s);
  CHECK(b.ops[0].max_u64);
  CHECK_FALSE(b.ops[0].erase);
}
