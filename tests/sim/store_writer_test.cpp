// The store writer under the test coordinator: group commit, all-or-nothing
// failure of a batch, fencing of a failed writer's later commits, and loads
// that see everything committed before them.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "runtime/core/errors.hpp"
#include "actors/store_writer.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;

namespace {

struct fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  // writer id -> answers in arrival order (sync number, or 0 for an error)
  std::map<uint64_t, std::vector<uint64_t>> answers;
  std::vector<caf::error> errors;

  fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
  }

  ~fixture() {
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Spawns a requester that commits one message of conversation `conv`.
  void commit(uint64_t conv, uint64_t epoch, sequence seq) {
    write_batch b;
    stored_message m;
    m.conversation = conv;
    m.seq = seq;
    m.client_message_id = "m" + std::to_string(seq);
    store::add_message(b, m);
    auto w = writer;
    auto* self = this;
    sys->spawn([=](caf::event_based_actor* a) {
      a->request(w, caf::infinite, commit_atom::value, conv, epoch, b)
        .then([=](uint64_t sync) { self->answers[conv].push_back(sync); },
              [=](caf::error& err) {
                self->answers[conv].push_back(0);
                self->errors.push_back(err);
              });
    });
  }

  sequence head(uint64_t conv) {
    return store::load_conversation(*disk, conv)->head;
  }
};

} // namespace

TEST_CASE("sim: commits pending together share one synced write") {
  fixture f;
  for (sequence s = 1; s <= 5; ++s)
    f.commit(1, 1, s);
  f.commit(2, 1, 1);
  f.sched->run();
  CHECK(f.disk->writes() == 1);
  CHECK(f.answers[1] == std::vector<uint64_t>{1, 1, 1, 1, 1});
  CHECK(f.answers[2] == std::vector<uint64_t>{1});
  CHECK(f.head(1) == 5);
}

TEST_CASE("sim: a failed write fails every requester of its batch and "
          "fences the writers in it") {
  fixture f;
  f.disk->fail_write = [](const write_batch&) { return true; };
  f.commit(1, 1, 1);
  f.commit(2, 1, 1);
  f.sched->run();
  CHECK(f.answers[1] == std::vector<uint64_t>{0});
  CHECK(f.answers[2] == std::vector<uint64_t>{0});
  REQUIRE(f.errors.size() == 2);
  CHECK(is(f.errors[0], errc::storage_failed));
  CHECK(f.head(1) == 0); // nothing acknowledged, nothing written
  f.disk->fail_write = nullptr;
  // Writer 1 still in epoch 1: refused without a write (its seq 2 must not
  // land after the hole at 1).
  f.commit(1, 1, 2);
  f.sched->run();
  CHECK(f.answers[1] == std::vector<uint64_t>{0, 0});
  CHECK(is(f.errors.back(), errc::storage_fenced));
  CHECK(f.head(1) == 0);
  // Epoch 2 (after the writer rolled back) goes through and lifts the fence.
  f.commit(1, 2, 1);
  f.sched->run();
  CHECK(f.answers[1].back() != 0);
  CHECK(f.head(1) == 1);
  // Writer 2 was fenced too, independently of writer 1.
  f.commit(2, 1, 1);
  f.sched->run();
  CHECK(f.answers[2].back() == 0);
}

TEST_CASE("sim: a load writes what is pending first and lifts the fence") {
  fixture f;
  f.commit(3, 1, 1);
  f.commit(3, 1, 2);
  conversation_snapshot snap;
  auto w = f.writer;
  // The load is queued behind the two commits: it must see both.
  f.sys->spawn([=, &snap](caf::event_based_actor* a) {
    a->request(w, caf::infinite, load_atom::value, conversation_id{3})
      .then([&](conversation_snapshot& s) { snap = s; });
  });
  f.sched->run();
  CHECK(snap.head == 2);
  // Fence writer 3, then load: a new incarnation starts unfenced.
  f.disk->fail_write = [](const write_batch&) { return true; };
  f.commit(3, 1, 3);
  f.sched->run();
  f.disk->fail_write = nullptr;
  f.sys->spawn([=, &snap](caf::event_based_actor* a) {
    a->request(w, caf::infinite, load_atom::value, conversation_id{3})
      .then([&](conversation_snapshot& s) { snap = s; });
  });
  f.sched->run();
  f.commit(3, 1, 3);
  f.sched->run();
  CHECK(f.answers[3].back() != 0);
  CHECK(f.head(3) == 3);
}

TEST_CASE("sim: max-merged cursors never move backwards") {
  fixture f;
  auto key = keys::delivered(1, 2, 3);
  auto cursor = [&] {
    auto v = f.disk->get(key);
    REQUIRE(v);
    return *v ? keys::read_u64(**v, 0).value_or(0) : 0;
  };
  auto put = [&](std::vector<uint64_t> values) {
    write_batch b;
    for (auto v : values) {
      std::string bytes;
      keys::append_u64(bytes, v);
      b.max_u64(key, bytes);
    }
    auto w = f.writer;
    f.sys->spawn([=](caf::event_based_actor* a) {
      a->request(w, caf::infinite, commit_atom::value, uint64_t{77},
                 uint64_t{1}, b)
        .then([](uint64_t) {}, [](caf::error&) {});
    });
    f.sched->run();
  };
  put({5});
  CHECK(cursor() == 5);
  put({3}); // an older ack arriving late
  CHECK(cursor() == 5);
  put({4, 9, 6}); // a burst in one batch
  CHECK(cursor() == 9);
  put({10});
  CHECK(cursor() == 10);
}

namespace {

/// A lazy put (no sync, no answer) of conversation `conv`'s watermark.
void lazy_watermark(fixture& f, uint64_t conv, sequence dispatched) {
  write_batch b;
  store::add_watermark(b, conv, dispatched);
  caf::anon_send(f.writer, caf::put_atom::value, b);
}

writer_stats stats_of(fixture& f) {
  writer_stats out;
  auto w = f.writer;
  f.sys->spawn([w, &out](caf::event_based_actor* a) {
    a->request(w, caf::infinite, stats_atom::value)
      .then([&out](writer_stats s) { out = s; });
  });
  f.sched->run();
  return out;
}

sequence dispatched(fixture& f, uint64_t conv) {
  return store::load_conversation(*f.disk, conv)->dispatched;
}

} // namespace

TEST_CASE("sim: a lazy put is written without a sync of its own, rides "
          "along with a commit, and is retried after a failed write") {
  fixture f;
  // Alone: written once the mailbox is drained, unsynced.
  lazy_watermark(f, 1, 3);
  f.sched->run();
  CHECK(f.disk->writes() == 1);
  CHECK(dispatched(f, 1) == 3);
  CHECK(stats_of(f).syncs == 0);

  // With a commit in the same round: one synced write carries both, and the
  // commit's newer value of the same key wins over the lazy one.
  f.commit(3, 1, 1);
  {
    write_batch b;
    store::add_watermark(b, 2, 7); // as a commit's riding watermark
    auto w = f.writer;
    f.sys->spawn([w, b](caf::event_based_actor* a) {
      a->request(w, caf::infinite, commit_atom::value, uint64_t{2},
                 uint64_t{1}, b)
        .then([](uint64_t) {});
    });
  }
  lazy_watermark(f, 2, 1); // first in the writer's mailbox: the requesters
                           // above send when they first run
  f.sched->run();
  CHECK(f.disk->writes() == 2);
  CHECK(stats_of(f).syncs == 1);
  CHECK(f.answers[3] == std::vector<uint64_t>{1});
  CHECK(dispatched(f, 2) == 7);
  f.commit(3, 1, 2); // a lazy put is written once, not again with later ones
  f.sched->run();
  CHECK(dispatched(f, 2) == 7);

  // A failed write loses no lazy put: the writer retries it on its own
  // (no one waits for it) until a write succeeds.
  f.disk->fail_write = [](const write_batch&) { return true; };
  lazy_watermark(f, 4, 5);
  f.sched->run();
  CHECK(dispatched(f, 4) == 0);
  f.sched->advance_time(std::chrono::milliseconds(100)); // still failing
  f.sched->run();
  CHECK(dispatched(f, 4) == 0);
  f.disk->fail_write = nullptr;
  f.sched->advance_time(std::chrono::milliseconds(100));
  f.sched->run();
  CHECK(dispatched(f, 4) == 5);
  CHECK(f.disk->failed_writes() == 2);
}
