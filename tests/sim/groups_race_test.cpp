// Groups under the test coordinator, over many seeds with sends and
// changes racing in random order: every message goes to exactly the
// members at its sequence (as the group's own membership events define
// them), and every accepted send came from a member.

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "group_fixture.hpp"
#include "sim_world.hpp"

using namespace parley;
using namespace parley::group_sim;
namespace mc = parley::membership_change;

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
