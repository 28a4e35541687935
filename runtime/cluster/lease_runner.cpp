#include "runtime/cluster/lease_runner.hpp"

#include <utility>

namespace parley::cluster {

lease_runner::lease_runner(control_plane& cp, lease_keeper_options opts,
                           lease_keeper::fence_callback on_change)
  : keeper_(cp, std::move(opts),
            [this](bool may_write) {
              may_write_ = may_write;
              publish_deadline();
              if (on_change_)
                on_change_(may_write);
            }),
    on_change_(std::move(on_change)) {
  thread_ = std::thread{[this] { run(); }};
}

lease_runner::~lease_runner() {
  stop(true);
}

void lease_runner::stop(bool release) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_ && !thread_.joinable())
      return;
    stopping_ = true;
    release_ = release;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void lease_runner::publish_deadline() {
  auto now = std::chrono::steady_clock::now();
  int64_t at = 0;
  if (keeper_.may_write(now))
    at = std::chrono::duration_cast<std::chrono::nanoseconds>(
           keeper_.fence_deadline().time_since_epoch())
           .count();
  deadline_->store(at);
}

void lease_runner::run() {
  std::unique_lock<std::mutex> lock{mtx_};
  while (!stopping_) {
    lock.unlock();
    // `now` is read before the keeper sends anything (lease_keeper.hpp).
    auto next = keeper_.tick(std::chrono::steady_clock::now());
    publish_deadline();
    lock.lock();
    cv_.wait_until(lock, next, [this] { return stopping_; });
  }
  if (release_) {
    lock.unlock();
    keeper_.release(); // fences through the callback if it was live
  }
}

} // namespace parley::cluster
