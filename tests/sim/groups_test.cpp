// Groups under the test coordinator: who may change the membership, what
// each change does, retried changes, the size and send limits, receipt
// aggregates (group_fixture.hpp has the world; groups_race_test.cpp races
// sends against changes).

#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "runtime/core/errors.hpp"
#include "group_fixture.hpp"

using namespace parley;
using namespace parley::group_sim;
namespace mc = parley::membership_change;

TEST_CASE("sim: group rules: admins manage, members see from their join to "
          "their removal, the membership survives a restart") {
  fixture f;
  // Created by 1 with 2 and 3: one event, to all three.
  auto created = f.change(mc::created, 1, {2, 3}, "friends");
  REQUIRE(created.ok);
  CHECK(created.ok->server_sequence == 1);
  CHECK(f.to_of(1) == std::set<user_id>{1, 2, 3});
  // Creating it again, or with no name: refused.
  CHECK(is(f.change(mc::created, 5, {}, "again").err, errc::conflict));
  // A non-admin cannot remove others or add anyone.
  CHECK(is(f.change(mc::removed, 2, {3}).err, errc::forbidden));
  CHECK(is(f.change(mc::added, 2, {4}).err, errc::forbidden));
  // An outsider cannot change anything or send.
  CHECK(is(f.change(mc::added, 9, {4}).err, errc::not_member));
  CHECK(is(f.send(9).err, errc::not_member));
  // Clients cannot forge membership or system messages.
  CHECK(is(f.send(1, message_kind_membership).err, errc::bad_request));
  CHECK(is(f.send(1, message_kind_system).err, errc::bad_request));
  // 2 and 3 chat; then 1 adds 4, who sees nothing from before.
  REQUIRE(f.send(2).ok); // 2
  REQUIRE(f.send(3).ok); // 3
  auto added = f.change(mc::added, 1, {4});
  REQUIRE(added.ok);
  CHECK(added.ok->server_sequence == 4);
  CHECK(f.to_of(2) == std::set<user_id>{1, 2, 3});
  CHECK(f.to_of(4) == std::set<user_id>{1, 2, 3, 4});
  // Adding members again changes nothing: refused.
  CHECK(is(f.change(mc::added, 1, {2, 4}).err, errc::bad_request));
  // 1 removes 2: 2 gets the removal, nothing after, and cannot send.
  REQUIRE(f.change(mc::removed, 1, {2}).ok); // 5
  CHECK(f.to_of(5) == std::set<user_id>{1, 2, 3, 4});
  CHECK(is(f.send(2).err, errc::not_member));
  auto after = f.send(4);
  REQUIRE(after.ok);
  CHECK(f.to_of(after.ok->server_sequence) == std::set<user_id>{1, 3, 4});
  // The only admin cannot leave the others without an admin; promote 3,
  // then 1 may leave. Demoting the last admin is refused.
  CHECK(is(f.change(mc::left, 1, {}).err, errc::forbidden));
  CHECK(is(f.change(mc::demoted, 1, {1}).err, errc::forbidden));
  REQUIRE(f.change(mc::promoted, 1, {3}).ok);
  auto left = f.change(mc::left, 1, {});
  REQUIRE(left.ok);
  CHECK(f.to_of(left.ok->server_sequence) == std::set<user_id>{1, 3, 4});
  // 3 is the admin now and can rename; 4 cannot.
  CHECK(is(f.change(mc::renamed, 4, {}, "x").err, errc::forbidden));
  REQUIRE(f.change(mc::renamed, 3, {}, "best friends").ok);
  // Renaming to the same name (a retried rename) writes no second event.
  CHECK(is(f.change(mc::renamed, 3, {}, "best friends").err,
           errc::bad_request));
  // A direct-conversation join is refused on a group.
  {
    auto err = std::make_shared<caf::error>();
    auto hdl = f.actor;
    f.sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, caf::infinite, caf::join_atom::value, user_id{8})
        .then([](sequence) {}, [=](caf::error& e) { *err = e; });
    });
    f.sched->run();
    CHECK(is(*err, errc::forbidden));
  }
  // After a crash the conversation knows the same members and roles.
  f.crash();
  CHECK(is(f.send(1).err, errc::not_member));
  CHECK(is(f.change(mc::removed, 4, {3}).err, errc::forbidden));
  REQUIRE(f.change(mc::added, 3, {2}).ok); // 2 comes back: a new window
  auto back = f.send(2);
  REQUIRE(back.ok);
  CHECK(f.to_of(back.ok->server_sequence) == std::set<user_id>{2, 3, 4});
  CHECK(check_against_log(*f.out) == "");
}

TEST_CASE("sim: a group change retried with its request id changes nothing "
          "more and gets the first answer, also after a restart") {
  fixture f;
  REQUIRE(f.change(mc::created, 1, {2}, "g").ok);
  auto keyed = [&](int32_t kind, user_id who, device_id dev,
                   std::vector<user_id> targets, std::string id) {
    return group_change{kind, who, dev, std::move(targets), {}, {},
                        std::move(id)};
  };
  auto events = [&] {
    std::set<sequence> seqs;
    for (auto& d : *f.out)
      if (d.msg.kind == message_kind_membership)
        seqs.insert(d.msg.seq);
    return seqs.size();
  };
  auto first = f.ask(group_atom::value, keyed(mc::added, 1, 1, {3}, "r-1"));
  REQUIRE(first.ok);
  CHECK_FALSE(first.ok->deduplicated);
  CHECK(first.ok->server_sequence == 2);
  // The retry, from another device of the same user: the first answer.
  auto again = f.ask(group_atom::value, keyed(mc::added, 1, 2, {3}, "r-1"));
  REQUIRE(again.ok);
  CHECK(again.ok->deduplicated);
  CHECK(again.ok->server_sequence == 2);
  CHECK(again.ok->server_message_id == first.ok->server_message_id);
  CHECK(events() == 2);
  // Without an id the same change is refused, as before.
  CHECK(is(f.change(mc::added, 1, {3}).err, errc::bad_request));
  // Two copies in flight at once: one change, both answered with it.
  auto a = f.fire(group_atom::value, keyed(mc::promoted, 1, 1, {2}, "r-2"));
  auto b = f.fire(group_atom::value, keyed(mc::promoted, 1, 2, {2}, "r-2"));
  f.sched->run();
  REQUIRE(a->ok);
  REQUIRE(b->ok);
  CHECK(a->ok->server_sequence == 3);
  CHECK(b->ok->server_sequence == 3);
  CHECK(a->ok->deduplicated != b->ok->deduplicated);
  CHECK(events() == 3);
  // Another user's change with the same id is its own change.
  auto other = f.ask(group_atom::value, keyed(mc::removed, 2, 1, {3}, "r-1"));
  REQUIRE(other.ok);
  CHECK_FALSE(other.ok->deduplicated);
  CHECK(other.ok->server_sequence == 4);
  // A send's message id is not a change's request id.
  REQUIRE(f.ask(send_atom::value,
                send_request{fixture::conv, 1, 1, "r-1", 1, "hi"})
            .ok);
  // After a crash the store's record answers the retry, though 3 has
  // left since: nothing is added again.
  f.crash();
  auto after = f.ask(group_atom::value, keyed(mc::added, 1, 1, {3}, "r-1"));
  REQUIRE(after.ok);
  CHECK(after.ok->deduplicated);
  CHECK(after.ok->server_sequence == 2);
  CHECK(events() == 4);
  auto next = f.send(1);
  REQUIRE(next.ok);
  CHECK(next.ok->server_sequence == 6);
  CHECK(f.to_of(6) == std::set<user_id>{1, 2});
  CHECK(check_against_log(*f.out) == "");
}

TEST_CASE("sim: the group size limit counts current members") {
  fixture f;
  f.crash(3);
  CHECK(is(f.change(mc::created, 1, {2, 3, 4}, "big").err, errc::too_large));
  REQUIRE(f.change(mc::created, 1, {2, 3}, "full").ok);
  CHECK(is(f.change(mc::added, 1, {4}).err, errc::too_large));
  REQUIRE(f.change(mc::removed, 1, {3}).ok);
  CHECK(f.change(mc::added, 1, {4}).ok);
}

TEST_CASE("sim: one change names at most max_change_targets members (its "
          "event must fit any frame the server sends)") {
  fixture f;
  REQUIRE(f.change(mc::created, 1, {2}, "g").ok);
  auto many = [](user_id from, size_t n) {
    std::vector<user_id> ids;
    for (size_t i = 0; i < n; ++i)
      ids.push_back(from + i);
    return ids;
  };
  CHECK(is(f.change(mc::added, 1, many(10, max_change_targets + 1)).err,
           errc::too_large));
  CHECK(f.change(mc::added, 1, many(10, max_change_targets)).ok);
  CHECK(check_against_log(*f.out) == "");
}

TEST_CASE("sim: a large group's sends are limited per group, small ones "
          "not") {
  fixture f;
  conversation_limits lim;
  lim.large_group_members = 3; // more than 3 members: large
  lim.large_group_send = bucket_spec{1, 2};
  f.crash(lim);
  REQUIRE(f.change(mc::created, 1, {2, 3}, "small").ok);
  for (int i = 0; i < 5; ++i)
    CHECK(f.send(2).ok); // 3 members: not limited
  REQUIRE(f.change(mc::added, 1, {4}).ok);
  CHECK(f.send(2).ok);
  CHECK(f.send(3).ok);
  auto refused = f.send(4); // the group's bucket is empty (time stands)
  REQUIRE(is(refused.err, errc::rate_limited));
  // Hints follow the limiter's rule: the wait for the next token, the
  // refusals ahead, and a jitter within its own slot, so members refused
  // together are told one moment each, a token apart.
  auto hint = [](const caf::error& e) {
    return e.context().get_as<uint64_t>(1);
  };
  CHECK(hint(refused.err) >= 1000);
  CHECK(hint(refused.err) <= 2000);
  for (user_id u : {1, 2, 3}) {
    auto again = f.send(u);
    REQUIRE(is(again.err, errc::rate_limited));
    auto slot = 1000 * uint64_t(u + 1);
    CHECK(hint(again.err) >= slot);
    CHECK(hint(again.err) <= slot + 1000);
  }
  // Nothing refused reached anyone.
  CHECK(check_against_log(*f.out) == "");
  CHECK(f.out->size() == 9);
}

TEST_CASE("sim: group receipts reach the sender as aggregates, one per "
          "burst, and members' cursors only their own devices") {
  fixture f;
  REQUIRE(f.change(mc::created, 1, {2, 3, 4, 5, 6, 7, 8, 9, 10}, "ten").ok);
  auto sent = f.send(1);
  REQUIRE(sent.ok);
  auto s = sent.ok->server_sequence; // 2
  auto receipt = [&](user_id u, int32_t kind) {
    caf::anon_send(f.actor, receipt_atom::value, u, device_id{1}, kind, s,
                   true);
  };
  // A burst: five members have it, two of them read it.
  for (user_id u = 2; u <= 6; ++u)
    receipt(u, 1);
  receipt(2, 2);
  receipt(3, 2);
  f.sched->run();
  std::vector<receipt_pushed> aggregates;
  for (auto& r : *f.receipts) {
    if (r.ev.user == 0) {
      aggregates.push_back(r);
      continue;
    }
    // A member's own cursor goes to that member's devices only.
    CHECK(r.to == std::vector<user_id>{r.ev.user});
  }
  REQUIRE(aggregates.size() == 1);
  CHECK(aggregates[0].to == std::vector<user_id>{1});
  CHECK(aggregates[0].ev.seq == s);
  CHECK(aggregates[0].ev.delivered_count == 5);
  CHECK(aggregates[0].ev.read_count == 2);
  CHECK(aggregates[0].ev.member_count == 9);
  // The sender's own cursors do not count; repeats change nothing and
  // push nothing; more reads push a new aggregate.
  f.receipts->clear();
  caf::anon_send(f.actor, receipt_atom::value, user_id{1}, device_id{1},
                 int32_t{2}, s, true);
  receipt(2, 2);
  f.sched->run();
  for (auto& r : *f.receipts)
    CHECK(r.ev.user != 0);
  f.receipts->clear();
  for (user_id u = 7; u <= 10; ++u)
    receipt(u, 2);
  f.sched->run();
  aggregates.clear();
  for (auto& r : *f.receipts)
    if (r.ev.user == 0)
      aggregates.push_back(r);
  REQUIRE(aggregates.size() == 1);
  CHECK(aggregates[0].ev.delivered_count == 9); // a read implies delivery
  CHECK(aggregates[0].ev.read_count == 6);
  // After a restart the counts are rebuilt from the stored cursors.
  f.crash();
  REQUIRE(f.send(1).ok); // 3: becomes user 1's latest
  f.receipts->clear();
  caf::anon_send(f.actor, receipt_atom::value, user_id{4}, device_id{1},
                 int32_t{2}, sequence{3}, true);
  f.sched->run();
  aggregates.clear();
  for (auto& r : *f.receipts)
    if (r.ev.user == 0)
      aggregates.push_back(r);
  REQUIRE(aggregates.size() == 1);
  CHECK(aggregates[0].ev.seq == 3);
  CHECK(aggregates[0].ev.delivered_count == 1);
  CHECK(aggregates[0].ev.read_count == 1);
}
