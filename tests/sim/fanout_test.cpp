// Large-group fan-out under the test coordinator: shards crash at random
// points between batches and are replaced; every online member device
// still gets every message exactly once and in order, the sending device
// none, and offline members nothing.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/device.hpp"
#include "actors/fanout.hpp"
#include "coordinated_system.hpp"
#include "sim_world.hpp"

using namespace parley;

namespace {

/// A connection that records the large-group messages its device actor
/// passes on (the bulk lane).
caf::behavior recording_connection(std::shared_ptr<std::vector<sequence>> got) {
  return {
    [got](fanout_atom, const stored_message& m) { got->push_back(m.seq); },
    [](caf::close_atom, uint32_t, const std::string&) {},
  };
}

delivery_actor::behavior_type ignore_all() {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

} // namespace

TEST_CASE("sim: fan-out shards crashing and restarting deliver every "
          "message to every online member device once, in order") {
  sim::for_each_seed("sim: fan-out shards crashing*", 11000, 120,
                     [](uint64_t seed) -> std::string {
    std::mt19937_64 rng{seed};
    sim::coordinated_system w;
    auto online = std::make_shared<presence>();
    const user_id users = 25;
    // Real device actors (they pass each large-group message on at most
    // once per connection), each holding a recording connection.
    std::map<std::pair<user_id, device_id>,
             std::shared_ptr<std::vector<sequence>>>
      sinks;
    std::vector<caf::actor> to_stop;
    std::set<caf::actor_id> edge; ///< devices and connections
    for (user_id u = 1; u <= users; ++u)
      for (device_id d = 1; d <= 2; ++d) {
        if (rng() % 5 == 0)
          continue; // offline: catches up by sync, nothing pushed
        auto got = std::make_shared<std::vector<sequence>>();
        sinks[{u, d}] = got;
        auto dev = w.sys->spawn(device_impl, device_deps{}, u, d);
        auto conn = w.sys->spawn(recording_connection, got);
        caf::anon_send(dev, caf::join_atom::value, conn);
        online->attach(u, d, conn.address(), dev);
        to_stop.push_back(caf::actor_cast<caf::actor>(dev));
        to_stop.push_back(conn);
        edge.insert(dev.id());
        edge.insert(conn.id());
      }
    fanout_options opts;
    opts.shards = 1 + rng() % 4;
    opts.batch_users = 1 + rng() % 4;
    opts.own_threads = false;
    auto receipts = w.sys->spawn(ignore_all);
    auto fan = w.sys->spawn(fanout_impl,
                            fanout_deps{online, receipts, nullptr}, opts);
    w.sched->run();
    const conversation_id conv = 9;
    const int messages = 5 + static_cast<int>(rng() % 20);
    std::vector<user_id> members;
    for (user_id u = 1; u <= users; ++u)
      members.push_back(u);
    int crashes = 0;
    int sent = 0;
    auto known = std::make_shared<std::vector<caf::actor>>();
    auto& jobs = w.sched->jobs;
    // Devices and connections are not what is under test: they run as their
    // messages come, so that the seed's picks (and the crashes) fall among
    // the fan-out and its shards as before.
    auto run_edges = [&] {
      for (;;) {
        auto i = std::find_if(jobs.begin(), jobs.end(), [&](caf::resumable* r) {
          auto* a = dynamic_cast<caf::abstract_actor*>(r);
          return a != nullptr && edge.count(a->id()) > 0;
        });
        if (i == jobs.end())
          return;
        std::rotate(jobs.begin(), i, i + 1);
        w.sched->run_once();
      }
    };
    for (int guard = 0; guard < 200000; ++guard) {
      run_edges();
      if (sent < messages && rng() % 3 == 0) {
        stored_message m;
        m.conversation = conv;
        m.seq = static_cast<sequence>(++sent);
        m.sender_user = 1;
        m.sender_device = 1;
        caf::anon_send(fan, deliver_atom::value, m, members);
      }
      if (rng() % 10 == 0) {
        // Learn the current shards (answered whenever the scheduler gets
        // to it: no extra steps run here).
        auto hdl = fan;
        auto out = known;
        w.sys->spawn([=](caf::event_based_actor* self) {
          self->request(hdl, caf::infinite, caf::get_atom::value)
            .then([=](std::vector<caf::actor>& xs) { *out = xs; });
        });
      }
      if (!known->empty() && rng() % 8 == 0) {
        // Crash a shard, whatever it is doing (possibly between batches).
        caf::anon_send_exit((*known)[rng() % known->size()],
                            caf::exit_reason::unhandled_exception);
        ++crashes;
      }
      if (jobs.empty()) {
        if (sent == messages)
          break;
        continue;
      }
      auto k = rng() % jobs.size();
      std::rotate(jobs.begin(), jobs.begin() + k, jobs.begin() + k + 1);
      w.sched->run_once();
    }
    w.sched->run();
    caf::anon_send_exit(fan, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(receipts, caf::exit_reason::user_shutdown);
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    w.sched->run();
    std::vector<sequence> all;
    for (int i = 1; i <= messages; ++i)
      all.push_back(static_cast<sequence>(i));
    for (auto& [key, sink] : sinks) {
      auto want = key == std::make_pair(user_id{1}, device_id{1})
                    ? std::vector<sequence>{}
                    : all;
      if (*sink != want) {
        std::string got;
        for (auto s : *sink)
          got += std::to_string(s) + " ";
        return "user " + std::to_string(key.first) + " device "
               + std::to_string(key.second) + " got [" + got + "] of "
               + std::to_string(messages) + " after "
               + std::to_string(crashes) + " shard crashes";
      }
    }
    return {};
  });
}
