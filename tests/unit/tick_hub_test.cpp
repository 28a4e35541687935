// tick_hub on a real thread and a test-driven clock: a flush arrives once
// its delay has passed on the hub's clock (never before), each one once, in
// the order asked among those due together, and none after stop(). Nothing
// here measures how long a tick took.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/tick_hub.hpp"

using namespace parley;
using namespace std::chrono_literals;

TEST_CASE("tick hub sends each flush once, once it is due, and none after "
          "stop") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto me = caf::actor_cast<caf::actor>(self);
  // The hub's time moves only when the test moves it (milliseconds).
  auto ms = std::make_shared<std::atomic<int64_t>>(0);
  tick_hub hub{1ms, [ms] {
                 return tick_hub::clock::time_point{
                   std::chrono::milliseconds(ms->load())};
               }};
  auto flush = [&](tick_hub::clock::duration delay, uint64_t tag) {
    hub.send_later(me, delay, caf::make_message(tag));
  };
  // The next flush to arrive (0: none within a generous deadline).
  auto next = [&] {
    uint64_t got = 0;
    self->receive([&](uint64_t tag) { got = tag; },
                  caf::after(10s) >> [] {});
    return got;
  };
  // One tick sends what is due in the order it was asked for: a flush due
  // at once that arrives before #1 proves #1 was not sent up to that tick.
  flush(40ms, 1);
  flush(0ms, 2);
  CHECK(next() == 2);
  flush(0ms, 3);
  CHECK(next() == 3); // #1 is not due at 0 ms
  *ms = 39;
  flush(0ms, 4);
  CHECK(next() == 4); // nor at 39 ms: never early
  *ms = 40;
  CHECK(next() == 1); // due at 40 ms, and sent
  flush(0ms, 5);
  CHECK(next() == 5); // not #1 again: each once
  // Stopped with #6 pending; its time comes, but nothing is sent.
  flush(20ms, 6);
  hub.stop();
  *ms = 1000;
  bool extra = false;
  self->receive([&](uint64_t) { extra = true; },
                caf::after(100ms) >> [] {}); // many periods of the hub
  CHECK_FALSE(extra); // dropped by stop()
  hub.stop();         // idempotent
}
