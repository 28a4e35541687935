// The node's map keeper (actors/map_keeper.hpp), the one call for a new
// partition map: older and equal epochs change nothing; every subscriber
// gets a newer map once, in the keeper's order; a subscriber that does not
// answer fails the call retryably, those before it keep the map, and a
// repeat finishes it; the store writer learns the map at spawn. With the
// node's real subscribers (writer, device registry, directory, fan-out):
// after the call the writer fences the partition given up, the directory
// routes it to the new owner, and a fan-out shard sends a large group's
// batch to the new owner's registry.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/device_registry.hpp"
#include "actors/directory.hpp"
#include "actors/fanout.hpp"
#include "actors/map_keeper.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t parts = 2;

/// What the stand-in subscribers were handed: (name, epoch), in order.
using hand_log = std::vector<std::pair<std::string, uint64_t>>;

/// A stand-in subscriber: records each map, answers as the directory does
/// (conflict for an epoch not above its own), and stays silent on the
/// first `silent` maps it is handed (it takes them, the answer is lost).
map_taker_actor::behavior_type
taker(map_taker_actor::pointer self, std::string name,
      std::shared_ptr<hand_log> log, std::shared_ptr<int> silent) {
  auto held = std::make_shared<uint64_t>(1);
  auto parked = std::make_shared<
    std::vector<caf::typed_response_promise<uint64_t>>>();
  return {
    [=](caf::put_atom, partition_map& m) -> caf::result<uint64_t> {
      log->emplace_back(name, m.map_epoch);
      if (m.map_epoch <= *held)
        return caf::make_error(errc::conflict, "not newer");
      *held = m.map_epoch;
      if (*silent > 0) {
        --*silent;
        parked->push_back(self->make_response_promise<uint64_t>());
        return parked->back();
      }
      return m.map_epoch;
    },
  };
}

partition_map map_of(uint64_t epoch, std::vector<node_id> owners) {
  return {epoch, std::move(owners)};
}

template <class T>
struct reply {
  std::optional<T> ok;
  caf::error err;
};

struct fixture : sim::coordinated_system {
  std::vector<caf::actor> to_stop;

  ~fixture() {
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched->run();
  }

  template <class Hdl>
  Hdl keep(Hdl h) {
    to_stop.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }

  /// Asks and runs until the answer (timers fired as needed).
  template <class T, class Hdl, class... Ts>
  reply<T> ask(Hdl hdl, Ts... args) {
    auto slot = std::make_shared<reply<T>>();
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, 100s, args...)
        .then([=](T& x) { slot->ok = std::move(x); },
              [=](caf::error& e) { slot->err = e; });
    });
    for (int i = 0; i < 100 && !slot->ok && !slot->err; ++i) {
      sched->run();
      if (!slot->ok && !slot->err)
        sched->trigger_timeout();
    }
    return *slot;
  }
};

/// The first id of kind `key(id)` placed in partition `p`.
template <class Key>
uint64_t first_in(uint32_t p, Key key) {
  for (uint64_t id = 1;; ++id)
    if (partition_of(key(id), parts) == p)
      return id;
}

} // namespace

TEST_CASE("sim: the map keeper hands a newer map to every subscriber once, "
          "in order, and changes nothing for an older or equal epoch") {
  fixture f;
  auto log = std::make_shared<hand_log>();
  auto never = std::make_shared<int>(0);
  auto disk = std::make_shared<memory_backend>();
  auto writer = f.keep(f.sys->spawn(store_writer_impl,
                                    std::shared_ptr<kv_backend>(disk),
                                    store_writer_limits{}));
  map_keeper_deps deps;
  deps.subscribers = {map_subscriber::of_writer(writer)};
  for (auto name : {"a", "b", "c"})
    deps.subscribers.push_back(map_subscriber::of(
      name, f.keep(f.sys->spawn(taker, name, log, never)), 1));
  auto keeper = f.keep(f.sys->spawn(map_keeper_impl,
                                    placement{1, map_of(1, {1, 1})}, deps));
  f.sched->run();
  CHECK(log->empty()); // the takers hold epoch 1 already
  // The writer learnt epoch 1 at spawn: it answers that epoch as is.
  auto w1 = f.ask<uint64_t>(writer, caf::put_atom::value, node_id{1},
                            map_of(1, {1, 1}));
  REQUIRE_MESSAGE(w1.ok, caf::to_string(w1.err));
  auto two = f.ask<uint64_t>(keeper, caf::put_atom::value, map_of(2, {1, 2}));
  REQUIRE_MESSAGE(two.ok, caf::to_string(two.err));
  CHECK_EQ(*two.ok, 2u);
  CHECK_EQ(*log, hand_log{{"a", 2}, {"b", 2}, {"c", 2}});
  // The writer has it: given up at epoch 2, partition 1 is fenced.
  auto again = f.ask<uint64_t>(writer, caf::put_atom::value, node_id{1},
                               map_of(1, {1, 1}));
  REQUIRE(again.err);
  CHECK(is(again.err, errc::conflict));
  // The same epoch again, and an older one: the current epoch, nobody is
  // handed anything, the map stays.
  for (auto m : {map_of(2, {1, 2}), map_of(2, {2, 2}), map_of(1, {2, 1})}) {
    auto r = f.ask<uint64_t>(keeper, caf::put_atom::value, m);
    REQUIRE_MESSAGE(r.ok, caf::to_string(r.err));
    CHECK_EQ(*r.ok, 2u);
  }
  CHECK_EQ(log->size(), 3u);
  auto now = f.ask<partition_map>(keeper, caf::get_atom::value);
  REQUIRE(now.ok);
  CHECK_EQ(now.ok->map_epoch, 2u);
  CHECK_EQ(now.ok->owners, std::vector<node_id>{1, 2});
  // A map of another partition count is refused, nothing handed out.
  auto bad = f.ask<uint64_t>(keeper, caf::put_atom::value,
                             map_of(3, {1, 1, 1}));
  REQUIRE(bad.err);
  CHECK(is(bad.err, errc::bad_request));
  CHECK_EQ(log->size(), 3u);
}

TEST_CASE("sim: a subscriber that does not answer fails the map keeper's "
          "call retryably, the others before it keep the map, and a repeat "
          "finishes it") {
  fixture f;
  auto log = std::make_shared<hand_log>();
  auto never = std::make_shared<int>(0);
  auto once = std::make_shared<int>(1);
  map_keeper_deps deps;
  deps.timeout = 5s;
  deps.subscribers = {
    map_subscriber::of("a", f.keep(f.sys->spawn(taker, "a", log, never)), 1),
    map_subscriber::of("b", f.keep(f.sys->spawn(taker, "b", log, once)), 1),
    map_subscriber::of("c", f.keep(f.sys->spawn(taker, "c", log, never)), 1),
  };
  auto keeper = f.keep(f.sys->spawn(map_keeper_impl,
                                    placement{1, map_of(1, {1, 1})}, deps));
  auto first = f.ask<uint64_t>(keeper, caf::put_atom::value,
                               map_of(2, {1, 2}));
  REQUIRE(first.err);
  CHECK(is(first.err, errc::unavailable));
  MESSAGE(caf::to_string(first.err));
  // a took it, b took it silently, c was not handed it (the order holds).
  CHECK_EQ(*log, hand_log{{"a", 2}, {"b", 2}});
  auto now = f.ask<partition_map>(keeper, caf::get_atom::value);
  REQUIRE(now.ok);
  CHECK_EQ(now.ok->map_epoch, 2u);
  // The repeat: a is not asked again; b answers conflict (it holds epoch
  // 2), which counts as taken; c gets it.
  auto second = f.ask<uint64_t>(keeper, caf::put_atom::value,
                                map_of(2, {1, 2}));
  REQUIRE_MESSAGE(second.ok, caf::to_string(second.err));
  CHECK_EQ(*second.ok, 2u);
  CHECK_EQ(*log, hand_log{{"a", 2}, {"b", 2}, {"b", 2}, {"c", 2}});
  // Done: one more repeat hands nothing.
  auto third = f.ask<uint64_t>(keeper, caf::put_atom::value,
                               map_of(2, {1, 2}));
  REQUIRE(third.ok);
  CHECK_EQ(log->size(), 4u);
}

namespace {

caf::behavior recording_connection(std::shared_ptr<std::vector<sequence>> got,
                                   std::shared_ptr<int> closed) {
  return {
    [got](fanout_atom, const stored_message& m) { got->push_back(m.seq); },
    [closed](caf::close_atom, uint32_t, const std::string&) { ++*closed; },
  };
}

delivery_actor::behavior_type ignore_all() {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

} // namespace

TEST_CASE("sim: after the map keeper's call the writer fences the partition "
          "given up, the directory routes it to the new owner and a fan-out "
          "shard sends its users' batches to the new owner's registry") {
  fixture f;
  auto before = map_of(1, {1, 1});
  auto after = map_of(2, {1, 2}); // partition 1 goes to node 2
  auto disk = std::make_shared<memory_backend>();
  auto kv = std::shared_ptr<kv_backend>(disk);
  auto writer = f.keep(f.sys->spawn(store_writer_impl, kv,
                                    store_writer_limits{}));
  auto reader = f.keep(f.sys->spawn(store_reader_impl, kv, uint64_t{50}));
  auto quiet = f.keep(f.sys->spawn(ignore_all));
  device_registry_options r1, r2;
  r1.where = placement{1, before};
  r2.where = placement{2, after}; // node 2's own keeper gave it the map
  auto reg1 = f.keep(f.sys->spawn(device_registry_impl, device_deps{}, r1));
  auto reg2 = f.keep(f.sys->spawn(device_registry_impl, device_deps{}, r2));
  fanout_deps fd;
  fd.where = placement{1, before};
  fd.registries = {{1, reg1}, {2, reg2}};
  fd.receipts = quiet;
  fanout_options fo;
  fo.shards = 2;
  fo.own_threads = false;
  auto fan = f.keep(f.sys->spawn(fanout_impl, fd, fo));
  auto dir = f.keep(f.sys->spawn(
    placed_directory_impl,
    conversation_deps{writer, reader, quiet,
                      [] { return int64_t{1'700'000'000'000}; },
                      conversation_limits{}, nullptr},
    placement{1, before}));
  map_keeper_deps deps;
  deps.subscribers = {
    map_subscriber::of_writer(writer),
    map_subscriber::of("device registry", reg1, 1),
    map_subscriber::of("directory", dir, 1),
    map_subscriber::of("fan-out", fan, 1),
  };
  auto keeper = f.keep(f.sys->spawn(map_keeper_impl, placement{1, before},
                                    deps));
  f.sched->run();
  // A user of partition 1: online on node 1 before the move, and (after
  // reconnecting) on node 2.
  auto user = first_in(1, placement_key::user);
  auto got1 = std::make_shared<std::vector<sequence>>();
  auto got2 = std::make_shared<std::vector<sequence>>();
  auto closed1 = std::make_shared<int>(0);
  auto closed2 = std::make_shared<int>(0);
  auto conn1 = f.keep(f.sys->spawn(recording_connection, got1, closed1));
  auto joined = f.ask<device_actor>(reg1, caf::join_atom::value, user,
                                    device_id{1}, conn1);
  REQUIRE_MESSAGE(joined.ok, caf::to_string(joined.err));
  f.keep(*joined.ok);
  stored_message m;
  m.conversation = 9;
  m.sender_user = 1000;
  m.sender_device = 1;
  m.seq = 1;
  caf::anon_send(fan, deliver_atom::value, m, std::vector<user_id>{user});
  f.sched->run();
  CHECK_EQ(*got1, std::vector<sequence>{1});
  // The move: node 1's keeper hands the map to its actors.
  auto moved = f.ask<uint64_t>(keeper, caf::put_atom::value, after);
  REQUIRE_MESSAGE(moved.ok, caf::to_string(moved.err));
  CHECK_EQ(*moved.ok, 2u);
  CHECK_EQ(*closed1, 1); // the registry let the user's device go
  // The directory routes the partition to node 2.
  auto conv = first_in(1, placement_key::conversation);
  auto route_of = f.ask<route>(dir, caf::get_atom::value,
                               placement_key::conversation(conv));
  REQUIRE(route_of.ok);
  CHECK_EQ(route_of.ok->owner, 2u);
  CHECK_FALSE(route_of.ok->local);
  // The writer refuses a commit into the partition given up.
  write_batch b;
  stored_message rec;
  rec.conversation = conv;
  rec.seq = 1;
  rec.client_message_id = "x";
  store::add_message(b, rec);
  auto commit = f.ask<uint64_t>(writer, commit_atom::value, uint64_t{conv},
                                uint64_t{1}, b);
  REQUIRE(commit.err);
  CHECK(is(commit.err, errc::unavailable));
  // The device reconnects on node 2; the next large-group message reaches
  // it through node 2's registry.
  auto conn2 = f.keep(f.sys->spawn(recording_connection, got2, closed2));
  auto joined2 = f.ask<device_actor>(reg2, caf::join_atom::value, user,
                                     device_id{1}, conn2);
  REQUIRE_MESSAGE(joined2.ok, caf::to_string(joined2.err));
  f.keep(*joined2.ok);
  m.seq = 2;
  caf::anon_send(fan, deliver_atom::value, m, std::vector<user_id>{user});
  f.sched->run();
  CHECK_EQ(*got2, std::vector<sequence>{2});
  CHECK_EQ(*got1, std::vector<sequence>{1});
}
