// Groups under the test coordinator: who may change the membership, what
// each change does, and, over many seeds with sends and changes racing in
// random order, that every message goes to exactly the members at its
// sequence (as the group's own membership events define them) and that
// every accepted send came from a member.

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/conversation.hpp"
#include "actors/errors.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "parley/v1/wire.pb.h"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"
#include "sim_world.hpp"

using namespace parley;
namespace mc = parley::membership_change;

namespace {

struct delivered {
  stored_message msg;
  std::set<user_id> to;
};

struct receipt_pushed {
  receipt_event ev;
  std::vector<user_id> to;
};

delivery_actor::behavior_type
recorder(delivery_actor::pointer,
         std::shared_ptr<std::vector<delivered>> out,
         std::shared_ptr<std::vector<receipt_pushed>> receipts) {
  return {
    [out](deliver_atom, const stored_message& m,
          const std::vector<user_id>& to) {
      out->push_back({m, std::set<user_id>(to.begin(), to.end())});
    },
    [receipts](receipt_atom, const receipt_event& ev,
               const std::vector<user_id>& to) {
      receipts->push_back({ev, to});
    },
  };
}

struct answer {
  std::optional<send_result> ok;
  caf::error err;
};

struct fixture : sim::coordinated_system {
  static constexpr conversation_id conv = 77;
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  std::shared_ptr<std::vector<delivered>> out
    = std::make_shared<std::vector<delivered>>();
  std::shared_ptr<std::vector<receipt_pushed>> receipts
    = std::make_shared<std::vector<receipt_pushed>>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  conversation_actor actor;

  fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
    reader = sys->spawn(store_reader_impl, std::shared_ptr<kv_backend>(disk),
                        uint64_t{50});
    delivery = sys->spawn(recorder, out, receipts);
    start();
  }

  ~fixture() {
    for (auto hdl : {caf::actor_cast<caf::actor>(actor),
                     caf::actor_cast<caf::actor>(delivery),
                     caf::actor_cast<caf::actor>(reader),
                     caf::actor_cast<caf::actor>(writer)})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
  }

  void start(size_t max_group_size = 100'000) {
    conversation_limits lim;
    lim.max_group_size = max_group_size;
    start(lim);
  }

  void start(conversation_limits lim) {
    conversation_deps deps{writer, reader, delivery,
                           [] { return int64_t{1'700'000'000'000}; }, lim,
                           nullptr};
    actor = sys->spawn(conversation_impl, conv, deps);
    sched->run();
  }

  void crash(size_t max_group_size = 100'000) {
    caf::anon_send_exit(actor, caf::exit_reason::unhandled_exception);
    sched->run();
    start(max_group_size);
  }

  /// Fires a request; its answer lands in the returned slot when the
  /// scheduler gets to it.
  template <class... Ts>
  std::shared_ptr<answer> fire(Ts... args) {
    auto slot = std::make_shared<answer>();
    auto hdl = actor;
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, caf::infinite, args...)
        .then([=](send_result& r) { slot->ok = r; },
              [=](caf::error& e) { slot->err = e; });
    });
    return slot;
  }

  template <class... Ts>
  answer ask(Ts... args) {
    auto slot = fire(args...);
    sched->run();
    return *slot;
  }

  answer change(int32_t kind, user_id actor_user, std::vector<user_id> targets,
                std::string name = {}) {
    return ask(group_atom::value,
               group_change{kind, actor_user, 1, std::move(targets),
                            std::move(name), {}});
  }

  answer send(user_id from, int32_t kind = 1) {
    static int counter = 0;
    return ask(send_atom::value,
               send_request{conv, from, 1, "c" + std::to_string(++counter),
                            kind, "hello"});
  }

  /// Who got the message with sequence `seq`.
  std::set<user_id> to_of(sequence seq) {
    for (auto& d : *out)
      if (d.msg.seq == seq)
        return d.to;
    return {};
  }
};

/// Replays a group's membership events in sequence order and checks each
/// delivery against the membership they define: an event goes to the
/// members after its additions and before its removals (the removed see
/// their removal), any other message to the members at its sequence, and
/// its sender must be one of them. Returns what is wrong, or "".
std::string check_against_log(const std::vector<delivered>& out) {
  std::map<sequence, const delivered*> by_seq;
  for (auto& d : out) {
    // A restart re-emits what its watermark did not cover: at least once,
    // but the same message to the same members.
    if (auto i = by_seq.find(d.msg.seq); i != by_seq.end()) {
      if (i->second->to != d.to || i->second->msg.payload != d.msg.payload)
        return "sequence " + std::to_string(d.msg.seq)
               + " delivered twice, differently";
      continue;
    }
    by_seq[d.msg.seq] = &d;
  }
  if (!by_seq.empty() && by_seq.rbegin()->first != by_seq.size())
    return "sequences have a gap";
  std::set<user_id> now;
  std::set<user_id> admins;
  for (auto& [seq, d] : by_seq) {
    auto& m = d->msg;
    std::set<user_id> expect;
    if (m.kind == message_kind_membership) {
      v1::Membership ev;
      if (!ev.ParseFromString(m.payload))
        return "bad membership payload";
      std::set<user_id> targets(ev.target_user_ids().begin(),
                                ev.target_user_ids().end());
      auto actor = ev.actor_user_id();
      if (ev.change() != v1::Membership::CHANGE_CREATED && !admins.count(actor)
          && ev.change() != v1::Membership::CHANGE_LEFT)
        return "a non-admin changed the group at " + std::to_string(seq);
      switch (ev.change()) {
        case v1::Membership::CHANGE_CREATED:
          now = targets;
          now.insert(actor);
          admins = {actor};
          expect = now;
          break;
        case v1::Membership::CHANGE_ADDED:
          now.insert(targets.begin(), targets.end());
          expect = now;
          break;
        case v1::Membership::CHANGE_REMOVED:
        case v1::Membership::CHANGE_LEFT:
          expect = now;
          for (auto u : targets) {
            now.erase(u);
            admins.erase(u);
          }
          break;
        case v1::Membership::CHANGE_PROMOTED:
          admins.insert(targets.begin(), targets.end());
          expect = now;
          break;
        case v1::Membership::CHANGE_DEMOTED:
          for (auto u : targets)
            admins.erase(u);
          expect = now;
          break;
        default:
          expect = now;
      }
    } else {
      if (!now.count(m.sender_user))
        return "message " + std::to_string(seq) + " from non-member "
               + std::to_string(m.sender_user);
      expect = now;
    }
    if (d->to != expect) {
      std::ostringstream os;
      os << "sequence " << seq << " went to {";
      for (auto u : d->to)
        os << u << ' ';
      os << "}, members were {";
      for (auto u : expect)
        os << u << ' ';
      os << "}";
      return os.str();
    }
  }
  return {};
}

} // namespace

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

TEST_CASE("sim: a large group's sends are limited per group, small ones "
          "not") {
  fixture f;
  caf::anon_send_exit(f.actor, caf::exit_reason::unhandled_exception);
  f.sched->run();
  conversation_limits lim;
  lim.large_group_members = 3; // more than 3 members: large
  lim.large_group_send = bucket_spec{1, 2};
  f.start(lim);
  REQUIRE(f.change(mc::created, 1, {2, 3}, "small").ok);
  for (int i = 0; i < 5; ++i)
    CHECK(f.send(2).ok); // 3 members: not limited
  REQUIRE(f.change(mc::added, 1, {4}).ok);
  CHECK(f.send(2).ok);
  CHECK(f.send(3).ok);
  auto refused = f.send(4); // the group's bucket is empty (time stands)
  REQUIRE(is(refused.err, errc::rate_limited));
  CHECK(refused.err.context().get_as<uint64_t>(1) == 1000);
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

TEST_CASE("sim: membership changes racing with sends deliver every message "
          "to exactly the members at its sequence") {
  sim::for_each_seed("sim: membership changes racing*", 9000, 150,
                     [](uint64_t seed) {
    std::mt19937_64 rng{seed};
    fixture f;
    const user_id users = 7;
    REQUIRE(f.change(mc::created, 1, {2, 3}, "race").ok);
    std::vector<std::pair<std::shared_ptr<answer>, user_id>> sends;
    int counter = 0;
    int rounds = 3 + static_cast<int>(rng() % 6);
    for (int r = 0; r < rounds; ++r) {
      int ops = 2 + static_cast<int>(rng() % 12);
      for (int i = 0; i < ops; ++i) {
        user_id u = 1 + rng() % users;
        if (rng() % 3 == 0) {
          static const int32_t kinds[] = {mc::added, mc::added, mc::removed,
                                          mc::left, mc::promoted,
                                          mc::demoted};
          auto kind = kinds[rng() % 6];
          std::vector<user_id> targets;
          for (int t = 0, n = 1 + static_cast<int>(rng() % 2); t < n; ++t)
            targets.push_back(1 + rng() % users);
          f.fire(group_atom::value,
                 group_change{kind, u, 1, targets, {}, {}});
        } else {
          auto slot = f.fire(
            send_atom::value,
            send_request{fixture::conv, u, 1,
                         "s" + std::to_string(++counter), 1, "x"});
          sends.emplace_back(slot, u);
        }
      }
      // Run the jobs in a seed-chosen order, so requests reach the
      // conversation in any order and its replies interleave.
      auto& jobs = f.sched->jobs;
      for (int guard = 0; guard < 100000; ++guard) {
        if (jobs.empty() && !f.sched->trigger_timeout())
          break;
        if (jobs.empty())
          continue;
        auto k = rng() % jobs.size();
        std::rotate(jobs.begin(), jobs.begin() + k, jobs.begin() + k + 1);
        f.sched->run_once();
      }
      if (rng() % 4 == 0)
        f.crash();
    }
    f.sched->run();
    // Every accepted send was delivered, from its sender.
    for (auto& [slot, u] : sends) {
      if (!slot->ok) {
        if (!slot->err)
          return std::string{"a send got no answer"};
        continue;
      }
      int seen = 0;
      for (auto& d : *f.out)
        if (d.msg.seq == slot->ok->server_sequence) {
          ++seen;
          if (d.msg.sender_user != u)
            return std::string{"accepted send delivered as another sender"};
        }
      if (seen == 0)
        return std::string{"accepted send never delivered"};
    }
    return check_against_log(*f.out);
  });
}
