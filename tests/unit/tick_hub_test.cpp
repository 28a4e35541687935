// tick_hub on real threads: a flush arrives once its delay has passed (at
// the first tick after it), each one once, and none after stop().

#include <doctest/doctest.h>

#include <chrono>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>

#include "actors/tick_hub.hpp"

using namespace parley;
using namespace std::chrono_literals;

TEST_CASE("tick hub sends each flush once, after its delay, and none after "
          "stop") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto me = caf::actor_cast<caf::actor>(self);
  auto flush = caf::make_message(caf::flush_atom::value);
  tick_hub hub{5ms};
  auto t0 = std::chrono::steady_clock::now();
  hub.send_later(me, 40ms, flush);
  hub.send_later(me, 0ms, flush);
  int got = 0;
  std::chrono::steady_clock::duration first{}, second{};
  for (int i = 0; i < 2; ++i)
    self->receive(
      [&](caf::flush_atom) {
        (++got == 1 ? first : second) = std::chrono::steady_clock::now() - t0;
      },
      caf::after(2s) >> [] {});
  REQUIRE(got == 2);
  CHECK(first < 40ms);   // the undelayed one, at the next tick
  CHECK(second >= 40ms); // never early
  CHECK(second < 1s);
  bool extra = false;
  self->receive([&](caf::flush_atom) { extra = true; },
                caf::after(60ms) >> [] {});
  CHECK_FALSE(extra); // each once
  hub.send_later(me, 20ms, flush);
  hub.stop();
  self->receive([&](caf::flush_atom) { extra = true; },
                caf::after(80ms) >> [] {});
  CHECK_FALSE(extra); // dropped by stop()
  hub.stop();         // idempotent
}
