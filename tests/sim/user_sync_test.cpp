// Sync through the user actor (issue 21, item 4): users page through their
// sync by asking the directory, which routes to each user's actor; the
// actor reads nothing itself and asks partitions' readers by id. Under
// seed-picked interleavings (random_schedule.hpp: the answers of one
// step's requests come back in any order, several users' syncs at once)
// every sync's pages and errors are what a model of a complete sync says
// (sync_oracle.hpp: every visible message exactly once and in order, the
// inbox and receipts as written, the page limits). The store reader here
// records the keys each request reads: a user's own reads
// touch only that user's records (its partition), a conversation
// partition's only those of the conversations asked, every one placed in
// the partition the request names.

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <caf/binary_serializer.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/directory.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/sync_by_id.hpp"
#include "runtime/store/sync_paging.hpp"
#include "runtime/store/sync_reads.hpp"
#include "coordinated_system.hpp"
#include "key_audit.hpp"
#include "sync_oracle.hpp"
#include "sync_world.hpp"
#include "random_schedule.hpp"

using namespace parley;
using namespace parley::sim;

namespace {

using outcome = sync_outcome;

/// A client paging through `user`'s sync by asking `dir`.
void client(caf::event_based_actor* self, directory_actor dir, user_id user,
            sync_request req, std::shared_ptr<std::vector<outcome>> out) {
  self->request(dir, std::chrono::seconds(10), sync_atom::value, user, req)
    .then(
      [=](sync_page& page) {
        outcome o;
        o.page = page;
        out->push_back(o);
        if (page.continuation.empty() || out->size() >= 500)
          return;
        sync_request next;
        next.max_frame_bytes = req.max_frame_bytes;
        next.read_receipts = req.read_receipts;
        next.continuation = page.continuation;
        client(self, dir, user, next, out);
      },
      [=](caf::error& err) {
        outcome o;
        o.code = err.code();
        o.error = to_string(err);
        out->push_back(o);
      });
}

struct fixture : sim::coordinated_system {
  std::mt19937_64 rng;
  sync_data data;
  uint32_t partitions;
  std::shared_ptr<key_audit> audit = std::make_shared<key_audit>();
  store_writer_actor writer;
  store_reader_actor real_reader;
  store_reader_actor reader;
  directory_actor dir;
  sim::interleaver order{sched};
  /// What run_once compared: pages, errors, syncs of several pages, and
  /// pages with inbox entries, receipts and messages.
  std::map<std::string, uint64_t> seen;

  fixture(uint64_t seed, uint32_t p)
    : rng(seed * 0x9E3779B97F4A7C15ull + 3), data(rng), partitions(p) {
    order.randomize(seed);
    auto kv = std::shared_ptr<kv_backend>(data.disk);
    audit->partitions = p;
    for (auto& [c, ms] : data.convs)
      audit->who.add_conversation(c);
    for (auto u : data.users)
      audit->who.add_user(u);
    writer = sys->spawn(store_writer_impl, kv, store_writer_limits{});
    real_reader = sys->spawn(store_reader_impl, kv, uint64_t{50});
    reader = sys->spawn(audited_reader, real_reader, kv, audit);
    conversation_deps deps{writer, reader, delivery_actor{},
                           [] { return int64_t{1'700'000'000'000}; },
                           conversation_limits{}};
    dir = sys->spawn(placed_directory_impl, deps,
                     placement::single_node(partitions));
  }

  ~fixture() {
    for (auto hdl : {caf::actor_cast<caf::actor>(dir),
                     caf::actor_cast<caf::actor>(reader),
                     caf::actor_cast<caf::actor>(real_reader),
                     caf::actor_cast<caf::actor>(writer)})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Every syncing user pages through a sync at once; returns a
  /// description of the first difference from the model (empty: none).
  std::string run_once() {
    std::map<user_id, sync_request> firsts;
    std::map<user_id, std::shared_ptr<std::vector<outcome>>> got;
    for (auto u : data.syncing) {
      firsts[u] = data.request(u, rng);
      got[u] = std::make_shared<std::vector<outcome>>();
      sys->spawn(client, dir, u, firsts[u], got[u]);
    }
    order.run(2'000'000);
    for (auto u : data.syncing) {
      auto& have = *got[u];
      if (auto why = check_sync(data, u, firsts[u], have, 50); !why.empty())
        return "user " + std::to_string(u) + ": " + why;
      seen["multi-page syncs"] += have.size() > 1;
      for (auto& o : have) {
        if (!o.page) {
          ++seen["errors"];
          continue;
        }
        ++seen["pages"];
        seen["with inbox"] += !o.page->inbox.empty();
        seen["with receipts"] += !o.page->receipts.empty();
        seen["with messages"] += !o.page->messages.empty();
      }
    }
    return {};
  }
};

} // namespace

TEST_CASE("sim: sync through the user actor gives what a complete sync "
          "must, under randomized interleavings") {
  uint64_t first = 1;
  uint64_t seeds = 300;
  if (auto* env = std::getenv("PARLEY_USER_SYNC_SEED")) {
    first = std::strtoull(env, nullptr, 10);
    seeds = 1;
  }
  std::set<uint64_t> traces;
  uint64_t user_reqs = 0;
  uint64_t conv_reqs = 0;
  std::map<std::string, uint64_t> seen;
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    uint32_t p = std::vector<uint32_t>{1, 2, 5, 64}[seed % 4];
    fixture f(seed, p);
    auto diff = f.run_once();
    if (!diff.empty())
      FAIL("seed " << seed << " (partitions " << p << "): " << diff
                   << "\n  replay: PARLEY_USER_SYNC_SEED=" << seed
                   << " sim_tests -tc='sim: sync through the user actor*'");
    if (!f.audit->problems.empty())
      FAIL("seed " << seed << ": " << f.audit->problems.front());
    traces.insert(f.order.trace);
    for (auto& [what, n] : f.seen)
      seen[what] += n;
    user_reqs += f.audit->user_requests;
    conv_reqs += f.audit->conv_requests;
  }
  // The seeds reach different interleavings, and the reads happen.
  CHECK(traces.size() > seeds / 2);
  CHECK(user_reqs > seeds);
  CHECK(conv_reqs > seeds);
  if (seeds > 1)
    for (auto what : {"pages", "errors", "multi-page syncs", "with inbox",
                      "with receipts", "with messages"})
      CHECK_MESSAGE(seen[what] >= seeds / 20, std::string(what) << ": " << seen[what]);
  MESSAGE("compared: pages " << seen["pages"] << ", errors " << seen["errors"]
          << ", multi-page syncs " << seen["multi-page syncs"]
          << ", with receipts " << seen["with receipts"]);
}

TEST_CASE("sim: the user side reads only its partition, a conversation "
          "partition's reads only its conversations") {
  // The audit of the test above, on purpose: more partitions than
  // conversations and users, so that nearly every id has its own.
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    fixture f(seed, 64);
    CHECK_MESSAGE(f.run_once().empty(), "seed " << seed);
    for (auto& p : f.audit->problems)
      FAIL_CHECK("seed " << seed << ": " << p);
    CHECK(f.audit->conv_requests > 0);
  }
  // The audit catches a read of another id: a conversation read asked
  // for one conversation that reads a second one's records.
  std::mt19937_64 rng{5};
  sync_data w{rng};
  key_audit audit;
  audit.partitions = 1;
  for (auto& [c, ms] : w.convs)
    audit.who.add_conversation(c);
  for (auto u : w.users)
    audit.who.add_user(u);
  recording_kv rec{*w.disk};
  conv_reads r;
  for (auto& [c, ms] : w.convs) {
    conv_query q;
    q.conv = c;
    r.queries.push_back(q);
  }
  REQUIRE(store::answer_conv_reads(rec, r, 50));
  audit.check(rec, 0, {{id_kind_conversation, w.convs.begin()->first}},
              "a read");
  CHECK_FALSE(audit.problems.empty());
  // And a user read of the user's rows touches only that user's records.
  recording_kv rec2{*w.disk};
  user_reads ur;
  ur.kind = user_read_memberships;
  ur.user = 7;
  REQUIRE(store::answer_user_reads(rec2, ur));
  key_audit clean = audit;
  clean.problems.clear();
  clean.check(rec2, 0, {{id_kind_user, 7}}, "a read");
  CHECK(clean.problems.empty());
  CHECK_FALSE(rec2.keys.empty());
}

TEST_CASE("sim: a sync whose partition never answers fails retryably, not "
          "silently") {
  fixture f(11, 4);
  f.audit->drop_conv_reads = true;
  auto got = std::make_shared<std::vector<outcome>>();
  sync_request req;
  req.max_frame_bytes = store::min_server_frame_bytes(6000);
  auto client_wait = std::chrono::seconds(60);
  auto dir = f.dir;
  f.sys->spawn([=](caf::event_based_actor* self) {
    self->request(dir, client_wait, sync_atom::value, user_id{7}, req)
      .then([=](sync_page&) { got->push_back(outcome{}); },
            [=](caf::error& err) {
              outcome o;
              o.error = to_string(err);
              o.code = err == caf::sec::request_timeout ? 1 : 2;
              got->push_back(o);
            });
  });
  f.order.run(100000);
  REQUIRE(got->empty()); // waiting for the lost partition
  f.sched->advance_time(timeouts::ask + std::chrono::milliseconds(1));
  f.order.run(100000);
  REQUIRE(got->size() == 1);
  // request_timeout: UNAVAILABLE (retryable) on the wire.
  CHECK_MESSAGE(got->front().code == 1, got->front().error);
}

namespace {

/// One sync page of `user` through `f`'s directory: the page's message
/// count, or the error.
caf::expected<size_t> one_page(fixture& f, user_id user) {
  auto out = std::make_shared<std::optional<caf::expected<size_t>>>();
  auto dir = f.dir;
  sync_request req;
  req.max_frame_bytes = store::min_server_frame_bytes(6000);
  f.sys->spawn([=](caf::event_based_actor* self) {
    self->request(dir, std::chrono::seconds(600), sync_atom::value, user, req)
      .then([=](sync_page& p) { *out = p.messages.size(); },
            [=](caf::error& err) { *out = err; });
  });
  f.order.run(100000);
  REQUIRE(out->has_value());
  return std::move(**out);
}

} // namespace

TEST_CASE("sim: a user's actor is spawned on demand, retired when idle, and "
          "moves with its partition") {
  fixture f(3, 8);
  auto base = f.sys->registry().running();
  REQUIRE(one_page(f, 7));
  auto with_user = f.sys->registry().running();
  CHECK(with_user == base + 1); // user 7's actor
  REQUIRE(one_page(f, 7));
  CHECK(f.sys->registry().running() == with_user); // the same one
  // Asked within the idle period: it stays for another.
  f.sched->advance_time(std::chrono::seconds(60));
  f.order.run();
  CHECK(f.sys->registry().running() == with_user);
  // A whole idle period without a request: retired through the directory.
  f.sched->advance_time(std::chrono::seconds(60));
  f.order.run();
  CHECK(f.sys->registry().running() == base);
  // The next request spawns it again, and it answers the same.
  REQUIRE(one_page(f, 7));
  CHECK(f.sys->registry().running() == with_user);
  // A map that gives user 7's partition to node 2: its actor ends, its
  // sync answers unavailable (retryable), and nothing is spawned for it.
  auto p7 = partition_of(placement_key::user(7), 8);
  auto map = partition_map::single_node(8);
  map.map_epoch = 2;
  map.owners[p7] = 2;
  auto dir = f.dir;
  f.sys->spawn([=](caf::event_based_actor* self) {
    self->request(dir, std::chrono::seconds(600), caf::put_atom::value, map)
      .then([](uint64_t) {}, [](caf::error&) {});
  });
  f.order.run(100000);
  CHECK(f.sys->registry().running() == base);
  auto moved = one_page(f, 7);
  REQUIRE_FALSE(moved);
  CHECK(is(moved.error(), errc::unavailable));
  CHECK(f.sys->registry().running() == base);
  // A partition's reads name their partition: one naming a conversation
  // of another partition is refused (bad_request), one for the partition
  // owned by node 2 is unavailable.
  auto ask = [&](conv_reads r) {
    auto out = std::make_shared<caf::error>();
    f.sys->spawn([=](caf::event_based_actor* self) {
      self->request(dir, std::chrono::seconds(600), fetch_atom::value, r)
        .then([](conv_answers&) {}, [=](caf::error& err) { *out = err; });
    });
    f.order.run(100000);
    return *out;
  };
  auto conv = f.data.convs.begin()->first;
  auto pc = partition_of(placement_key::conversation(conv), 8);
  conv_reads wrong;
  while (wrong.partition == pc || wrong.partition == p7)
    ++wrong.partition; // a partition of this node, not the conversation's
  conv_query q;
  q.conv = conv;
  wrong.queries.push_back(q);
  CHECK(is(ask(wrong), errc::bad_request));
  conv_reads away;
  away.partition = p7;
  CHECK(is(ask(away), errc::unavailable));
}

TEST_CASE("sim: user_sync in windows of a few conversations gives what a "
          "complete sync must") {
  // The actor's window (256 conversations a step) holds every seed's
  // conversations at once; windows of 1 to 4 take the receipts and
  // messages phases through many steps, and a partition's message run is
  // cut short by the page where it would not fit. Each step's answers are
  // taken in a shuffled order; conversations without a cursor get their
  // last 1 to 60 (most logs are shorter than 50).
  std::map<std::string, uint64_t> seen;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng{seed * 7 + 1};
    sync_data w{rng};
    uint32_t p = std::vector<uint32_t>{1, 3, 64}[seed % 3];
    size_t window = 1 + rng() % 4;
    uint64_t recent = 1 + rng() % 60;
    auto reads = store::partition_reads::local(*w.disk, p, recent);
    auto shuffle = [&rng](std::vector<std::function<void()>>& answers) {
      std::shuffle(answers.begin(), answers.end(), rng);
    };
    for (auto u : w.syncing) {
      auto first = w.request(u, rng);
      std::vector<outcome> got;
      auto req = first;
      while (got.size() < 500) {
        auto page = store::sync_by_id(reads, u, req, window, shuffle);
        outcome o;
        if (!page) {
          o.code = page.error().code();
          o.error = to_string(page.error());
          got.push_back(o);
          break;
        }
        o.page = *page;
        got.push_back(o);
        if (page->continuation.empty())
          break;
        sync_request next;
        next.max_frame_bytes = first.max_frame_bytes;
        next.read_receipts = first.read_receipts;
        next.continuation = page->continuation;
        req = next;
      }
      auto why = check_sync(w, u, first, got, recent);
      CHECK_MESSAGE(why.empty(), "seed " << seed << " user " << u
                                         << " window " << window << ": "
                                         << why);
      seen["multi-page syncs"] += got.size() > 1;
      seen["errors"] += !got.back().page;
    }
  }
  CHECK(seen["multi-page syncs"] > 100);
  CHECK(seen["errors"] > 10);
}
