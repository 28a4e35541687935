// Accounts placed by partition (issue 21, item 7): the username hash is
// pinned; user ids are allocated per partition so that a registration's
// records share its username's partition; counters from before that keep
// new ids above old ones; tokens name their user, and tokens from before
// that are still found.

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "parley/v1/store.pb.h"
#include "runtime/accounts/credentials.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"

using namespace parley;

namespace {

/// The partition that owns `key` (its slot prefix), among `partitions`.
uint32_t owner_of(const std::string& key, uint32_t partitions) {
  auto slot = keys::slot_of_key(key);
  REQUIRE(slot);
  return partition_of_slot(*slot, partitions);
}

/// Registers `name` as the accounts actor does: the next id of the
/// username's partition, then one batch. Returns the batch.
write_batch register_name(memory_backend& kv, const std::string& name,
                          uint32_t partitions, user_id* id) {
  auto p = partition_of(placement_key::username(name), partitions);
  auto last = store::last_user_id(kv, p, partitions);
  REQUIRE(last);
  auto next = store::next_user_id(*last, p, partitions);
  REQUIRE(next);
  store::account acct;
  acct.name = name;
  acct.user = *next;
  acct.password_hash = "h";
  write_batch b;
  store::add_account(b, acct, partitions);
  REQUIRE_FALSE(kv.write(b, true));
  *id = *next;
  return b;
}

} // namespace

TEST_CASE("usernames are placed by FNV-1a 64 of their bytes (pinned)") {
  // The published FNV-1a 64 test vectors.
  CHECK(fnv1a_64("") == 0xCBF29CE484222325ull);
  CHECK(fnv1a_64("a") == 0xAF63DC4C8601EC8Cull);
  CHECK(fnv1a_64("foobar") == 0x85944171F73967E8ull);
  static_assert(fnv1a_64("a") == 0xAF63DC4C8601EC8Cull);
  // Bytes, not characters: a high byte is not sign-extended.
  CHECK(fnv1a_64("\xff")
        == ((0xCBF29CE484222325ull ^ 0xFFull) * 0x100000001B3ull));
  auto alice = placement_key::username("alice");
  CHECK(alice.kind == id_kind_username);
  CHECK(alice.id == 0x508B2ABB65A03907ull);
  // Pinned: a username's placement never changes (kind 3 mixed in as
  // every placement_key's kind is).
  CHECK(placement_hash(alice) == 0x1D6B898C00029D42ull);
  CHECK(slot_of(alice) == 0x1D6B);
  CHECK(partition_of(alice, 64) == 7);
  CHECK(placement_hash(placement_key::username("bob"))
        == 0x1BC0867FAD996ED7ull);
  CHECK(partition_of(placement_key::username("bob"), 64) == 6);
  // Not the user kind with the same number.
  CHECK(placement_hash(alice)
        != placement_hash(placement_key::user(alice.id)));
}

TEST_CASE("next_user_id: the smallest id above the counter in the "
          "partition, within its bound") {
  for (uint32_t partitions : {1u, 2u, 7u, 64u, 1000u}) {
    CAPTURE(partitions);
    uint64_t most = 0;
    for (uint32_t p = 0; p < partitions; p += 1 + partitions / 16) {
      user_id last = 0;
      for (int i = 0; i < 50; ++i) {
        auto id = store::next_user_id(last, p, partitions);
        REQUIRE(id);
        REQUIRE(*id > last);
        CHECK(partition_of(placement_key::user(*id), partitions) == p);
        // Nothing in between belongs to p: the smallest.
        for (auto x = last + 1; x < *id; ++x)
          REQUIRE(partition_of(placement_key::user(x), partitions) != p);
        most = std::max(most, *id - last);
        last = *id;
      }
    }
    CHECK(most <= store::max_id_tries(partitions));
  }
  // One partition: every number in order.
  CHECK(*store::next_user_id(0, 0, 1) == 1);
  CHECK(*store::next_user_id(41, 0, 1) == 42);
  // Past 2^31 - 1 there is nothing (direct_conversation_id's limit).
  auto full = store::next_user_id((user_id{1} << 31) - 1, 0, 1);
  REQUIRE_FALSE(full);
  CHECK(is(full.error(), errc::forbidden));
  // A partition that is not there finds nothing within the bound.
  CHECK_FALSE(store::next_user_id(0, 64, 64));
}

TEST_CASE("a registration is one batch of one partition, the username's") {
  memory_backend kv;
  std::set<user_id> ids;
  std::map<uint32_t, user_id> last_of;
  for (int i = 0; i < 300; ++i) {
    auto name = "user" + std::to_string(i);
    user_id id = 0;
    auto b = register_name(kv, name, 64, &id);
    auto p = partition_of(placement_key::username(name), 64);
    CAPTURE(name);
    REQUIRE(b.ops.size() == 4); // 'u', 'a', 'v', the counter
    for (auto& op : b.ops)
      CHECK(owner_of(op.key, 64) == p);
    CHECK(partition_of(placement_key::user(id), 64) == p);
    CHECK(ids.insert(id).second); // never a second time, in any partition
    CHECK(id > last_of[p]);       // in order within the partition
    last_of[p] = id;
    CHECK(**store::user_name(kv, id) == name);
  }
  // Ids stay dense: each partition takes about every 64th number.
  CHECK(*ids.rbegin() < 300 * 4);
  CHECK(last_of.size() > 32);
}

TEST_CASE("a store with the old global counter: new ids stay above it") {
  namespace pb = parley::store::v1;
  memory_backend kv;
  pb::Counter old;
  old.set_value(1000); // ids 1-1000 handed out before, in any partition
  write_batch b;
  b.put(keys::counter("user"), old.SerializeAsString());
  REQUIRE_FALSE(kv.write(b, true));
  CHECK(*store::legacy_last_user_id(kv) == 1000);
  for (uint32_t p = 0; p < 64; ++p)
    CHECK(*store::last_user_id(kv, p, 64) == 1000);
  user_id id = 0;
  register_name(kv, "carol", 64, &id);
  CHECK(id > 1000);
  auto carol_p = partition_of(placement_key::username("carol"), 64);
  CHECK(*store::last_user_id(kv, carol_p, 64) == id);
  CHECK(*store::last_user_id(kv, (carol_p + 1) % 64, 64) == 1000);

  // Settling gives every partition its own counter, once.
  REQUIRE_FALSE(store::settle_user_counters(kv, 64));
  for (uint32_t p = 0; p < 64; ++p) {
    auto own = kv.get(store::user_counter_key(p, 64));
    REQUIRE(own);
    REQUIRE(*own);
    CHECK(owner_of(store::user_counter_key(p, 64), 64) == p);
  }
  CHECK(*store::last_user_id(kv, carol_p, 64) == id); // not lowered
  // Without the old counter the settled ones still hold the floor.
  write_batch drop;
  drop.erase(keys::counter("user"));
  REQUIRE_FALSE(kv.write(drop, true));
  CHECK(*store::last_user_id(kv, (carol_p + 1) % 64, 64) == 1000);
  user_id dave = 0;
  register_name(kv, "dave", 64, &dave);
  CHECK(dave > 1000);
  CHECK(dave != id);

  // A store that never had the old counter gets none.
  memory_backend fresh;
  REQUIRE_FALSE(store::settle_user_counters(fresh, 64));
  CHECK(*fresh.get(store::user_counter_key(0, 64)) == std::nullopt);
}

TEST_CASE("a token names its user, and an edited prefix names no record") {
  REQUIRE(credentials::init());
  auto token = credentials::new_token(1234567);
  REQUIRE(token.size() == 8 + 43);
  CHECK(token.substr(0, 8) == "1234567.");
  CHECK(credentials::token_user(token) == uint64_t{1234567});
  CHECK(credentials::new_token(1234567) != token); // random part
  // Tokens from before the prefix: 43 characters, no '.', user 0.
  CHECK(credentials::token_user(token.substr(8)) == uint64_t{0});
  // Malformed prefixes.
  for (std::string bad : {".x", "0.x", "01.x", "1a.x", "-1.x", " 1.x",
                          "18446744073709551616.x", "123456789012345678901.x"})
    CHECK_FALSE(credentials::token_user(bad));
  CHECK(credentials::token_user("18446744073709551615.x") == UINT64_MAX);

  // Stored under its user, hashed over the whole token.
  memory_backend kv;
  store::device_record dev;
  dev.device = 3;
  dev.name = "phone";
  dev.token_hash = credentials::token_hash(token);
  write_batch b;
  store::add_device(b, 1234567, dev);
  for (auto& op : b.ops)
    CHECK(owner_of(op.key, 64)
          == partition_of(placement_key::user(1234567), 64));
  REQUIRE_FALSE(kv.write(b, true));
  auto found = store::find_token(kv, 1234567, credentials::token_hash(token));
  REQUIRE(found);
  REQUIRE(*found);
  CHECK((*found)->device == 3);
  // Another user's prefix on the same secret: another hash, another key.
  auto edited = "1234568" + token.substr(7);
  CHECK(credentials::token_user(edited) == uint64_t{1234568});
  CHECK_FALSE(*store::find_token(kv, 1234568, credentials::token_hash(edited)));
  // The right hash under the wrong user is not found either.
  CHECK_FALSE(*store::find_token(kv, 1234568, credentials::token_hash(token)));
  // Nor the bare secret as an old token.
  CHECK_FALSE(*store::find_legacy_token(
    kv, credentials::token_hash(token.substr(8))));
}
