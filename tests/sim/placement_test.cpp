// The directory as the placement router under the test coordinator: a
// conversation whose partition another node owns answers UNAVAILABLE and is
// never spawned here, locally owned ones are spawned; routes of
// conversations and users follow the map; a newer map that moves a
// partition away stops handing out its conversation at once and stops the
// actor once its in-flight send is answered; older maps are refused. The
// device registry serves only users of partitions this node owns, and a
// newer map that moves a user away stops the user's device actors and
// closes their connections.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/device_registry.hpp"
#include "actors/directory.hpp"
#include "actors/disconnect.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"
#include "group_fixture.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t parts = 8;
constexpr node_id here = 1;
constexpr node_id there = 2;

/// The first conversation id above `after` whose partition is even (owned
/// here by `split_map`) or odd (owned there).
conversation_id conv_on(bool even, conversation_id after = 0) {
  for (conversation_id c = after + 1;; ++c)
    if ((partition_of(placement_key::conversation(c), parts) % 2 == 0)
        == even)
      return c;
}

/// The first user id above `after` whose partition is even (here) or odd.
user_id user_on(bool even, user_id after = 0) {
  for (user_id u = after + 1;; ++u)
    if ((partition_of(placement_key::user(u), parts) % 2 == 0) == even)
      return u;
}

/// Even partitions here, odd ones there.
partition_map split_map(uint64_t epoch) {
  partition_map m;
  m.map_epoch = epoch;
  for (uint32_t p = 0; p < parts; ++p)
    m.owners.push_back(p % 2 == 0 ? here : there);
  return m;
}

template <class T>
struct reply {
  std::optional<T> ok;
  caf::error err;
};

struct fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  std::shared_ptr<std::vector<group_sim::delivered>> out
    = std::make_shared<std::vector<group_sim::delivered>>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  directory_actor dir;

  fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
    reader = sys->spawn(store_reader_impl, std::shared_ptr<kv_backend>(disk),
                        uint64_t{50});
    delivery = sys->spawn(
      group_sim::recorder, out,
      std::make_shared<std::vector<group_sim::receipt_pushed>>());
    conversation_deps deps{writer, reader, delivery,
                           [] { return int64_t{1'700'000'000'000}; },
                           conversation_limits{}, nullptr};
    dir = sys->spawn(placed_directory_impl, deps,
                     placement{here, split_map(1)});
    sched->run();
  }

  ~fixture() {
    for (auto hdl : {caf::actor_cast<caf::actor>(dir),
                     caf::actor_cast<caf::actor>(delivery),
                     caf::actor_cast<caf::actor>(reader),
                     caf::actor_cast<caf::actor>(writer)})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
  }

  directory_state& state() {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(dir);
    return dynamic_cast<caf::stateful_actor<directory_state,
                                            directory_actor::base>&>(*ptr)
      .state;
  }

  /// Sends a request; the answer lands in the slot when the scheduler runs.
  template <class T, class Handle, class... Ts>
  std::shared_ptr<reply<T>> fire(Handle hdl, Ts... args) {
    auto slot = std::make_shared<reply<T>>();
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, 10s, args...)
        .then([=](T& x) { slot->ok = std::move(x); },
              [=](caf::error& e) { slot->err = e; });
    });
    return slot;
  }

  template <class T, class Handle, class... Ts>
  reply<T> ask(Handle hdl, Ts... args) {
    auto slot = fire<T>(hdl, args...);
    sched->run();
    return *slot;
  }

  reply<conversation_actor> lookup(conversation_id conv) {
    return ask<conversation_actor>(dir, caf::get_atom::value, conv);
  }

  /// Creates direct conversation `conv` between two users of partitions
  /// this node owns (a join is answered once the user's membership row is
  /// written by its partition's owner; this fixture has no peer node).
  void create(conversation_actor conv) {
    auto first = user_on(true);
    REQUIRE(ask<sequence>(conv, caf::join_atom::value, first).ok);
    REQUIRE(ask<sequence>(conv, caf::join_atom::value, user_on(true, first))
              .ok);
  }
};

/// A connection that records the closes it is told and drops the rest.
caf::behavior recording_connection(caf::event_based_actor* self,
                                   std::shared_ptr<std::vector<uint32_t>> closes) {
  self->set_default_handler(caf::drop);
  return {
    [self, closes](caf::close_atom, uint32_t code, const std::string&) {
      closes->push_back(code);
      self->quit();
    },
  };
}

send_request text(conversation_id conv, std::string cmid) {
  return send_request{conv, user_on(true), 1, std::move(cmid), 1, "hello"};
}

} // namespace

TEST_CASE("sim: the directory spawns only conversations of partitions this "
          "node owns, the others answer UNAVAILABLE") {
  fixture f;
  auto mine = conv_on(true);
  auto theirs = conv_on(false);
  auto r = f.lookup(theirs);
  REQUIRE_FALSE(r.ok);
  CHECK(is(r.err, errc::unavailable));
  CHECK(retryable(errc::unavailable));
  CHECK(f.state().spawned == 0);
  CHECK(f.state().conversations.empty());
  // The outbox relay's restart of a conversation owned elsewhere is
  // ignored too.
  caf::anon_send(f.dir, caf::spawn_atom::value, theirs);
  f.sched->run();
  CHECK(f.state().spawned == 0);
  // A local one is spawned, once, and works.
  auto a = f.lookup(mine);
  REQUIRE(a.ok);
  CHECK(f.lookup(mine).ok == a.ok);
  CHECK(f.state().spawned == 1);
  f.create(*a.ok);
  auto sent = f.ask<send_result>(*a.ok, send_atom::value, text(mine, "m1"));
  REQUIRE(sent.ok);
  CHECK(sent.ok->server_sequence == 1);
}

TEST_CASE("sim: the directory routes conversations and users by the map") {
  fixture f;
  for (conversation_id c = 1; c <= 40; ++c) {
    auto r = f.ask<route>(f.dir, caf::get_atom::value,
                          placement_key::conversation(c));
    REQUIRE(r.ok);
    auto p = partition_of(placement_key::conversation(c), parts);
    CHECK(r.ok->partition == p);
    CHECK(r.ok->owner == (p % 2 == 0 ? here : there));
    CHECK(r.ok->local == (p % 2 == 0));
    CHECK(r.ok->map_epoch == 1);
  }
  for (user_id u = 1; u <= 40; ++u) {
    auto r = f.ask<route>(f.dir, caf::get_atom::value, placement_key::user(u));
    REQUIRE(r.ok);
    CHECK(r.ok->partition == partition_of(placement_key::user(u), parts));
    CHECK(r.ok->local == (r.ok->partition % 2 == 0));
  }
}

TEST_CASE("sim: a newer map moves a partition away: its conversation is no "
          "longer handed out and stops once its send is answered") {
  fixture f;
  auto conv = conv_on(true);
  auto a = f.lookup(conv);
  REQUIRE(a.ok);
  auto actor = *a.ok;
  f.create(actor);
  auto gone = std::make_shared<caf::error>();
  // (held: an actor nothing refers to ends)
  auto watcher = f.sys->spawn([=](caf::event_based_actor* self)
                                -> caf::behavior {
    self->monitor(actor);
    self->set_down_handler([=](caf::down_msg& dm) {
      *gone = dm.reason;
      self->quit();
    });
    return {[](caf::ok_atom) {}};
  });
  f.sched->run();
  // A send in flight when the map moves the conversation's partition away.
  auto moved = split_map(2);
  moved.owners[partition_of(placement_key::conversation(conv), parts)]
    = there;
  auto in_flight = f.fire<send_result>(actor, send_atom::value,
                                       text(conv, "late"));
  auto put = f.fire<uint64_t>(f.dir, caf::put_atom::value, moved);
  f.sched->run();
  REQUIRE(put->ok);
  CHECK(*put->ok == 2);
  // The send is answered (committed), not dropped.
  REQUIRE(in_flight->ok);
  CHECK(in_flight->ok->server_sequence == 1);
  // Lookups answer UNAVAILABLE at once; nothing new is spawned.
  auto spawned = f.state().spawned;
  CHECK(is(f.lookup(conv).err, errc::unavailable));
  CHECK(f.state().spawned == spawned);
  CHECK(f.state().conversations.count(conv) == 0);
  // It waited for the send: asked more than once, stopped only after.
  CHECK_FALSE(*gone);
  REQUIRE(f.state().leaving.size() == 1);
  CHECK(f.state().leaving.begin()->second.polls == 1);
  f.sched->advance_time(f.state().drain_poll);
  f.sched->run();
  CHECK(*gone == caf::exit_reason::user_shutdown);
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
  CHECK(f.state().leaving.empty());
  // Shutdown lists no conversation of it any more.
  auto listed = f.ask<std::vector<conversation_actor>>(f.dir,
                                                       caf::get_atom::value);
  REQUIRE(listed.ok);
  CHECK(listed.ok->empty());
}

TEST_CASE("sim: the directory refuses a map that is not newer, or of "
          "another partition count, and keeps routing by its own") {
  fixture f;
  auto theirs = conv_on(false);
  auto all_here = partition_map::single_node(parts, here);
  all_here.map_epoch = 1; // same epoch as the current one
  CHECK(is(f.ask<uint64_t>(f.dir, caf::put_atom::value, all_here).err,
           errc::conflict));
  auto reshaped = partition_map::single_node(parts * 2, here);
  reshaped.map_epoch = 5;
  CHECK(is(f.ask<uint64_t>(f.dir, caf::put_atom::value, reshaped).err,
           errc::bad_request));
  CHECK(is(f.lookup(theirs).err, errc::unavailable));
  // A newer map that gives the partition to this node: spawned here now.
  all_here.map_epoch = 3;
  auto ok = f.ask<uint64_t>(f.dir, caf::put_atom::value, all_here);
  REQUIRE(ok.ok);
  CHECK(*ok.ok == 3);
  CHECK(f.lookup(theirs).ok);
  // And an older one after it: refused.
  CHECK(is(f.ask<uint64_t>(f.dir, caf::put_atom::value, split_map(2)).err,
           errc::conflict));
  CHECK(f.lookup(theirs).ok);
}

TEST_CASE("sim: the device registry serves only users of partitions this "
          "node owns, and lets a user that moved away go") {
  fixture f;
  device_registry_options opts;
  opts.where = placement{here, split_map(1)};
  auto registry = f.sys->spawn(device_registry_impl,
                               device_deps{f.reader, f.writer, nullptr, {}},
                               opts);
  f.sched->run();
  auto state = [&]() -> device_registry_state& {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(registry);
    return dynamic_cast<caf::stateful_actor<
      device_registry_state, device_registry_actor::base>&>(*ptr)
      .state;
  };
  auto closes = std::make_shared<std::vector<uint32_t>>();
  auto conn = f.sys->spawn(recording_connection, closes);
  auto local = user_on(true);
  auto remote = user_on(false);
  // Another node's user: refused, nothing spawned.
  auto r = f.ask<device_actor>(registry, caf::join_atom::value, remote,
                               device_id{1}, conn);
  REQUIRE_FALSE(r.ok);
  CHECK(is(r.err, errc::unavailable));
  CHECK(is(f.ask<device_actor>(registry, caf::get_atom::value, remote,
                               device_id{1})
             .err,
           errc::unavailable));
  CHECK(state().devices.empty());
  // A local one: attached.
  auto d = f.ask<device_actor>(registry, caf::join_atom::value, local,
                               device_id{1}, conn);
  REQUIRE(d.ok);
  CHECK(f.ask<device_actor>(registry, caf::get_atom::value, local,
                            device_id{1})
          .ok
        == d.ok);
  // The user's partition moves away: its device actor stops, its
  // connection is closed (reconnect and sync), lookups answer unavailable.
  auto moved = split_map(2);
  moved.owners[partition_of(placement_key::user(local), parts)] = there;
  auto put = f.ask<uint64_t>(registry, caf::put_atom::value, moved);
  REQUIRE(put.ok);
  CHECK(*put.ok == 2);
  CHECK(*closes
        == std::vector<uint32_t>{code_of(disconnect_cause::device_unavailable)});
  CHECK(state().devices.empty());
  CHECK(state().by_conn.empty());
  CHECK(f.ask<device_status>(*d.ok, stats_atom::value).err
        == caf::sec::request_receiver_down);
  CHECK(is(f.ask<device_actor>(registry, caf::get_atom::value, local,
                               device_id{1})
             .err,
           errc::unavailable));
  // An older map: refused.
  CHECK(is(f.ask<uint64_t>(registry, caf::put_atom::value, split_map(1)).err,
           errc::conflict));
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
  f.sched->run();
}
