// Stable fence ids (runtime/core/writer_ids.hpp) meet fences that an earlier
// incarnation of the same writer left in the store writer: a conversation's
// load lifts its receipts' fence, and a writer refused with storage_fenced
// moves past the fenced epoch on its next try (next_epoch) instead of one
// epoch a try.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/device.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;

namespace {

struct fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  store_reader_actor reader;
  std::vector<caf::actor> others;

  fixture() {
    auto kv = std::shared_ptr<kv_backend>(disk);
    writer = sys->spawn(store_writer_impl, kv, store_writer_limits{});
    reader = sys->spawn(store_reader_impl, kv, uint64_t{50});
  }

  ~fixture() {
    for (auto& a : others)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Commits one put as `writer_id` in `epoch`; the answer lands in `out`
  /// (an error or none once run).
  std::shared_ptr<std::optional<caf::error>> commit(uint64_t writer_id,
                                                    uint64_t epoch) {
    auto out = std::make_shared<std::optional<caf::error>>();
    write_batch b;
    b.put("x-test", "1");
    auto w = writer;
    sys->spawn([=](caf::event_based_actor* a) {
      a->request(w, caf::infinite, commit_atom::value, writer_id, epoch, b)
        .then([=](uint64_t) { *out = caf::error{}; },
              [=](caf::error& err) { *out = err; });
    });
    return out;
  }

  /// Fences `writer_id` at `epoch` (a failed write of it).
  void fence(uint64_t writer_id, uint64_t epoch) {
    disk->fail_write = [](const write_batch&) { return true; };
    auto r = commit(writer_id, epoch);
    sched->run();
    disk->fail_write = nullptr;
    REQUIRE(r->has_value());
    REQUIRE(is(**r, errc::storage_failed));
  }
};

} // namespace

TEST_CASE("sim: a refusal by a fence names the fenced epoch and next_epoch "
          "moves past it") {
  fixture f;
  auto id = writer_ids::device(7, 1);
  f.fence(id, 3);
  auto r = f.commit(id, 1);
  f.sched->run();
  REQUIRE(r->has_value());
  REQUIRE(is(**r, errc::storage_fenced));
  CHECK(next_epoch(**r, 1) == 4);
  // Any other failure: the next epoch.
  CHECK(next_epoch(caf::make_error(errc::storage_failed, "disk"), 5) == 6);
  r = f.commit(id, 4);
  f.sched->run();
  REQUIRE(r->has_value());
  CHECK(!**r); // written
}

TEST_CASE("sim: a conversation's load lifts the fence of its receipts") {
  fixture f;
  conversation_id conv = 9;
  f.fence(writer_ids::receipts(conv), 5);
  auto r = f.commit(writer_ids::receipts(conv), 1);
  f.sched->run();
  REQUIRE(r->has_value());
  CHECK(is(**r, errc::storage_fenced));
  // A new incarnation of the conversation loads, then writes receipts in
  // its epoch 1.
  auto w = f.writer;
  f.sys->spawn([=](caf::event_based_actor* a) {
    a->request(w, caf::infinite, load_atom::value, conv)
      .then([](conversation_snapshot&) {});
  });
  f.sched->run();
  r = f.commit(writer_ids::receipts(conv), 1);
  f.sched->run();
  REQUIRE(r->has_value());
  CHECK(!**r);
}

TEST_CASE("sim: a device actor that inherits its device's fence writes its "
          "cursor on its next try") {
  fixture f;
  // An earlier device actor of user 7's device 1 failed three writes.
  f.fence(writer_ids::device(7, 1), 3);
  auto dev = f.sys->spawn(device_impl, device_deps{f.reader, f.writer},
                          user_id{7}, device_id{1});
  f.others.push_back(caf::actor_cast<caf::actor>(dev));
  stored_message m;
  m.conversation = 5;
  m.seq = 4;
  caf::anon_send(dev, deliver_atom::value, m); // makes seq 4 ackable
  auto acked = std::make_shared<std::optional<sequence>>();
  f.sys->spawn([=](caf::event_based_actor* a) {
    a->request(dev, caf::infinite, ack_atom::value, conversation_id{5},
               sequence{4})
      .then([=](sequence s) { *acked = s; });
  });
  f.sched->run(); // the ack; its write is refused by the fence
  REQUIRE(acked->has_value());
  auto cursor = [&]() -> uint64_t {
    auto v = f.disk->get(keys::delivered(7, 1, 5));
    return v && *v ? keys::read_u64(**v, 0).value_or(0) : 0;
  };
  CHECK(cursor() == 0);
  // One retry later it is written (one epoch a try would need three).
  f.sched->advance_time(timeouts::retry);
  f.sched->run();
  CHECK(cursor() == 4);
}
