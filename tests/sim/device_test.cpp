// Device actors and their registry under the test coordinator: pushes in
// order to the connection holding the device, the sending device skipped,
// unacknowledged deliveries tracked, acks coalesced into max-merged cursor
// writes and checked against membership and head, a second connection
// replacing the first, a connection that stops refreshing expiring, idle
// device actors retired, and a failed device actor closing its connection.

#include <doctest/doctest.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/device_registry.hpp"
#include "runtime/core/errors.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

/// What a fake connection was told and pushed.
struct conn_log {
  std::vector<std::string> closes;
  std::vector<std::pair<conversation_id, sequence>> got;
  std::vector<std::pair<conversation_id, sequence>> bulk;
  std::vector<receipt_event> receipts;
  std::vector<inbox_entry> inbox_updates;
  /// False: the outbound queue is full, the connection closes (as the
  /// gateway's does for a slow consumer) on its next push.
  bool accept = true;
};

/// A connection actor as the device sees it: pushes arrive as messages.
caf::behavior fake_connection(caf::event_based_actor* self,
                              std::shared_ptr<conn_log> log) {
  auto full = [self, log] {
    if (log->accept)
      return false;
    self->quit();
    return true;
  };
  return {
    [self, log](caf::close_atom, uint32_t code, const std::string& why) {
      log->closes.push_back(std::to_string(code) + " " + why);
      self->quit();
    },
    [self](caf::leave_atom) { self->quit(); },
    [log, full](deliver_atom, const stored_message& m) {
      if (!full())
        log->got.emplace_back(m.conversation, m.seq);
    },
    [log, full](fanout_atom, const stored_message& m) {
      if (!full())
        log->bulk.emplace_back(m.conversation, m.seq);
    },
    [log, full](receipt_atom, const receipt_event& ev) {
      if (!full())
        log->receipts.push_back(ev);
    },
    [log, full](caf::update_atom, const inbox_entry& e) {
      if (!full())
        log->inbox_updates.push_back(e);
    },
  };
}

stored_message msg(conversation_id conv, sequence seq, user_id from,
                   device_id dev = 1) {
  return stored_message{conv, seq, from, dev, "c" + std::to_string(seq),
                        1000, 1, "x"};
}

struct fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  store_reader_actor reader;
  device_registry_actor registry;
  device_registry_options opts;

  fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
    reader = sys->spawn(store_reader_impl, std::shared_ptr<kv_backend>(disk),
                        uint64_t{50});
    opts.idle_ttl = 60s;
    opts.device.ttl = 9s;
    registry = sys->spawn(device_registry_impl,
                          device_deps{reader, writer, nullptr, {}}, opts);
    sched->run();
  }

  ~fixture() {
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Conversation `conv` with `members` and messages 1..head on disk.
  void seed(conversation_id conv, std::vector<user_id> members,
            sequence head) {
    write_batch b;
    for (auto u : members)
      store::add_member(b, conv, member{u, 1, 1, 0});
    for (sequence s = 1; s <= head; ++s)
      store::add_message(b, msg(conv, s, members.front()));
    REQUIRE(!disk->write(b, true));
  }

  template <class T, class Handle, class... Ts>
  std::pair<std::optional<T>, caf::error> ask(Handle hdl, Ts... args) {
    auto out = std::make_shared<std::pair<std::optional<T>, caf::error>>();
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, caf::infinite, args...)
        .then([=](T& x) { out->first = x; },
              [=](caf::error& e) { out->second = e; });
    });
    sched->run();
    return *out;
  }

  struct attached {
    caf::actor conn;
    std::shared_ptr<conn_log> log = std::make_shared<conn_log>();
    device_actor device;
  };

  attached join(user_id user, device_id dev) {
    attached a;
    a.conn = sys->spawn(fake_connection, a.log);
    auto r = ask<device_actor>(registry, caf::join_atom::value, user, dev,
                               a.conn);
    REQUIRE(r.first);
    a.device = *r.first;
    return a;
  }

  void deliver(stored_message m, std::vector<user_id> to) {
    caf::anon_send(registry, deliver_atom::value, std::move(m), std::move(to));
    sched->run();
  }

  device_status status(const device_actor& d) {
    auto r = ask<device_status>(d, stats_atom::value);
    REQUIRE(r.first);
    return *r.first;
  }

  std::optional<sequence> cursor(user_id u, device_id d, conversation_id c) {
    auto v = disk->get(keys::delivered(u, d, c));
    REQUIRE(v);
    if (!*v)
      return std::nullopt;
    return keys::read_u64(**v, 0);
  }

  void advance(caf::timespan dt) {
    sched->advance_time(dt);
    sched->run();
  }
};

using pushes = std::vector<std::pair<conversation_id, sequence>>;

} // namespace

TEST_CASE("sim: a device gets its messages in order, not the ones it sent, "
          "and tracks what it has not acknowledged") {
  fixture f;
  f.seed(7, {1, 2}, 20);
  auto phone = f.join(1, 1);
  auto laptop = f.join(1, 2);
  auto peer = f.join(2, 1);
  for (sequence s = 1; s <= 5; ++s)
    f.deliver(msg(7, s, 1, 1), {1, 2}); // sent from user 1's phone
  CHECK(phone.log->got.empty());
  CHECK(laptop.log->got == pushes{{7, 1}, {7, 2}, {7, 3}, {7, 4}, {7, 5}});
  CHECK(peer.log->got == laptop.log->got);
  CHECK(f.status(peer.device).unacked == 5);
  CHECK(f.status(peer.device).pushed == 5);

  // Acks: a burst becomes few writes; the cursor is the highest, never back.
  for (sequence s : {1, 3, 2, 5, 4})
    caf::anon_send(peer.device, ack_atom::value, conversation_id{7}, s);
  f.sched->run();
  auto st = f.status(peer.device);
  CHECK(st.unacked == 0);
  CHECK(st.cursor_writes >= 1);
  CHECK(st.cursor_writes <= 2);
  CHECK(f.cursor(2, 1, 7) == sequence{5});
  auto back = f.ask<sequence>(peer.device, ack_atom::value,
                              conversation_id{7}, sequence{2});
  CHECK(back.first == sequence{2});
  CHECK(f.cursor(2, 1, 7) == sequence{5});

  // Acks past what was pushed are checked against the store: up to the head
  // is fine (the device may have synced), past it is refused.
  auto synced = f.ask<sequence>(peer.device, ack_atom::value,
                                conversation_id{7}, sequence{20});
  CHECK(synced.first == sequence{20});
  CHECK(f.cursor(2, 1, 7) == sequence{20});
  auto ahead = f.ask<sequence>(peer.device, ack_atom::value,
                               conversation_id{7}, sequence{21});
  CHECK(is(ahead.second, errc::cursor_ahead));
  CHECK(f.cursor(2, 1, 7) == sequence{20});
  // Not a member: refused, nothing written.
  f.seed(8, {3}, 4);
  auto foreign = f.ask<sequence>(peer.device, ack_atom::value,
                                 conversation_id{8}, sequence{1});
  CHECK(is(foreign.second, errc::forbidden));
  CHECK(!f.cursor(2, 1, 8));
}

TEST_CASE("sim: a second connection of a device replaces the first") {
  fixture f;
  auto first = f.join(5, 1);
  f.deliver(msg(9, 1, 6), {5});
  auto second = f.join(5, 1);
  CHECK(second.device == first.device);
  REQUIRE(first.log->closes.size() == 1);
  CHECK(first.log->closes[0] == "4006 replaced by a newer connection");
  CHECK(f.status(second.device).unacked == 0); // left to the new sync
  f.deliver(msg(9, 2, 6), {5});
  CHECK(first.log->got == pushes{{9, 1}});
  CHECK(second.log->got == pushes{{9, 2}});
  CHECK(second.log->closes.empty());
}

TEST_CASE("sim: a device without a connection gets nothing pushed, a "
          "connection that closes on a full outbound queue detaches it") {
  fixture f;
  auto a = f.join(5, 1);
  caf::anon_send(a.conn, caf::leave_atom::value); // the socket closed
  f.sched->run();
  CHECK(!f.status(a.device).connected);
  f.deliver(msg(9, 1, 6), {5});
  CHECK(a.log->got.empty());
  CHECK(f.status(a.device).pushed == 0);

  auto b = f.join(5, 1);
  b.log->accept = false;
  f.deliver(msg(9, 2, 6), {5});
  CHECK(!f.status(b.device).connected);
  b.log->accept = true;
  f.deliver(msg(9, 3, 6), {5});
  CHECK(b.log->got.empty());
}

TEST_CASE("sim: a connection that stops refreshing expires, one that "
          "refreshes stays") {
  fixture f;
  auto quiet = f.join(5, 1);
  auto alive = f.join(6, 1);
  // The live connection refreshes every 3 s (its heartbeat); 12 s pass.
  for (int i = 0; i < 4; ++i) {
    f.advance(3s);
    caf::send_as(alive.conn, alive.device, refresh_atom::value);
    // A refresh from someone else does not count.
    caf::anon_send(quiet.device, refresh_atom::value);
    f.sched->run();
  }
  f.advance(3s);
  REQUIRE(quiet.log->closes.size() == 1);
  CHECK(quiet.log->closes[0] == "4009 connection expired");
  CHECK(!f.status(quiet.device).connected);
  CHECK(alive.log->closes.empty());
  CHECK(f.status(alive.device).connected);
  f.deliver(msg(9, 1, 7), {5, 6});
  CHECK(quiet.log->got.empty());
  CHECK(alive.log->got == pushes{{9, 1}});
}

TEST_CASE("sim: idle device actors are retired, a failed one closes its "
          "connection") {
  fixture f;
  auto idle = f.join(5, 1);
  caf::anon_send(idle.conn, caf::leave_atom::value);
  f.sched->run();
  f.advance(31s);
  CHECK(f.ask<device_actor>(f.registry, caf::get_atom::value, user_id{5},
                            device_id{1})
          .first);
  f.advance(31s);
  f.advance(31s);
  CHECK(is(f.ask<device_actor>(f.registry, caf::get_atom::value, user_id{5},
                               device_id{1})
             .second,
           errc::not_found));
  // Rejoining spawns a fresh one that works.
  auto back = f.join(5, 1);
  f.deliver(msg(9, 1, 6), {5});
  CHECK(back.log->got == pushes{{9, 1}});

  // A device actor that fails: the registry survives, the connection is
  // told to reconnect, and the next join gets a new device actor.
  caf::anon_send_exit(back.device, caf::exit_reason::unhandled_exception);
  f.sched->run();
  REQUIRE(back.log->closes.size() == 1);
  CHECK(back.log->closes[0] == "4008 device state lost; reconnect and sync");
  auto again = f.join(5, 1);
  CHECK(again.device != back.device);
  f.deliver(msg(9, 2, 6), {5});
  CHECK(again.log->got == pushes{{9, 2}});
}
