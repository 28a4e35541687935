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
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor.hpp>
#include <caf/message.hpp>

namespace parley {

class tick_hub {
public:
  using clock = std::chrono::steady_clock;

  explicit tick_hub(std::chrono::milliseconds period);
  ~tick_hub();

  tick_hub(const tick_hub&) = delete;
  tick_hub& operator=(const tick_hub&) = delete;

  /// Sends `caf::flush_atom` to `who` once `delay` has passed (callers keep
  /// at most one flush pending each).
  void flush_later(caf::actor who, clock::duration delay);

  /// Sends `msg` to `who` once `delay` has passed.
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
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<due> due_;
  std::thread thread_;
};

} // namespace parley
