// Issue 20 on the actors: a retry is answered as a retry whatever happened
// since (the sender left and rejoined, the conversation restarted, another
// request reused its key in between), and a reused key with other content
// is a conflict wherever its first use is found (memory, in flight, store).

#include <doctest/doctest.h>

#include "runtime/core/errors.hpp"
#include "group_fixture.hpp"

using namespace parley;
using namespace parley::group_sim;
namespace mc = parley::membership_change;

namespace {

send_request text(user_id from, std::string cmid, std::string payload,
                  sequence reply_to = 0) {
  send_request r{fixture::conv, from, 1, std::move(cmid), 1,
                 std::move(payload)};
  r.reply_to = reply_to;
  return r;
}

} // namespace

TEST_CASE("sim: a retry of an accepted reply is answered after its sender "
          "left and rejoined, from memory and from the store") {
  fixture f;
  REQUIRE(f.change(mc::created, 1, {2}, "g").ok);           // 1
  REQUIRE(f.ask(send_atom::value, text(1, "q", "question")).ok); // 2
  auto reply = text(2, "r", "answer", 2);
  auto first = f.ask(send_atom::value, reply);
  REQUIRE(first.ok);
  CHECK(first.ok->server_sequence == 3);
  REQUIRE(f.change(mc::removed, 1, {2}).ok); // 4
  REQUIRE(f.change(mc::added, 1, {2}).ok);   // 5: joined again at 5
  auto again = f.ask(send_atom::value, reply);
  REQUIRE(again.ok);
  CHECK(again.ok->server_sequence == 3);
  CHECK(again.ok->deduplicated);
  // A new reply to message 2 is outside the window now.
  CHECK(is(f.ask(send_atom::value, text(2, "r2", "late", 2)).err,
           errc::forbidden));
  CHECK(check_against_log(*f.out) == "");
  f.crash(); // (its outbox relay may deliver the log's tail again)
  auto stored = f.ask(send_atom::value, reply);
  REQUIRE(stored.ok);
  CHECK(stored.ok->server_sequence == 3);
  CHECK(stored.ok->deduplicated);
}

TEST_CASE("sim: a genuine retry behind a reuse of its key with other "
          "content still gets its answer") {
  fixture f;
  REQUIRE(f.change(mc::created, 1, {2}, "g").ok);
  auto m = text(1, "m", "the message");
  REQUIRE(f.ask(send_atom::value, m).ok); // 2
  f.crash(); // the key's first use is only on disk now
  // Both arrive before the store has answered the first one's lookup.
  auto reuse = f.fire(send_atom::value, text(1, "m", "something else"));
  auto retry = f.fire(send_atom::value, m);
  auto retry2 = f.fire(send_atom::value, m);
  f.sched->run();
  CHECK(is(reuse->err, errc::conflict));
  REQUIRE(retry->ok);
  CHECK(retry->ok->server_sequence == 2);
  CHECK(retry->ok->deduplicated);
  REQUIRE(retry2->ok);
  CHECK(retry2->ok->server_sequence == 2);
  // And the other way round: a new key's first use in flight, a reuse
  // behind it.
  auto fresh = f.fire(send_atom::value, text(2, "n", "new"));
  auto clash = f.fire(send_atom::value, text(2, "n", "not the same"));
  auto copy = f.fire(send_atom::value, text(2, "n", "new"));
  f.sched->run();
  REQUIRE(fresh->ok);
  CHECK(fresh->ok->server_sequence == 3);
  CHECK_FALSE(fresh->ok->deduplicated);
  CHECK(is(clash->err, errc::conflict));
  REQUIRE(copy->ok);
  CHECK(copy->ok->server_sequence == 3);
  CHECK(copy->ok->deduplicated);
  CHECK(check_against_log(*f.out) == "");
}

TEST_CASE("sim: a retry in a large group takes no token of its bucket") {
  fixture f;
  conversation_limits lim;
  lim.large_group_members = 2; // more than 2 members: large
  lim.large_group_send = bucket_spec{1, 2};
  f.crash(lim);
  REQUIRE(f.change(mc::created, 1, {2, 3}, "large").ok);
  auto a = text(1, "a", "first");
  REQUIRE(f.ask(send_atom::value, a).ok);
  REQUIRE(f.ask(send_atom::value, text(2, "b", "second")).ok);
  // The bucket is empty (time stands): new sends are refused, retries of
  // accepted ones answered.
  CHECK(is(f.ask(send_atom::value, text(3, "c", "third")).err,
           errc::rate_limited));
  for (int i = 0; i < 5; ++i) {
    auto again = f.ask(send_atom::value, a);
    REQUIRE(again.ok);
    CHECK(again.ok->deduplicated);
  }
}
