// The connection's tagged Send and Read (runtime/core/reply_deadlines.hpp)
// under the test coordinator, with stand-ins for the accounts, the registry
// and the directory (which holds what it gets and answers when told): an
// answer in time becomes Accepted or an Error frame with the request id; a
// Send left unanswered past timeouts::client becomes a retryable
// UNAVAILABLE, as a request timeout did, and its late answer is dropped
// (no second frame).

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/gateway/connection.hpp"
#include "coordinated_system.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

/// Records what the connection writes to its session.
struct recording_link : gateway::ws_link {
  std::vector<v1::ServerFrame> frames;

  bool send(std::string data, bool) override {
    v1::ServerFrame f;
    REQUIRE(f.ParseFromString(data));
    frames.push_back(std::move(f));
    return true;
  }

  void close(uint16_t, std::string) override {
    // nop
  }
};

/// What the directory stand-in got, with whom to answer.
struct held {
  std::vector<std::pair<caf::actor, tagged_send>> sends;
  std::vector<std::pair<caf::actor, tagged_receipt>> receipts;
};

struct fixture : sim::coordinated_system {
  std::shared_ptr<recording_link> link = std::make_shared<recording_link>();
  std::shared_ptr<held> got = std::make_shared<held>();
  std::vector<caf::actor> others;
  gateway::connection_actor conn;

  fixture() {
    auto accounts = sys->spawn([](caf::event_based_actor*) -> caf::behavior {
      return {[](auth_atom, const std::string&) {
        return principal{100, 1, true, {}};
      }};
    });
    auto device = sys->spawn([](caf::event_based_actor* self) {
      self->set_default_handler(caf::drop);
      return caf::behavior{[](caf::update_atom, bool) {}};
    });
    auto registry = sys->spawn([device](caf::event_based_actor*)
                                 -> caf::behavior {
      return {[device](caf::join_atom, user_id, device_id, const caf::actor&) {
        return caf::actor_cast<device_actor>(device);
      }};
    });
    auto g = got;
    auto directory = sys->spawn([g](caf::event_based_actor* self)
                                  -> caf::behavior {
      return {
        [self, g](send_atom, tagged_send& t) {
          g->sends.emplace_back(
            caf::actor_cast<caf::actor>(self->current_sender()), t);
        },
        [self, g](receipt_atom, tagged_receipt& t) {
          g->receipts.emplace_back(
            caf::actor_cast<caf::actor>(self->current_sender()), t);
        },
      };
    });
    others = {accounts, device, registry, directory};
    gateway::connection_deps deps;
    deps.accounts = caf::actor_cast<accounts_actor>(accounts);
    deps.directory = caf::actor_cast<directory_actor>(directory);
    deps.registry = caf::actor_cast<device_registry_actor>(registry);
    deps.stats = std::make_shared<gateway::metrics>();
    conn = sys->spawn(gateway::connection_impl, deps,
                      std::shared_ptr<gateway::ws_link>(link), std::string{});
    v1::ClientFrame hello;
    hello.set_request_id(1);
    hello.mutable_hello()->set_min_version(1);
    hello.mutable_hello()->set_max_version(1);
    hello.mutable_hello()->set_auth_token("token");
    frame(hello);
    REQUIRE(link->frames.size() == 1);
    REQUIRE(link->frames[0].has_welcome());
  }

  ~fixture() {
    caf::anon_send_exit(conn, caf::exit_reason::user_shutdown);
    for (auto& a : others)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched->run();
  }

  /// Hands the connection a client frame and runs everything.
  void frame(const v1::ClientFrame& f) {
    std::string data;
    REQUIRE(f.SerializeToString(&data));
    caf::anon_send(conn, frame_atom::value, data, true);
    sched->run();
  }

  void send(uint32_t rid, const std::string& cmid) {
    v1::ClientFrame f;
    f.set_request_id(rid);
    auto* s = f.mutable_send();
    s->set_conversation_id(42);
    s->set_client_message_id(cmid);
    s->set_kind(v1::MESSAGE_KIND_TEXT);
    s->set_payload("hi");
    frame(f);
  }

  /// Moves the clock by `d` one period of the connection's tick at a time
  /// (each tick re-arms the next one).
  void pass(caf::timespan d) {
    for (auto t = caf::timespan{0}; t < d; t += 100ms) {
      sched->advance_time(100ms);
      sched->run();
    }
  }

  /// The answer the conversation would give, to the held asker.
  template <class Answer>
  void answer(const caf::actor& to, Answer a) {
    if constexpr (std::is_same<Answer, send_answer>::value)
      caf::anon_send(to, send_atom::value, std::move(a));
    else
      caf::anon_send(to, receipt_atom::value, std::move(a));
    sched->run();
  }
};

} // namespace

TEST_CASE("sim: the connection answers a tagged Send with Accepted or an "
          "Error frame, and a Read's refusal with an Error frame") {
  fixture f;
  f.send(7, "a");
  REQUIRE(f.got->sends.size() == 1);
  auto& [to, t] = f.got->sends[0];
  CHECK(t.req.sender_user == 100); // the authenticated user, not the frame's
  CHECK(t.req.client_message_id == "a");
  f.answer(to, send_answer{t.tag, send_result{"id", 5, 1234, false}, {}});
  REQUIRE(f.link->frames.size() == 2);
  CHECK(f.link->frames[1].request_id() == 7);
  REQUIRE(f.link->frames[1].has_accepted());
  CHECK(f.link->frames[1].accepted().server_sequence() == 5);
  CHECK(f.link->frames[1].accepted().client_message_id() == "a");
  f.send(8, "b");
  REQUIRE(f.got->sends.size() == 2);
  f.answer(f.got->sends[1].first,
           send_answer{f.got->sends[1].second.tag, {},
                       caf::make_error(errc::not_member, "not a member")});
  REQUIRE(f.link->frames.size() == 3);
  CHECK(f.link->frames[2].request_id() == 8);
  CHECK(f.link->frames[2].has_error());
  v1::ClientFrame read;
  read.set_request_id(9);
  read.mutable_read()->set_conversation_id(42);
  read.mutable_read()->set_up_to_sequence(3);
  f.frame(read);
  REQUIRE(f.got->receipts.size() == 1);
  auto& [rto, r] = f.got->receipts[0];
  CHECK(r.user == 100);
  CHECK(r.kind == 2);
  f.answer(rto, receipt_answer{r.tag, 0,
                               caf::make_error(errc::cursor_ahead, "ahead")});
  REQUIRE(f.link->frames.size() == 4);
  CHECK(f.link->frames[3].request_id() == 9);
  CHECK(f.link->frames[3].error().code() == v1::Error::CODE_CURSOR_AHEAD);
}

TEST_CASE("sim: a tagged Send unanswered past timeouts::client gets a "
          "retryable UNAVAILABLE, and its late answer is dropped") {
  fixture f;
  f.send(7, "a");
  REQUIRE(f.got->sends.size() == 1);
  f.pass(timeouts::client - 100ms);
  CHECK(f.link->frames.size() == 1); // not before its deadline
  f.pass(timeouts::client / 5 + 200ms); // its tick comes within a period
  REQUIRE(f.link->frames.size() == 2);
  auto& e = f.link->frames[1];
  CHECK(e.request_id() == 7);
  REQUIRE(e.has_error());
  CHECK(e.error().code() == v1::Error::CODE_UNAVAILABLE);
  CHECK(e.error().retryable());
  // The answer after the deadline: nothing more is said.
  auto& [to, t] = f.got->sends[0];
  f.answer(to, send_answer{t.tag, send_result{"id", 5, 1234, false}, {}});
  CHECK(f.link->frames.size() == 2);
  // The connection still works, and its tick stopped with nothing left.
  f.send(8, "b");
  f.answer(f.got->sends[1].first,
           send_answer{f.got->sends[1].second.tag,
                       send_result{"id2", 6, 1235, false}, {}});
  REQUIRE(f.link->frames.size() == 3);
  CHECK(f.link->frames[2].has_accepted());
}
