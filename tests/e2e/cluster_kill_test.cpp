// kill -9 of the node that owns a busy conversation (issue 22): four
// members on the two other nodes keep sending to a group owned by node 3,
// each with its own clientMessageId sequence and each waiting for every
// answer (a generous bound: a request without an answer is a failure).
// Node 3 is killed while they send: every request still gets an answer,
// an Accepted or a retryable error, which the client retries with the
// same clientMessageId. Node 3 restarted on its data (after the old
// process exited): the retries go through, every Accepted message is in
// the group's history exactly once, gapless and in order, on every member's
// device (sync from sequence 0), and sending an accepted clientMessageId
// again returns its original sequence. The longest wait is printed, not
// asserted.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "cluster_load.hpp"

using namespace parley;
using namespace parley::e2e;

TEST_CASE("cluster_kill9_of_a_busy_owner_every_request_answered_nothing_lost") {
  cluster_options opts;
  opts.extra = {"--parley.no-rate-limits"};
  test_cluster c{opts};
  const node_id owner = 3;
  // Two members on node 1, two on node 2; their own partitions are not
  // node 3's (their devices' mailboxes stay up), the group's is.
  auto users = users_on(c, {1, 1, 2, 2}, "member", owner);
  std::vector<uint64_t> ids;
  for (size_t i = 1; i < users.size(); ++i)
    ids.push_back(users[i].id);
  auto conv = group_on(c, c.port(1), users[0], ids, owner);
  MESSAGE("group " << conv << " owned by node " << owner);

  std::vector<std::unique_ptr<sender>> senders;
  for (size_t i = 0; i < users.size(); ++i)
    senders.push_back(std::make_unique<sender>(
      c.port(i < 2 ? 1 : 2), users[i].token, conv,
      "s" + std::to_string(i) + "-"));
  auto all = [&](auto pred) {
    for (auto& s : senders)
      if (!pred(*s) && !s->failed())
        return false;
    return true;
  };

  // Busy: every sender has had ten accepted.
  CHECK(eventually([&] { return all([](auto& s) { return s.accepted() >= 10; }); }));
  c.kill9(owner); // returns once the process has exited
  MESSAGE("node " << owner << " killed");
  // Every sender hears retryable errors while it is gone.
  std::vector<int> before;
  for (auto& s : senders)
    before.push_back(s->retryable_errors());
  CHECK(eventually([&] {
    for (size_t i = 0; i < senders.size(); ++i)
      if (senders[i]->retryable_errors() < before[i] + 3 && !senders[i]->failed())
        return false;
    return true;
  }, 60000));
  REQUIRE(c.restart(owner));
  CHECK(c.wait_ready());
  MESSAGE("node " << owner << " restarted");
  // Its retries go through and it sends ten more.
  std::vector<int> at_restart;
  for (auto& s : senders)
    at_restart.push_back(s->accepted());
  CHECK(eventually([&] {
    for (size_t i = 0; i < senders.size(); ++i)
      if (senders[i]->accepted() < at_restart[i] + 10 && !senders[i]->failed())
        return false;
    return true;
  }, 60000));
  for (auto& s : senders)
    s->stop();

  int64_t longest = 0;
  for (auto& s : senders) {
    print_stats(*s);
    longest = std::max(longest, s->stats().longest_wait_ms);
    // Every request was answered: accepted or a retryable error.
    CHECK(s->stats().problems.empty());
    CHECK_FALSE(s->failed());
  }
  MESSAGE("longest wait for an answer: " << longest << " ms");

  // An accepted clientMessageId sent again returns its original sequence:
  // the first, each one accepted only after retries, and the last.
  for (auto& s : senders) {
    auto& st = s->stats();
    REQUIRE_FALSE(st.order.empty());
    std::vector<std::string> probe{st.order.front(), st.order.back()};
    for (auto& [cmid, n] : st.retried)
      probe.push_back(cmid);
    for (auto& cmid : probe) {
      auto f = s->resend(cmid);
      REQUIRE(f);
      REQUIRE_MESSAGE(f->has_accepted(), f->DebugString());
      CHECK(f->accepted().server_sequence() == st.accepted.at(cmid));
      CHECK(f->accepted().deduplicated());
    }
  }

  // Every member's device (a sync from 0 through its own node): each
  // accepted message once, gapless, in order; nothing else of ours.
  std::vector<const sender*> all_senders;
  for (auto& s : senders)
    all_senders.push_back(s.get());
  uint64_t head = 0;
  for (size_t i = 0; i < users.size(); ++i) {
    auto problems = check_history(c.port(i < 2 ? 1 : 2), users[i].token, conv,
                                  all_senders, &head);
    for (auto& p : problems)
      MESSAGE(users[i].name << "'s device: " << p);
    CHECK(problems.empty());
  }
  MESSAGE("history head " << head);
  senders.clear();
}
