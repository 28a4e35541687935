// The inbox projection's reads by id (runtime/store/inbox_reads.hpp, issue
// 21, item 4): listing, reconciling and rebuilding a user's inbox through
// partition requests gives what the direct reads of one store give
// (list_inbox, compute_inbox_entry), entries and stale ones alike, on
// seeded data with right, stale and missing rows; and every request reads
// only records of the ids it names, in its partition (key_audit.hpp).

#include <doctest/doctest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/errors.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/sync_reads.hpp"
#include "key_audit.hpp"
#include "sync_world.hpp"

using namespace parley;
using namespace parley::sim;

namespace {

/// Partition reads on `kv`, each request recorded and audited.
store::partition_reads audited(kv_backend& kv, uint32_t partitions,
                               key_audit& audit) {
  store::partition_reads r;
  r.partitions = partitions;
  r.convs = [&kv, &audit](const conv_reads& x) {
    recording_kv rec{kv};
    auto out = store::answer_conv_reads(rec, x, 50);
    std::set<std::pair<uint8_t, uint64_t>> asked;
    for (auto& q : x.queries)
      asked.emplace(id_kind_conversation, q.conv);
    audit.check(rec, x.partition, asked, "a conversation read");
    ++audit.conv_requests;
    return out;
  };
  r.users = [&kv, &audit](const user_reads& x) {
    recording_kv rec{kv};
    auto out = store::answer_user_reads(rec, x);
    audit.check(rec, x.partition, {{id_kind_user, x.user}},
                "a user's own read");
    ++audit.user_requests;
    return out;
  };
  return r;
}

std::string show(const inbox_entry& e) {
  return "{conv " + std::to_string(e.conversation) + " head "
         + std::to_string(e.head) + " read " + std::to_string(e.read)
         + " unread " + std::to_string(e.unread) + "}";
}

} // namespace

TEST_CASE("sim: the inbox read by id equals the direct read of one store") {
  uint64_t stale_seen = 0;
  uint64_t entries_seen = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng{seed};
    sync_data w{rng};
    uint32_t p = std::vector<uint32_t>{1, 3, 64}[seed % 3];
    key_audit audit;
    audit.partitions = p;
    for (auto& [c, ms] : w.convs)
      audit.who.add_conversation(c);
    for (auto u : w.users)
      audit.who.add_user(u);
    auto reads = audited(*w.disk, p, audit);
    for (auto u : w.users) {
      std::vector<inbox_entry> stale_a;
      std::vector<inbox_entry> stale_b;
      auto a = store::list_inbox_by_id(reads, u, &stale_a);
      auto b = store::list_inbox(*w.disk, u, &stale_b);
      REQUIRE(a);
      REQUIRE(b);
      REQUIRE_MESSAGE(*a == *b, "seed " << seed << " user " << u);
      REQUIRE_MESSAGE(stale_a == stale_b, "seed " << seed << " user " << u);
      stale_seen += stale_b.size();
      entries_seen += b->size();
      // A rebuild counts every entry from the log.
      std::vector<inbox_entry> all;
      auto r = store::list_inbox_by_id(reads, u, &all, true);
      REQUIRE(r);
      REQUIRE(all.size() == r->size());
      for (auto& e : all) {
        auto c = store::compute_inbox_entry(*w.disk, u, e.conversation);
        REQUIRE(c);
        CHECK_MESSAGE(e == *c, "seed " << seed << ": " << show(e) << " vs "
                                       << show(*c));
        auto one = store::compute_inbox_entry_by_id(reads, u, e.conversation);
        REQUIRE(one);
        CHECK(*one == *c);
      }
      // Not a member: forbidden, as compute_inbox_entry says.
      auto none = store::compute_inbox_entry_by_id(reads, u, 99);
      CHECK(is(none.error(), errc::forbidden));
      CHECK(is(store::compute_inbox_entry(*w.disk, u, 99).error(),
               errc::forbidden));
    }
    for (auto& problem : audit.problems)
      FAIL_CHECK("seed " << seed << ": " << problem);
    CHECK(audit.conv_requests > 0);
  }
  // The seeds reach stale and missing rows (they are recounted).
  CHECK(stale_seen > 50);
  CHECK(entries_seen > 500);
}
