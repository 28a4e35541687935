#include "actors/tick_hub.hpp"

#include <caf/atom.hpp>
#include <caf/message_id.hpp>
#include <caf/send.hpp>

namespace parley {

tick_hub::tick_hub(std::chrono::milliseconds period, now_fn now)
  : period_(period), now_(std::move(now)), thread_([this] { run(); }) {
}

tick_hub::~tick_hub() {
  stop();
}

void tick_hub::send_later(caf::actor who, clock::duration delay,
                          caf::message msg) {
  std::lock_guard<std::mutex> guard{mtx_};
  due_.push_back({now_() + delay, std::move(who), std::move(msg)});
}

void tick_hub::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
    due_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void tick_hub::run() {
  std::vector<due> now_due;
  std::unique_lock<std::mutex> guard{mtx_};
  while (!stopping_) {
    cv_.wait_for(guard, period_, [this] { return stopping_; });
    if (stopping_)
      break;
    auto now = now_();
    auto keep = due_.begin();
    for (auto& d : due_) {
      if (d.at <= now)
        now_due.push_back(std::move(d));
      else {
        if (&*keep != &d)
          *keep = std::move(d);
        ++keep;
      }
    }
    due_.erase(keep, due_.end());
    guard.unlock();
    for (auto& d : now_due)
      d.who->enqueue(nullptr, caf::make_message_id(), std::move(d.msg),
                     nullptr);
    now_due.clear();
    guard.lock();
  }
}

} // namespace parley
