// A device's delivered-cursor limit through the directory (issue 21, item
// 4): two nodes in one test coordinator, each with its own store and
// directory, joined by the two-node swarm's serializing link
// (two_node_hop.hpp). A device of a user on node 1 acknowledges a
// conversation whose partition node 2 owns: the limit is read from node
// 2's store (the conversation's member record and head), across the link,
// and the device's cursor lands in node 1's store. While the link is
// broken the limit never comes: the device goes on serving, the ack is
// refused retryably once its wait is over, and the next ack succeeds.

#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/device_registry.hpp"
#include "actors/directory.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"
#include "two_node_hop.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t parts = 8;

/// Partitions alternate between nodes 1 and 2.
partition_map halves() {
  partition_map m;
  m.map_epoch = 1;
  for (uint32_t p = 0; p < parts; ++p)
    m.owners.push_back(1 + p % 2);
  return m;
}

template <class Key>
uint64_t first_on(node_id n, Key key, uint64_t after = 0) {
  for (uint64_t id = after + 1;; ++id)
    if (halves().owner(partition_of(key(id), parts)) == n)
      return id;
}

delivery_actor::behavior_type quiet(delivery_actor::pointer) {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

/// A connection that records what its device pushes.
caf::behavior connection(std::shared_ptr<std::vector<sequence>> got) {
  return {
    [got](deliver_atom, const stored_message& m) { got->push_back(m.seq); },
    [](caf::close_atom, uint32_t, const std::string&) {},
  };
}

template <class T>
struct reply {
  std::optional<T> ok;
  caf::error err;
  bool in() const {
    return ok || err;
  }
};

struct node {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  directory_actor dir;
};

struct rig : sim::coordinated_system {
  std::mt19937_64 rng{7};
  sim::hop_net net{*sys, [this] {
                     return std::uniform_real_distribution<double>{0, 1}(rng);
                   }};
  node one, two;
  device_registry_actor registry; ///< node 1's
  std::vector<caf::actor> to_stop;

  void boot(node& n, node_id id) {
    auto kv = std::shared_ptr<kv_backend>(n.disk);
    n.writer = sys->spawn(store_writer_impl, kv, store_writer_limits{});
    n.reader = sys->spawn(store_reader_impl, kv, uint64_t{50});
    n.delivery = sys->spawn(quiet);
    directory_peers peers;
    peers.emplace(3 - id, caf::actor_cast<directory_actor>(
                            net.directory_port(id, 3 - id)));
    n.dir = sys->spawn(routing_directory_impl,
                       conversation_deps{n.writer, n.reader, n.delivery,
                                         [] { return int64_t{1'700'000'000'000}; },
                                         conversation_limits{}, nullptr},
                       placement{id, halves()}, std::move(peers));
    net.set_directory(id, caf::actor_cast<caf::strong_actor_ptr>(n.dir));
  }

  rig() {
    net.max_delay_ms = 10;
    boot(one, 1);
    boot(two, 2);
    device_registry_options ro;
    ro.where = placement{1, halves()};
    registry = sys->spawn(device_registry_impl,
                          device_deps{{}, one.writer, nullptr, {}}, ro);
    // As node.cpp does: the directory exists after the registry.
    caf::anon_send(registry, caf::put_atom::value,
                   caf::actor_cast<ack_limit_actor>(one.dir));
    sched->run();
  }

  ~rig() {
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    for (auto* n : {&one, &two})
      for (auto hdl : {caf::actor_cast<caf::actor>(n->dir),
                       caf::actor_cast<caf::actor>(n->delivery),
                       caf::actor_cast<caf::actor>(n->reader),
                       caf::actor_cast<caf::actor>(n->writer)})
        caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
    net.clear();
    sched->run();
  }

  /// Runs, firing timers (the link's landings) until `done` or nothing is
  /// left; with `timers` false, never past a pending timer.
  template <class Done>
  void drive(Done done, bool timers = true) {
    for (int i = 0; i < 1000 && !done(); ++i) {
      sched->run();
      if (done() || !timers || !sched->trigger_timeout())
        break;
    }
  }

  /// Sends a request and returns its answer slot (filled as the scheduler
  /// runs).
  template <class T, class Hdl, class... Ts>
  std::shared_ptr<reply<T>> request(Hdl hdl, Ts... args) {
    auto slot = std::make_shared<reply<T>>();
    to_stop.push_back(sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, 1000s, args...)
        .then([=](T& x) { slot->ok = std::move(x); },
              [=](caf::error& e) { slot->err = e; });
    }));
    return slot;
  }

  template <class T, class Hdl, class... Ts>
  reply<T> ask(Hdl hdl, Ts... args) {
    auto slot = request<T>(hdl, args...);
    drive([&] { return slot->in(); });
    return *slot;
  }

  /// Node 2's store holds `user` as a member of `conv` with `head`
  /// messages.
  void seed_conversation(conversation_id conv, user_id user, sequence head) {
    write_batch b;
    store::add_member(b, conv, member{user, 0, 1, 0});
    for (sequence s = 1; s <= head; ++s) {
      stored_message m;
      m.conversation = conv;
      m.seq = s;
      m.sender_user = user + 1;
      m.sender_device = 1;
      m.client_message_id = "m" + std::to_string(s);
      store::add_message(b, m);
    }
    REQUIRE(!two.disk->write(b, true));
  }

  sequence cursor_on_one(user_id user, device_id dev, conversation_id conv) {
    auto v = one.disk->get(keys::delivered(user, dev, conv));
    if (!v || !*v)
      return 0;
    return keys::read_u64(**v, 0).value_or(0);
  }
};

} // namespace

TEST_CASE("sim: a device gets its delivered-cursor limit from the node "
          "owning its conversation, across the two-node link") {
  rig r;
  auto user = first_on(1, placement_key::user);
  auto conv = first_on(2, placement_key::conversation);
  r.seed_conversation(conv, user, 3);
  auto got = std::make_shared<std::vector<sequence>>();
  auto conn = r.sys->spawn(connection, got);
  r.to_stop.push_back(conn);
  auto dev = r.ask<device_actor>(r.registry, caf::join_atom::value, user,
                                 device_id{1}, conn);
  REQUIRE_MESSAGE(dev.ok, caf::to_string(dev.err));
  auto crossed = r.net.stats.delivered;
  // Nothing was pushed: the limit must come from node 2's store.
  auto acked = r.ask<sequence>(*dev.ok, ack_atom::value, conv, sequence{2});
  REQUIRE_MESSAGE(acked.ok, caf::to_string(acked.err));
  CHECK_EQ(*acked.ok, 2u);
  CHECK_GE(r.net.stats.delivered, crossed + 2); // the request, its answer
  CHECK(r.net.violations.empty());
  r.drive([&] { return r.cursor_on_one(user, 1, conv) == 2; });
  CHECK_EQ(r.cursor_on_one(user, 1, conv), 2u);
  // Past node 2's head: refused with cursor_ahead; another user: forbidden.
  auto ahead = r.ask<sequence>(*dev.ok, ack_atom::value, conv, sequence{9});
  REQUIRE(ahead.err);
  CHECK(is(ahead.err, errc::cursor_ahead));
  auto stranger = first_on(1, placement_key::user, user);
  auto conn2 = r.sys->spawn(connection, got);
  r.to_stop.push_back(conn2);
  auto other = r.ask<device_actor>(r.registry, caf::join_atom::value,
                                   stranger, device_id{1}, conn2);
  REQUIRE_MESSAGE(other.ok, caf::to_string(other.err));
  auto foreign = r.ask<sequence>(*other.ok, ack_atom::value, conv,
                                 sequence{1});
  REQUIRE(foreign.err);
  CHECK(is(foreign.err, errc::forbidden));
}

TEST_CASE("sim: a delivered-cursor limit that never comes does not block "
          "the device, the ack is refused retryably and the next one "
          "succeeds") {
  rig r;
  auto user = first_on(1, placement_key::user);
  auto conv = first_on(2, placement_key::conversation);
  r.seed_conversation(conv, user, 3);
  auto got = std::make_shared<std::vector<sequence>>();
  auto conn = r.sys->spawn(connection, got);
  r.to_stop.push_back(conn);
  auto dev = r.ask<device_actor>(r.registry, caf::join_atom::value, user,
                                 device_id{1}, conn);
  REQUIRE_MESSAGE(dev.ok, caf::to_string(dev.err));
  r.net.broken = true; // everything on the link is dropped
  auto acked = r.request<sequence>(*dev.ok, ack_atom::value, conv,
                                   sequence{2});
  r.sched->run(); // no timer fired: the limit is on its way (and lost)
  CHECK_FALSE(acked->in());
  // Meanwhile the device serves everything else.
  stored_message m;
  m.conversation = conv + 1000;
  m.seq = 1;
  m.sender_user = user + 1;
  caf::anon_send(*dev.ok, deliver_atom::value, m);
  auto status = r.request<device_status>(*dev.ok, stats_atom::value);
  r.sched->run();
  REQUIRE(status->ok);
  CHECK(status->ok->connected);
  CHECK_EQ(*got, std::vector<sequence>{1});
  CHECK_FALSE(acked->in());
  // Its wait ends: a retryable refusal, nothing accepted.
  r.drive([&] { return acked->in(); });
  REQUIRE(acked->err);
  CHECK(acked->err == caf::sec::request_timeout);
  CHECK_EQ(r.cursor_on_one(user, 1, conv), 0u);
  // The link heals; the client's next ack gets the limit.
  r.net.broken = false;
  auto again = r.ask<sequence>(*dev.ok, ack_atom::value, conv, sequence{3});
  REQUIRE_MESSAGE(again.ok, caf::to_string(again.err));
  CHECK_EQ(*again.ok, 3u);
  r.drive([&] { return r.cursor_on_one(user, 1, conv) == 3; });
  CHECK_EQ(r.cursor_on_one(user, 1, conv), 3u);
}
