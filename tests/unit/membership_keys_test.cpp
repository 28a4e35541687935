// Keys and records of membership events (issue 21, item 7;
// runtime/store/membership_store.hpp): the owed event ('g') sits in the
// conversation's slot, the index row ('y') and its version ('h') in the
// user's; the conversation's side of a change and the user's side are
// each one partition.

#include <doctest/doctest.h>

#include <set>

#include "runtime/core/placement.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/membership_store.hpp"
#include "runtime/store/memory_backend.hpp"

using namespace parley;

namespace {

std::set<uint32_t> partitions_of(const write_batch& b, uint32_t n) {
  std::set<uint32_t> ps;
  for (auto& op : b.ops) {
    ps.insert(partition_of_slot(*keys::slot_of_key(op.key), n));
    if (!op.version_key.empty())
      ps.insert(partition_of_slot(*keys::slot_of_key(op.version_key), n));
  }
  return ps;
}

} // namespace

TEST_CASE("membership event keys: 'g' in the conversation's slot, 'h' in "
          "the user's, decoded back") {
  conversation_id conv = 0x1234567890ull;
  user_id user = 77;
  auto g = keys::member_event(conv, user, 42);
  CHECK(keys::table_of(g) == keys::member_events_tag);
  CHECK(keys::slot_of_key(g) == keys::conversation_slot(conv));
  auto ids = keys::decode_member_event(g);
  REQUIRE(ids);
  CHECK(ids->first == user);
  CHECK(ids->second == 42u);
  CHECK_FALSE(keys::decode_member_event(keys::member(conv, user)));
  auto h = keys::member_version(user, conv);
  CHECK(keys::table_of(h) == keys::member_versions_tag);
  CHECK(keys::slot_of_key(h) == keys::user_slot(user));
  // Versions order: a later version sorts after an earlier one.
  CHECK(keys::member_event(conv, user, 9) < keys::member_event(conv, user, 10));
  // The tags are new: no other table's.
  for (char t : {keys::members_tag, keys::conversations_tag, keys::sweep_tag,
                 keys::idempotency_tag, keys::messages_tag, keys::outbox_tag,
                 keys::devices_tag, keys::counters_tag, keys::tokens_tag,
                 keys::accounts_tag, keys::user_names_tag,
                 keys::memberships_tag, keys::delivered_tag,
                 keys::receipts_tag, keys::inbox_tag, keys::inbox_flags_tag,
                 keys::meta_tag}) {
    CHECK(t != keys::member_events_tag);
    CHECK(t != keys::member_versions_tag);
  }
}

TEST_CASE("a membership change's two sides are each one partition, and the "
          "owed events read back in order") {
  memory_backend kv;
  for (uint32_t n : {2u, 8u, 64u}) {
    for (user_id u = 1; u < 200; ++u) {
      conversation_id conv = 1000 + u * 7;
      member m{u, 2, 5, 0};
      auto ev = store::member_event_of(conv, m, 5);
      write_batch conv_side;
      store::add_member_record(conv_side, conv, m);
      store::add_member_event(conv_side, ev);
      CHECK(partitions_of(conv_side, n).size() == 1);
      write_batch user_side;
      store::add_member_projection(user_side, ev);
      CHECK(partitions_of(user_side, n).size() == 1);
      REQUIRE(user_side.ops.size() == 1);
      CHECK(user_side.ops[0].version == 5u);
    }
  }
  conversation_id conv = 5;
  write_batch b;
  store::add_member_event(b, store::member_event_of(conv, {3, 1, 4, 0}, 4));
  store::add_member_event(b, store::member_event_of(conv, {3, 1, 4, 9}, 8));
  store::add_member_event(b, store::member_event_of(conv, {2, 2, 1, 0}, 1));
  store::add_member_event(b, store::member_event_of(6, {2, 2, 1, 0}, 1));
  REQUIRE_FALSE(kv.write(b, true));
  auto owed = store::member_events(kv, conv);
  REQUIRE(owed);
  REQUIRE(owed->size() == 3);
  CHECK((*owed)[0] == membership_event{5, 2, 1, 2, 1, 0});
  CHECK((*owed)[1] == membership_event{5, 3, 4, 1, 4, 0});
  CHECK((*owed)[2] == membership_event{5, 3, 8, 1, 4, 9});
  auto convs = store::conversations_owing_member_events(kv);
  REQUIRE(convs);
  CHECK(*convs == std::vector<conversation_id>{5, 6});
  write_batch e;
  store::erase_member_event(e, (*owed)[1]);
  REQUIRE_FALSE(kv.write(e, true));
  CHECK(store::member_events(kv, conv)->size() == 2);
}
