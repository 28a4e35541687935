// An operator's inbox rebuild of one user (rebuild_atom, user, all: what
// `parleyctl inbox rebuild` asks of a serving node) under the test
// coordinator: the rebuilt rows hold after the next live events. The inbox
// keeps two copies of a row: the stored one (the user's side) and the
// conversation side's cache, from which the next event's row is made. A
// rebuild that repaired only the stored row would see its repair undone
// by the next message (+1 on the cache's wrong count, a newer head, so it
// wins); it recomputes the cached rows of the user from the log first.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/conversation.hpp"
#include "actors/inbox.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;

namespace {

delivery_actor::behavior_type no_delivery(delivery_actor::pointer) {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

struct rebuild_fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  inbox_supervisor_actor inbox;
  conversation_actor conv;
  int64_t now_ms = 1'700'000'000'000;
  int sent = 0;

  rebuild_fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
    reader = sys->spawn(store_reader_impl, std::shared_ptr<kv_backend>(disk),
                        uint64_t{50});
    delivery = sys->spawn(no_delivery);
    inbox = sys->spawn(inbox_supervisor_impl, std::shared_ptr<kv_backend>(disk),
                       writer, false, false, caf::timespan{0},
                       caf::timespan{0}, std::shared_ptr<node_metrics>{});
    conversation_deps deps{writer,
                           reader,
                           delivery,
                           [this] { return now_ms; },
                           conversation_limits{},
                           nullptr,
                           caf::actor_cast<delivery_actor>(inbox)};
    conv = sys->spawn(conversation_impl, conversation_id{1}, deps);
    sched->run();
    for (user_id u : {1, 2})
      REQUIRE(ask<sequence>(conv, caf::join_atom::value, u));
  }

  ~rebuild_fixture() {
    for (auto hdl : {caf::actor_cast<caf::actor>(conv),
                     caf::actor_cast<caf::actor>(inbox),
                     caf::actor_cast<caf::actor>(delivery),
                     caf::actor_cast<caf::actor>(reader),
                     caf::actor_cast<caf::actor>(writer)})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
  }

  template <class T, class Handle, class... Ts>
  std::optional<T> ask(Handle hdl, Ts... args) {
    auto out = std::make_shared<std::optional<T>>();
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, caf::infinite, args...)
        .then([=](T& x) { *out = x; }, [](caf::error&) {});
    });
    sched->run();
    return *out;
  }

  void send_from(user_id from) {
    now_ms += 7;
    send_request req{1, from, 1, "c" + std::to_string(++sent), 1, "x"};
    REQUIRE(ask<send_result>(conv, send_atom::value, req));
    sched->run(); // the events reach the inbox, its rows are written
  }

  /// The inbox worker's state (read, not asked).
  inbox_state& worker() {
    auto* sup = caf::actor_cast<caf::abstract_actor*>(inbox);
    auto& st = dynamic_cast<caf::stateful_actor<
      inbox_supervisor_state, inbox_supervisor_actor::base>&>(*sup)
                 .state;
    REQUIRE(st.worker);
    auto* w = caf::actor_cast<caf::abstract_actor*>(st.worker);
    return dynamic_cast<
             caf::stateful_actor<inbox_state, inbox_actor::base>&>(*w)
      .state;
  }

  uint64_t stored_unread(user_id u) {
    auto e = store::load_inbox_entry(*disk, u, 1);
    REQUIRE(e);
    REQUIRE(*e);
    return (*e)->unread;
  }
};

} // namespace

TEST_CASE("sim: an operator's inbox rebuild of a user is not undone by the "
          "next message") {
  rebuild_fixture f;
  for (int i = 0; i < 3; ++i)
    f.send_from(1);
  REQUIRE(f.stored_unread(2) == 3);
  // A fault (the kind a rebuild is for) left user 2's row wrong in both
  // copies: the conversation side's cache and the store.
  auto& cached = f.worker().cache;
  auto k = std::make_pair(user_id{2}, conversation_id{1});
  REQUIRE(cached.count(k) == 1);
  cached[k].unread = 99;
  auto bad = cached[k];
  write_batch batch;
  store::add_inbox_entry(batch, 2, bad);
  REQUIRE(!f.disk->write(batch, true));
  f.worker().rows.erase(k); // the user side reads the store again
  REQUIRE(f.stored_unread(2) == 99);

  auto n = f.ask<uint64_t>(f.inbox, rebuild_atom::value, user_id{2}, true);
  REQUIRE(n);
  CHECK(*n == 1);
  CHECK(f.stored_unread(2) == 3);
  // The next message counts from the log's count, not the cache's 99.
  f.send_from(1);
  CHECK(f.stored_unread(2) == 4);
  CHECK(f.worker().cache[k].unread == 4);
  // Its own messages never count: user 1 has none unread.
  CHECK(f.stored_unread(1) == 0);
}
