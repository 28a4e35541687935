// The directory's forwarding to other nodes' directories (directory_peers),
// under the test coordinator with two directories in one system, each over
// its own store, each knowing the other directly (no link: the two-node
// swarm, two_node_test.cpp, puts a serializing link between them). A
// request for the other node's partition gets that node's answer, and the
// conversation lives and is stored only there; without a peer the answer is
// UNAVAILABLE as before; a peer that is gone gives a retryable error, not
// a hang. The same for a user's sync and the partition reads a sync makes.

#include <doctest/doctest.h>

#include <memory>
#include <optional>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/directory.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/sync_reads.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

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

/// The first user id whose partition node `n` owns under halves().
user_id user_of(node_id n) {
  for (user_id u = 1;; ++u)
    if (halves().owner(partition_of(placement_key::user(u), parts)) == n)
      return u;
}

/// The first conversation id whose partition node `n` owns under halves().
conversation_id conv_of(node_id n) {
  for (conversation_id c = 1;; ++c)
    if (halves().owner(partition_of(placement_key::conversation(c), parts))
        == n)
      return c;
}

delivery_actor::behavior_type quiet(delivery_actor::pointer) {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

template <class T>
struct reply {
  std::optional<T> ok;
  caf::error err;
};

struct node {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  directory_actor dir;
};

struct fixture : sim::coordinated_system {
  node one, two;

  conversation_deps deps_of(node& n) {
    n.writer = sys->spawn(store_writer_impl,
                          std::shared_ptr<kv_backend>(n.disk),
                          store_writer_limits{});
    n.reader = sys->spawn(store_reader_impl,
                          std::shared_ptr<kv_backend>(n.disk), uint64_t{50});
    n.delivery = sys->spawn(quiet);
    return conversation_deps{n.writer, n.reader, n.delivery,
                             [] { return int64_t{1'700'000'000'000}; },
                             conversation_limits{}, nullptr};
  }

  /// Node 2 first (node 1 needs its handle); node 1 knows node 2 if
  /// `peered`.
  explicit fixture(bool peered) {
    two.dir = sys->spawn(routing_directory_impl, deps_of(two),
                         placement{2, halves()}, directory_peers{});
    directory_peers peers;
    if (peered)
      peers.emplace(2, two.dir);
    one.dir = sys->spawn(routing_directory_impl, deps_of(one),
                         placement{1, halves()}, peers);
    sched->run();
  }

  ~fixture() {
    for (auto* n : {&one, &two})
      for (auto hdl : {caf::actor_cast<caf::actor>(n->dir),
                       caf::actor_cast<caf::actor>(n->delivery),
                       caf::actor_cast<caf::actor>(n->reader),
                       caf::actor_cast<caf::actor>(n->writer)})
        caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
  }

  static directory_state& state(const directory_actor& dir) {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(dir);
    return dynamic_cast<caf::stateful_actor<directory_state,
                                            directory_actor::base>&>(*ptr)
      .state;
  }

  /// Asks and runs until the answer (or a timeout) is in.
  template <class T, class... Ts>
  reply<T> ask(directory_actor hdl, Ts... args) {
    auto slot = std::make_shared<reply<T>>();
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, 10s, args...)
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

  send_request send_of(conversation_id conv, user_id user) {
    send_request req;
    req.conversation = conv;
    req.sender_user = user;
    req.sender_device = 1;
    req.client_message_id = "m-" + std::to_string(user);
    req.kind = 1;
    req.payload = "hello";
    return req;
  }
};

} // namespace

TEST_CASE("sim: a directory hands a request for another node's partition "
          "to that node's directory, which answers it") {
  fixture f{true};
  auto conv = conv_of(2);
  // A member of node 2's partitions: node 2 knows no peer, and the join's
  // answer waits for the member's index (written by the user's partition
  // owner).
  auto member = user_of(2);
  auto joined = f.ask<sequence>(f.one.dir, caf::join_atom::value, conv,
                                member);
  REQUIRE_MESSAGE(joined.ok, caf::to_string(joined.err));
  auto sent = f.ask<send_result>(f.one.dir, send_atom::value,
                                 f.send_of(conv, member));
  REQUIRE_MESSAGE(sent.ok, caf::to_string(sent.err));
  CHECK_EQ(sent.ok->server_sequence, 1u);
  // The conversation runs and is stored on node 2 only.
  CHECK(fixture::state(f.one.dir).conversations.empty());
  CHECK_EQ(fixture::state(f.two.dir).conversations.count(conv), 1u);
  auto there = store::fetch_messages(*f.two.disk, conv, 0, 10);
  REQUIRE(there);
  CHECK_EQ(there->size(), 1u);
  auto here = store::fetch_messages(*f.one.disk, conv, 0, 10);
  REQUIRE(here);
  CHECK(here->empty());
  // A read of that conversation's partition (a user's sync asks these of
  // its directory) is answered by node 2's store reader.
  conv_reads reads;
  reads.partition = partition_of(placement_key::conversation(conv), parts);
  conv_query q;
  q.conv = conv;
  q.kind = conv_read_head;
  reads.queries.push_back(q);
  auto head = f.ask<conv_answers>(f.one.dir, fetch_atom::value, reads);
  REQUIRE_MESSAGE(head.ok, caf::to_string(head.err));
  REQUIRE_EQ(head.ok->answers.size(), 1u);
  CHECK_EQ(head.ok->answers[0].head, 1u);
  // A sync of a user of node 2's runs on node 2's user actor.
  auto user = user_of(2);
  auto page = f.ask<sync_page>(f.one.dir, sync_atom::value, user,
                               sync_request{});
  REQUIRE_MESSAGE(page.ok, caf::to_string(page.err));
  CHECK(fixture::state(f.one.dir).users.empty());
  CHECK_EQ(fixture::state(f.two.dir).users.count(user), 1u);
  // Node 1's own partitions stay with node 1.
  auto local = conv_of(1);
  CHECK(f.ask<sequence>(f.one.dir, caf::join_atom::value, local, user_id{7})
          .ok);
  CHECK_EQ(fixture::state(f.one.dir).conversations.count(local), 1u);
}

TEST_CASE("sim: without a peer for the owner, a directory answers "
          "UNAVAILABLE, and with the peer gone the asker gets a retryable "
          "error instead of waiting") {
  {
    fixture f{false};
    auto r = f.ask<sequence>(f.one.dir, caf::join_atom::value, conv_of(2),
                             user_id{7});
    REQUIRE(r.err);
    CHECK(is(r.err, errc::unavailable));
    CHECK(fixture::state(f.one.dir).conversations.empty());
    auto page = f.ask<sync_page>(f.one.dir, sync_atom::value, user_of(2),
                                 sync_request{});
    REQUIRE(page.err);
    CHECK(is(page.err, errc::unavailable));
  }
  {
    fixture f{true};
    caf::anon_send_exit(f.two.dir, caf::exit_reason::kill);
    f.sched->run();
    auto r = f.ask<send_result>(f.one.dir, send_atom::value,
                                f.send_of(conv_of(2), 7));
    REQUIRE(r.err);
    CHECK(r.err.category() == caf::atom("system")); // receiver down/timeout
  }
}
