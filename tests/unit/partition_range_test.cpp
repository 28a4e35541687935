// A partition's records are one range of keys: read_partition yields, for
// each partition, exactly the records of the owners placed in it; and
// scan_table finds a table's records across every slot at a cost that
// grows with the occupied slots.

#include <doctest/doctest.h>

#include <set>
#include <string>

#include "layout_fixture.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/layout.hpp"

using namespace parley;
using parley::test::dump;

namespace {

/// The placement key of a layout-2 key's owner, read from its fields (not
/// from its slot bytes): keys.hpp's owner table.
placement_key owner_of(const std::string& k) {
  auto tag = k[keys::tag_pos];
  auto rest = std::string_view{k}.substr(keys::fields_pos);
  switch (tag) {
    case 'b': case 'c': case 'e': case 'i': case 'm': case 'o': case 's':
      return placement_key::conversation(*keys::read_u64(k, keys::fields_pos));
    case 'd': case 'v': case 'y': case 'r': case 'x': case 'f':
      return placement_key::user(*keys::read_u64(k, keys::fields_pos));
    case 'u':
      return placement_key::username(rest);
    default:
      FAIL("no owner kind for table " << tag);
      return {};
  }
}

/// The partition of a key's owner among `parts`.
uint32_t partition_of_key(const std::string& k, uint32_t parts) {
  auto tag = k[keys::tag_pos];
  auto rest = std::string_view{k}.substr(keys::fields_pos);
  if (tag == keys::tokens_tag)
    return partition_of_slot(keys::token_slot(rest), parts);
  if (tag == keys::counters_tag)
    return partition_of_slot(keys::counter_slot(rest), parts);
  return partition_of(owner_of(k), parts);
}

/// A kv_backend that counts scans (each is one seek in LevelDB).
class counting_kv : public kv_backend {
public:
  explicit counting_kv(kv_backend& kv) : kv_(kv) {
  }
  caf::error write(const write_batch& b, bool sync) override {
    return kv_.write(b, sync);
  }
  caf::expected<std::optional<std::string>> get(std::string_view k) override {
    return kv_.get(k);
  }
  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    ++scans;
    return kv_.scan(from, to, f);
  }
  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    return kv_.last(from, to);
  }
  size_t scans = 0;

private:
  kv_backend& kv_;
};

} // namespace

TEST_CASE("each partition reads out exactly its owners' records") {
  memory_backend kv;
  REQUIRE_FALSE(kv.write(test::populated(), true));
  write_batch meta;
  meta.put(keys::meta("layout"), std::string(7, '\0') + "\x02");
  REQUIRE_FALSE(kv.write(meta, true));
  auto all = dump(kv);
  for (uint32_t parts : {1u, 3u, 64u, 1000u, 65536u}) {
    CAPTURE(parts);
    std::vector<std::set<std::string>> expected(parts);
    size_t records = 0;
    for (auto& [k, v] : all)
      if (k[0] != keys::meta_tag) {
        expected[partition_of_key(k, parts)].insert(k);
        ++records;
      }
    size_t seen = 0;
    size_t nonempty = 0;
    for (uint32_t p = 0; p < parts; ++p) {
      std::set<std::string> got;
      REQUIRE_FALSE(store::read_partition(
        kv, p, parts, [&](std::string_view k, std::string_view v) {
          CHECK(all.at(std::string(k)) == v);
          got.insert(std::string(k));
          return true;
        }));
      CHECK(got == expected[p]);
      seen += got.size();
      nonempty += !got.empty();
      // The range itself: every key inside belongs, none outside does.
      auto [from, to] = store::partition_range(p, parts);
      for (auto& k : expected[p]) {
        CHECK(k >= from);
        CHECK(k < to);
      }
    }
    CHECK(seen == records); // every record once, meta keys in none
    if (parts > 1)
      CHECK(nonempty > 1); // the data really is spread
  }
  CHECK(is(store::read_partition(kv, 3, 3, [](auto, auto) { return true; }),
           errc::bad_request));
}

TEST_CASE("scan_table finds a table's records in every slot, seeking only "
          "occupied slots") {
  memory_backend kv;
  write_batch b;
  for (conversation_id c = 1; c <= 3000; ++c) {
    store::add_conversation(b, c, 1, 1);
    stored_message m;
    m.conversation = c;
    m.seq = 1;
    m.client_message_id = "x";
    store::add_message(b, m);
    store::add_member(b, c, member{c + 7, 1, 1, 0});
  }
  REQUIRE_FALSE(kv.write(b, true));
  counting_kv counted{kv};
  std::set<conversation_id> convs;
  std::set<uint16_t> slots;
  REQUIRE_FALSE(store::scan_table(
    counted, keys::conversations_tag, [&](std::string_view k, std::string_view) {
      auto c = keys::decode_conversation(k);
      REQUIRE(c);
      CHECK(convs.insert(*c).second);
      slots.insert(*keys::slot_of_key(k));
      return true;
    }));
  CHECK(convs.size() == 3000);
  CHECK(*convs.begin() == 1);
  CHECK(*convs.rbegin() == 3000);
  // At most two seeks per occupied slot (onto its table, then past it),
  // far below one per slot: members write 'y' keys in their users' slots.
  std::set<uint16_t> occupied;
  for (auto& [k, v] : dump(kv))
    occupied.insert(*keys::slot_of_key(k));
  CHECK(slots.size() > 2000);
  CHECK(occupied.size() > slots.size());
  CHECK(counted.scans <= 2 * occupied.size() + 1);
  CHECK(counted.scans < 12000);
  // Stopping early stops.
  size_t n = 0;
  REQUIRE_FALSE(store::scan_table(kv, keys::members_tag,
                                  [&](std::string_view, std::string_view) {
                                    return ++n < 10;
                                  }));
  CHECK(n == 10);
  // A table with no records: nothing, in few seeks.
  counting_kv empty_count{kv};
  REQUIRE_FALSE(store::scan_table(empty_count, keys::inbox_tag,
                                  [&](std::string_view, std::string_view) {
                                    FAIL("no inbox records");
                                    return false;
                                  }));
  CHECK(empty_count.scans <= 2 * occupied.size() + 1);
}

TEST_CASE("users_in_partition and members_in_partition list exactly the "
          "partition's users and members, seeking only occupied slots") {
  memory_backend kv;
  write_batch b;
  for (conversation_id c = 1; c <= 2000; ++c) {
    store::add_conversation(b, c, 1, 1);
    store::add_member(b, c, member{c + 7, 1, 1, 0});
    store::add_member(b, c, member{c + 5000, 1, 1, 0});
  }
  REQUIRE_FALSE(kv.write(b, true));
  std::set<uint16_t> occupied;
  for (auto& [k, v] : dump(kv))
    occupied.insert(*keys::slot_of_key(k));
  const uint32_t parts = 64;
  std::set<user_id> users_seen;
  std::set<std::pair<conversation_id, user_id>> members_seen;
  size_t scans = 0;
  for (uint32_t p = 0; p < parts; ++p) {
    CAPTURE(p);
    counting_kv counted{kv};
    auto users = store::users_in_partition(counted, p, parts);
    auto members = store::members_in_partition(counted, p, parts);
    REQUIRE(users);
    REQUIRE(members);
    scans += counted.scans;
    for (auto u : *users) {
      CHECK(partition_of(placement_key::user(u), parts) == p);
      CHECK(users_seen.insert(u).second); // each user once
    }
    for (auto& [c, u] : *members) {
      CHECK(partition_of(placement_key::conversation(c), parts) == p);
      CHECK(members_seen.insert({c, u}).second);
    }
  }
  CHECK(users_seen.size() == 4000);
  CHECK(*users_seen.begin() == 8);
  CHECK(*users_seen.rbegin() == 7000);
  CHECK(members_seen.size() == 4000);
  // Two tables, 64 partitions: a few seeks per occupied slot, not one per
  // slot (2 x 65,536).
  CHECK(scans <= 2 * (2 * occupied.size() + parts));
  CHECK(scans < 40000);
  CHECK(is(store::users_in_partition(kv, parts, parts).error(),
           errc::bad_request));
}
