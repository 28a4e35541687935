// A partition move's pieces on their own (runtime/store/partition_move.hpp):
// the store writer's partition fence under the test coordinator, and
// mirror_chunk's passes over a partition's range.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/store_writer.hpp"
#include "coordinated_system.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/partition_move.hpp"

using namespace parley;

namespace {

constexpr uint32_t parts = 4;

conversation_id conv_in(uint32_t p) {
  for (conversation_id id = 1;; ++id)
    if (partition_of(placement_key::conversation(id), parts) == p)
      return id;
}

partition_map map_of(uint64_t epoch, std::vector<node_id> owners) {
  return {epoch, std::move(owners)};
}

struct fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;

  fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
  }

  ~fixture() {
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// The answer to commit of message `seq` of `conv` (writer id `conv`)
  /// at `epoch`: nullopt while unanswered, else the error (none: written).
  std::shared_ptr<std::optional<caf::error>>
  commit(conversation_id conv, uint64_t epoch, sequence seq) {
    write_batch b;
    stored_message m;
    m.conversation = conv;
    m.seq = seq;
    m.client_message_id = "m" + std::to_string(seq);
    store::add_message(b, m);
    auto out = std::make_shared<std::optional<caf::error>>();
    auto w = writer;
    sys->spawn([=](caf::event_based_actor* a) {
      a->request(w, caf::infinite, commit_atom::value, conv, epoch, b)
        .then([=](uint64_t) { *out = caf::error{}; },
              [=](caf::error& err) { *out = err; });
    });
    return out;
  }

  /// The writer's answer to map `m` for node `me`: the epoch or the error.
  std::shared_ptr<caf::expected<uint64_t>> give(node_id me, partition_map m) {
    auto out = std::make_shared<caf::expected<uint64_t>>(uint64_t{0});
    auto w = writer;
    sys->spawn([=](caf::event_based_actor* a) {
      a->request(w, caf::infinite, caf::put_atom::value, me, m)
        .then([=](uint64_t e) { *out = e; },
              [=](caf::error& err) { *out = err; });
    });
    return out;
  }

  sequence head(conversation_id conv) {
    return store::load_conversation(*disk, conv)->head;
  }
};

bool ok(const std::shared_ptr<std::optional<caf::error>>& x) {
  return x->has_value() && !**x;
}

bool refused(const std::shared_ptr<std::optional<caf::error>>& x, errc code) {
  return x->has_value() && is(**x, code);
}

} // namespace

TEST_CASE("sim: a store writer refuses commits into a partition its node "
          "gave up, after writing what came before, until it gets it back") {
  fixture f;
  auto moving = conv_in(0), kept = conv_in(1), never = conv_in(2);
  // Node 1 owns partitions 0 and 1. The first map fences nothing, not even
  // partition 2 that node 1 never owned.
  auto first = f.give(1, map_of(1, {1, 1, 2, 2}));
  f.sched->run();
  CHECK(**first == 1);
  auto a1 = f.commit(moving, 1, 1), b1 = f.commit(kept, 1, 1),
       c1 = f.commit(never, 1, 1);
  // A commit sent before the map that gives partition 0 away is written
  // before the map is answered.
  auto a2 = f.commit(moving, 1, 2);
  auto given = f.give(1, map_of(2, {2, 1, 2, 2}));
  auto a3 = f.commit(moving, 1, 3), b2 = f.commit(kept, 1, 2),
       c2 = f.commit(never, 1, 2);
  f.sched->run();
  CHECK(ok(a1));
  CHECK(ok(b1));
  CHECK(ok(c1));
  CHECK(ok(a2));
  REQUIRE(*given);
  CHECK(**given == 2);
  CHECK(refused(a3, errc::unavailable));
  CHECK(retryable(errc::unavailable));
  CHECK(ok(b2));
  CHECK(ok(c2));
  CHECK(f.head(moving) == 2);
  CHECK(f.head(kept) == 2);
  // Unsynced puts into the range are dropped, others written.
  auto [lo, hi] = store::partition_range(0, parts);
  auto [lo1, hi1] = store::partition_range(1, parts);
  write_batch lazy;
  lazy.put(lo + "lazy", "x");
  lazy.put(lo1 + "lazy", "y");
  caf::anon_send(f.writer, caf::put_atom::value, lazy);
  f.sched->run();
  CHECK(!f.disk->get(lo + "lazy")->has_value());
  CHECK(f.disk->get(lo1 + "lazy")->has_value());
  // An older map is refused, the same one answered as is.
  auto older = f.give(1, map_of(1, {1, 1, 2, 2}));
  auto same = f.give(1, map_of(2, {2, 1, 2, 2}));
  f.sched->run();
  CHECK(!*older);
  CHECK(is(older->error(), errc::conflict));
  CHECK(**same == 2);
  // Still fenced; then a map that gives partition 0 back lifts the fence
  // (the refused writer moves past its epoch as after a failed write).
  auto a4 = f.commit(moving, 2, 3);
  f.sched->run();
  CHECK(refused(a4, errc::unavailable));
  auto back = f.give(1, map_of(3, {1, 1, 2, 2}));
  f.sched->run();
  auto a5 = f.commit(moving, 2, 3), a6 = f.commit(moving, 3, 3);
  f.sched->run();
  CHECK(**back == 3);
  CHECK(refused(a5, errc::storage_fenced));
  CHECK(ok(a6));
  CHECK(f.head(moving) == 3);
}

TEST_CASE("sim: mirror_chunk passes make the new side's range equal "
          "the old side's, touch nothing outside it, and write only "
          "differences") {
  memory_backend from, to;
  auto [lo, hi] = store::partition_range(1, parts);
  auto [olo, ohi] = store::partition_range(2, parts);
  write_batch a;
  for (int i = 0; i < 7; ++i)
    a.put(lo + "k" + std::to_string(i), "v" + std::to_string(i));
  a.put(olo + "other", "not moving");
  REQUIRE(!from.write(a, true));
  write_batch b;
  b.put(lo + "k3", "stale");
  b.put(lo + "zz", "gone on the old side");
  b.put(olo + "mine", "the new owner's own");
  REQUIRE(!to.write(b, true));
  auto pass = [&](size_t chunk, uint64_t& puts, uint64_t& erases) {
    auto cur = store::start_pass(1, parts);
    int chunks = 0;
    while (!cur.done) {
      auto c = store::mirror_chunk(from, to, cur, chunk);
      REQUIRE(c);
      REQUIRE(!to.write(c->batch, true));
      puts += c->puts;
      erases += c->erases;
      cur = c->after;
      REQUIRE(++chunks < 100);
    }
    return chunks;
  };
  uint64_t puts = 0, erases = 0;
  CHECK(pass(2, puts, erases) == 4); // 2+2+2+1 keys; the last reaches the end
  CHECK(puts == 7);                  // k3 differed, 6 were new
  CHECK(erases == 1);                // zz
  CHECK(*store::same_partition(from, to, 1, parts));
  CHECK(!to.get(olo + "other")->has_value());
  CHECK(to.get(olo + "mine")->has_value());
  // The tail: only what changed since.
  write_batch c;
  c.put(lo + "k1", "changed");
  c.erase(lo + "k5");
  c.put(lo + "k9", "new");
  REQUIRE(!from.write(c, true));
  puts = erases = 0;
  pass(3, puts, erases);
  CHECK(puts == 2);
  CHECK(erases == 1);
  CHECK(*store::same_partition(from, to, 1, parts));
  // An empty range is one chunk; a bad partition is refused.
  memory_backend empty;
  puts = erases = 0;
  auto c0 = store::mirror_chunk(empty, empty, store::start_pass(3, parts), 5);
  REQUIRE(c0);
  CHECK(c0->after.done);
  CHECK(c0->batch.empty());
  auto bad = store::mirror_chunk(empty, empty, {9, parts, "", false}, 5);
  CHECK(!bad);
  CHECK(is(bad.error(), errc::bad_request));
}
