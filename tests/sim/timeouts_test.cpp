// Requests that time out (issue 21, item 5), under the test coordinator.
//
// A stand-in in front of the real store writer (or reader) holds what it
// gets from some request on, past the requester's timeout, and then passes
// it on in order (the batch lands late) or drops it (it never lands); see
// timeout_rig.hpp. Asserted over many seeds: a sender whose commit or
// lookup timed out gets a retryable error; its retries with the same key
// end with the message stored exactly once, gapless, every answer naming
// the stored sequence and every stored message emitted; a delivered-cursor
// write that timed out is written again and lands.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/device.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"
#include "sim_world.hpp"
#include "timeout_rig.hpp"

using namespace parley;
using namespace parley::sim;
using namespace std::chrono_literals;

namespace {

/// Over all seeds (to show the suite is not vacuous).
uint64_t suite_unavailable = 0, suite_timed_out = 0, suite_late = 0;

/// Names the seed if the run crashes (doctest prints it with the crash).
#define PARLEY_SEED_INFO(test, seed)                                          \
  INFO("replay: PARLEY_SIM_SEED=" << (seed)                                   \
                                  << " PARLEY_SIM_SEEDS=1 ./sim_tests -tc='"  \
                                  << (test) << "'")

std::string commit_timeout_run(uint64_t seed) {
  PARLEY_SEED_INFO("sim: a commit that times out*", seed);
  timeout_rig r{seed};
  r.start_directory();
  r.join(100);
  r.join(101);
  if (!r.run())
    return "setup did not finish";
  std::uniform_int_distribution<int> per_client(2, 6);
  int n0 = per_client(r.rng), n1 = per_client(r.rng);
  std::set<std::string> expected;
  std::vector<std::string> c0, c1;
  for (int i = 0; i < n0; ++i)
    c0.push_back("a" + std::to_string(i));
  for (int i = 0; i < n1; ++i)
    c1.push_back("b" + std::to_string(i));
  expected.insert(c0.begin(), c0.end());
  expected.insert(c1.begin(), c1.end());
  auto& p = *r.plan;
  p.armed = true;
  p.pass_commits = static_cast<int>(r.rng() % (n0 + n1));
  p.drop = seed % 2 == 1;
  // Mostly past the commit timeout; sometimes released before it. A
  // conversation's commit times out between timeouts::commit (30 s) and
  // 1.2 times that (its deadline tick), so a hold between those two is
  // left out: it may or may not count as timed out.
  auto ms = r.rng() % 100 < 15 ? 1'000 + r.rng() % 20'000
                               : 37'000 + r.rng() % 60'000;
  p.hold_for = std::chrono::milliseconds(ms);
  r.client(100, c0, 1 + r.rng() % 3);
  r.client(101, c1, 1 + r.rng() % 3);
  if (!r.run())
    return "no quiescence within the step cap";
  if (auto why = r.check(expected); !why.empty())
    return why;
  auto unavailable = r.errors_of(errc::unavailable);
  suite_unavailable += unavailable;
  // Held and then dropped, or held past the timeout: the writer's answer
  // does not come in time, and someone's send was in flight.
  if (p.tagged_commits == 0)
    return "no tagged commit reached the writer (the rig is vacuous)";
  bool timed_out = p.held_commits > 0
                   && (p.drop || p.hold_for > timeouts::commit * 6 / 5);
  suite_timed_out += timed_out ? 1 : 0;
  suite_late += timed_out && !p.drop ? 1 : 0;
  if (timed_out && unavailable == 0)
    return "a commit timed out, but no sender was told UNAVAILABLE";
  if (!timed_out && unavailable > 0)
    return "UNAVAILABLE although every commit was answered in time";
  return {};
}

} // namespace

TEST_CASE("sim: a commit that times out fails its sends retryably, and "
          "their retries store each message once") {
  sim::for_each_seed("sim: a commit that times out*", 21000, 300,
                     commit_timeout_run);
  MESSAGE("runs with a timed-out commit: " << suite_timed_out << " (batch landed late: "
          << suite_late << "); UNAVAILABLE answers: " << suite_unavailable);
  CHECK(suite_late > 0);
  CHECK(suite_timed_out > suite_late);
}

TEST_CASE("sim: an idempotency lookup that times out fails the send "
          "retryably, and its retry stores it once") {
  sim::for_each_seed(
    "sim: an idempotency lookup that times out*", 22000, 20,
    [](uint64_t seed) -> std::string {
      PARLEY_SEED_INFO("sim: an idempotency lookup that times out*", seed);
      timeout_rig r{seed};
      // A conversation with a recent message: the next incarnation looks
      // every key up in the store.
      write_batch b;
      auto now = r.clock()();
      store::add_conversation(b, conv_id, conversation_direct, now);
      store::add_member(b, conv_id, member{100, role_member, 1, 0});
      stored_message m;
      m.conversation = conv_id;
      m.seq = 1;
      m.sender_user = 100;
      m.sender_device = 1;
      m.client_message_id = "old";
      m.sent_at_ms = now;
      m.kind = 1;
      store::add_message(b, m);
      if (auto err = r.disk->write(b, true))
        return "cannot seed the disk";
      *r.lookup_drops = 1 + static_cast<int>(seed % 3);
      auto drops = *r.lookup_drops;
      r.start_directory();
      std::vector<std::string> cmids{"x", "y"};
      r.client(100, cmids, 1 + r.rng() % 2);
      if (!r.run())
        return "no quiescence within the step cap";
      r.seen->emitted.insert(1); // emitted before this run
      if (auto why = r.check({cmids.begin(), cmids.end()}); !why.empty())
        return why;
      size_t timeouts = 0;
      for (auto& [cmid, errs] : r.seen->errors)
        for (auto& e : errs)
          timeouts += e == caf::sec::request_timeout ? 1 : 0;
      if (timeouts != static_cast<size_t>(drops))
        return "expected " + std::to_string(drops) + " timed-out sends, saw "
               + std::to_string(timeouts);
      return {};
    });
}

TEST_CASE("sim: a delivered-cursor write that times out is written again "
          "and lands") {
  sim::for_each_seed(
    "sim: a delivered-cursor write*", 23000, 100,
    [](uint64_t seed) -> std::string {
      PARLEY_SEED_INFO("sim: a delivered-cursor write*", seed);
      timeout_rig r{seed};
      auto& p = *r.plan;
      int acks = 1 + static_cast<int>(r.rng() % 5);
      p.armed = true;
      p.pass_commits = static_cast<int>(r.rng() % acks);
      p.drop = seed % 2 == 1;
      p.hold_for = std::chrono::milliseconds(31'000 + r.rng() % 60'000);
      device_deps deps{r.reader, r.writer};
      auto dev = r.sys->spawn(device_impl, deps, user_id{7}, device_id{1});
      r.others.push_back(caf::actor_cast<caf::actor>(dev));
      // Pushes make the sequences acknowledgeable; then one ack a second.
      for (sequence s = 1; s <= sequence(acks); ++s) {
        stored_message m;
        m.conversation = 5;
        m.seq = s;
        caf::anon_send(dev, deliver_atom::value, m);
      }
      auto answered = std::make_shared<std::vector<sequence>>();
      r.others.push_back(r.sys->spawn([=](caf::event_based_actor* self) {
        for (sequence s = 1; s <= sequence(acks); ++s)
          self->delayed_send(self, std::chrono::seconds(s),
                             again_atom::value, s);
        return caf::behavior{[=](again_atom, sequence s) {
          self->request(dev, caf::infinite, ack_atom::value,
                        conversation_id{5}, s)
            .then([=](sequence got) { answered->push_back(got); });
        }};
      }));
      // The device's connection check ticks forever: stop once the acks
      // are answered and the clock is far past every hold and retry.
      auto horizon = p.hold_for + timeouts::commit + std::chrono::minutes(5);
      if (!r.run([&] { return r.now() > horizon; }))
        return "the step cap was hit";
      if (answered->size() != size_t(acks))
        return "not every ack was answered";
      auto v = r.disk->get(keys::delivered(7, 1, 5));
      if (!v || !*v)
        return "the delivered cursor never landed";
      auto cursor = keys::read_u64(**v, 0).value_or(0);
      if (cursor != sequence(acks))
        return "the delivered cursor is " + std::to_string(cursor)
               + ", expected " + std::to_string(acks);
      if (p.held_commits == 0)
        return "nothing was held (the scenario is vacuous)";
      return {};
    });
}
