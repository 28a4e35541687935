// The node's scheduler on real threads. A sleeping worker is woken only by
// the signal of the thread that queued a job for it (its timed wake-up is
// set to an hour here), so a lost wake-up shows as a request that times
// out; and an idle worker takes jobs queued behind a busy one.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "runtime/scheduler.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

struct node_sched_config : caf::actor_system_config {
  explicit node_sched_config(caf::timespan nap) {
    set("scheduler.max-threads", size_t{2});
    set("work-stealing.relaxed-sleep-duration", nap);
    use_node_scheduler(*this);
  }
};

caf::behavior echo(caf::event_based_actor*) {
  return {[](uint64_t x) { return x + 1; }};
}

} // namespace

TEST_CASE("node scheduler: every job queued from outside wakes its worker") {
  node_sched_config cfg{std::chrono::hours{1}};
  caf::actor_system sys{cfg};
  REQUIRE(runs_node_scheduler(sys));
  auto a = sys.spawn(echo);
  caf::scoped_actor self{sys};
  // One request at a time: the workers run dry and sleep before each.
  uint64_t answered = 0, failed = 0;
  for (uint64_t i = 0; i < 5000; ++i) {
    if (i % 500 == 0)
      std::this_thread::sleep_for(2ms); // deep asleep, not just idle
    self->request(a, std::chrono::seconds(5), i)
      .receive([&](uint64_t r) { answered += r == i + 1; },
               [&](caf::error&) { ++failed; });
    if (failed)
      break;
  }
  CHECK(failed == 0);
  CHECK(answered == 5000);
}

TEST_CASE("node scheduler: jobs from several threads at once all run, once "
          "each") {
  std::atomic<uint64_t> sum{0}, runs{0}; // outlive the actors
  node_sched_config cfg{std::chrono::hours{1}};
  caf::actor_system sys{cfg};
  std::vector<caf::actor> counters;
  for (int i = 0; i < 8; ++i)
    counters.push_back(sys.spawn([&](caf::event_based_actor*) -> caf::behavior {
      return {[&](uint64_t x) {
        sum += x;
        ++runs;
      }};
    }));
  constexpr uint64_t per_thread = 20000;
  std::vector<std::thread> senders;
  for (uint64_t t = 0; t < 4; ++t)
    senders.emplace_back([&, t] {
      for (uint64_t i = 0; i < per_thread; ++i) {
        caf::anon_send(counters[(t + i) % counters.size()], i + 1);
        if (i % 1000 == 0)
          std::this_thread::sleep_for(1ms); // let the workers fall asleep
      }
    });
  for (auto& s : senders)
    s.join();
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (runs < 4 * per_thread && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  CHECK(runs.load() == 4 * per_thread);
  CHECK(sum.load() == 4 * (per_thread * (per_thread + 1) / 2));
  for (auto& c : counters)
    caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("node scheduler: an idle worker takes a job queued behind a busy "
          "one") {
  // Timed wake-ups every millisecond: the idle worker looks for jobs to
  // steal that often.
  node_sched_config cfg{std::chrono::milliseconds{1}};
  // Holds `first` busy until the test has its answer from `second`: only a
  // steal can run `second` meanwhile. Opened on every way out of the test,
  // so that the system can stop.
  struct gate {
    std::mutex mtx;
    std::condition_variable cv;
    bool open = false;
    void release() {
      {
        std::lock_guard<std::mutex> guard{mtx};
        open = true;
      }
      cv.notify_all();
    }
    void wait() {
      std::unique_lock<std::mutex> guard{mtx};
      cv.wait(guard, [this] { return open; });
    }
  };
  auto held = std::make_shared<gate>();
  struct opener {
    std::shared_ptr<gate> g;
    ~opener() {
      g->release();
    }
  };
  caf::actor_system sys{cfg};
  opener on_exit{held}; // destroyed before the system
  caf::scoped_actor self{sys};
  auto me = caf::actor_cast<caf::actor>(self);
  auto second = sys.spawn([me](caf::event_based_actor* s) -> caf::behavior {
    return {[=](uint64_t x) { s->send(me, x); }};
  });
  auto first = sys.spawn([=](caf::event_based_actor* s) -> caf::behavior {
    return {[=](uint64_t x) {
      // Queued on this worker's own queue, then this worker is held up.
      s->send(second, x);
      held->wait();
    }};
  });
  // `second` has run once and waits for mail: the job that `first` queues
  // is its only way to run again.
  uint64_t got = 0;
  caf::anon_send(second, uint64_t{1});
  self->receive([&](uint64_t x) { got = x; }, caf::after(10s) >> [] {});
  REQUIRE(got == 1);
  caf::anon_send(first, uint64_t{7});
  // Not a bound on speed: without a steal the answer never comes while
  // `first` holds its worker, and the deadline only ends the wait.
  self->receive([&](uint64_t x) { got = x; }, caf::after(30s) >> [] {});
  CHECK(got == 7);
}
