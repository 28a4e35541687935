#pragma once

// tick_hub: one thread that wakes actors for their coalescing flushes on a
// shared cadence. CAF 0.17's clock thread wakes for every delayed_send (to
// re-arm its wait) and again when it fires; receipt and ack flushes asked
// for thousands a second under load (13,500 clock wake-ups a second with
// receipts on, RESULTS.md issue 4). Here a flush costs a push under a mutex,
// and the thread wakes once per period whatever the number of actors. Due
// times are kept: a flush asked for in `delay` is sent at the first tick
// at or after it (so up to one period late).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/message.hpp>
#include <caf/timespan.hpp>

namespace parley {

class tick_hub {
public:
  using clock = std::chrono::steady_clock;

  /// Reads the time due flushes are measured against.
  using now_fn = std::function<clock::time_point()>;

  /// Ticks every `period`; `now` is the steady clock but in tests.
  explicit tick_hub(std::chrono::milliseconds period, now_fn now = clock::now);
  ~tick_hub();

  tick_hub(const tick_hub&) = delete;
  tick_hub& operator=(const tick_hub&) = delete;

  /// Sends `msg` to `who` once `delay` has passed (callers keep at most one
  /// pending each).
  void send_later(caf::actor who, clock::duration delay, caf::message msg);

  /// Ends the thread; flushes still due are dropped (their actors are
  /// stopping too). Idempotent.
  void stop();

private:
  void run();

  struct due {
    clock::time_point at;
    caf::actor who;
    caf::message msg;
  };

  std::chrono::milliseconds period_;
  now_fn now_;
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<due> due_;
  std::thread thread_;
};

/// Sends `atom` to `self` after `delay`: through `hub` on a real node, with
/// CAF's timer when there is none (simulations run on virtual time).
template <class Self, class Atom>
void send_self_later(Self* self, const std::shared_ptr<tick_hub>& hub,
                     caf::timespan delay, Atom atom) {
  if (hub)
    hub->send_later(caf::actor_cast<caf::actor>(self), delay,
                    caf::make_message(atom));
  else
    self->delayed_send(self, delay, atom);
}

} // namespace parley
