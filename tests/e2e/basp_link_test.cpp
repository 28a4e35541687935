// The cluster's data plane as CAF 0.17.6 gives it (issue 22): two actor
// systems with the middleman (BASP over TCP) on loopback, in one process.
// A node publishes an actor on 127.0.0.1 only; the other reaches it with
// remote_actor and talks to it with Parley's own message types, which
// cross as values through their inspectors (the type-id block). A remote
// actor that ends is seen as a down message by its monitor, and a request
// to it afterwards ends with an error, never a hang.

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "runtime/core/type_ids.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

/// A stand-in for a node's store reader: answers conversation reads.
using reader_actor = caf::typed_actor<
  caf::replies_to<fetch_atom, conv_reads>::with<conv_answers>>;

reader_actor::behavior_type echo_reader(reader_actor::pointer) {
  return {
    [](fetch_atom, const conv_reads& r) {
      conv_answers a;
      a.partition = r.partition;
      for (auto& q : r.queries) {
        conv_answer x;
        x.entry.conversation = q.conv;
        x.entry.head = q.conv * 10 + r.queries.size();
        a.answers.push_back(x);
      }
      return a;
    },
  };
}

struct node_config : caf::actor_system_config {
  node_config() {
    load<caf::io::middleman>();
    add_message_types<caf::id_block::parley>();
    set("scheduler.max-threads", 2);
    set("logger.verbosity", caf::atom("quiet"));
    // Off is CAF's default; said here because on would open a port on
    // every interface (notes/caf-0.17.md).
    set("middleman.enable-automatic-connections", false);
  }
};

} // namespace

TEST_CASE("basp: a node reaches another node's actor published on loopback "
          "and talks to it in Parley's message types") {
  node_config cfg1;
  node_config cfg2;
  caf::actor_system sys1{cfg1};
  caf::actor_system sys2{cfg2};
  auto reader = sys1.spawn(echo_reader);
  auto port = sys1.middleman().publish(reader, 0, "127.0.0.1");
  REQUIRE(port);
  CHECK(*port > 0);
  auto remote = sys2.middleman().remote_actor<reader_actor>("127.0.0.1",
                                                            *port);
  REQUIRE(remote);
  CHECK(remote->node() == sys1.node());
  CHECK(remote->node() != sys2.node());

  caf::scoped_actor self{sys2};
  conv_reads r;
  r.partition = 17;
  for (conversation_id c : {3, 5, 8}) {
    conv_query q;
    q.conv = c;
    q.kind = conv_read_probe;
    q.user = 42;
    r.queries.push_back(q);
  }
  bool answered = false;
  self->request(*remote, 10s, fetch_atom::value, r)
    .receive(
      [&](conv_answers& a) {
        answered = true;
        CHECK(a.partition == 17u);
        REQUIRE(a.answers.size() == 3);
        CHECK(a.answers[0].entry.conversation == 3u);
        CHECK(a.answers[0].entry.head == 33u);
        CHECK(a.answers[2].entry.conversation == 8u);
        CHECK(a.answers[2].entry.head == 83u);
      },
      [&](caf::error& err) { FAIL("no answer: " << caf::to_string(err)); });
  CHECK(answered);

  // The remote actor ends: its monitor hears of it, and a request to it
  // now ends with an error instead of waiting.
  self->monitor(*remote);
  caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
  bool down = false;
  self->receive([&](caf::down_msg& d) { down = d.source == *remote; },
                caf::after(30s) >> [] {});
  CHECK(down);
  // (CAF 0.17.6 drops a message to a remote proxy whose actor is gone
  // without a reply: the caller's timeout is what ends the wait, so every
  // cross-node request needs one.)
  bool failed = false;
  self->request(*remote, 2s, fetch_atom::value, r)
    .receive([&](conv_answers&) { FAIL("an ended actor answered"); },
             [&](caf::error& err) {
               failed = true;
               MESSAGE("request to the ended actor: " << caf::to_string(err));
             });
  CHECK(failed);
  sys1.middleman().unpublish(caf::actor_cast<caf::actor>(reader), *port);
}

TEST_CASE("basp: remote_actor to a port where nothing listens is an error") {
  node_config cfg1;
  node_config cfg2;
  caf::actor_system sys1{cfg1};
  caf::actor_system sys2{cfg2};
  // A port that was just open and is closed again: nothing listens there.
  auto probe = sys1.spawn(echo_reader);
  auto port = sys1.middleman().publish(probe, 0, "127.0.0.1");
  REQUIRE(port);
  sys1.middleman().unpublish(caf::actor_cast<caf::actor>(probe), *port);
  caf::anon_send_exit(probe, caf::exit_reason::user_shutdown);
  auto remote = sys2.middleman().remote_actor<reader_actor>("127.0.0.1",
                                                            *port);
  CHECK_FALSE(remote);
}
