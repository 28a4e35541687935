#include "runtime/scheduler.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/defaults.hpp>
#include <caf/detail/double_ended_queue.hpp>
#include <caf/logger.hpp>
#include <caf/policy/unprofiled.hpp>
#include <caf/resumable.hpp>
#include <caf/settings.hpp>

// CAF's worker loop, instantiated below for this file's policy only, tags
// each job with its actor's id for CAF's log: a dynamic_cast and two logger
// lookups per job, ~1 % of the node's CPU at 15k msg/s. The node logs
// through spdlog and runs CAF's logger quiet, so the tag is dropped here.
#undef CAF_PUSH_AID_FROM_PTR
#define CAF_PUSH_AID_FROM_PTR(unused) static_cast<void>(0)
#include <caf/scheduler/coordinator.hpp>

namespace parley {

namespace {

static_assert(sizeof(std::atomic<int>) == sizeof(int)
                && std::atomic<int>::is_always_lock_free,
              "a futex word must be a plain int");

/// Sleeps while `word` holds `expected`, at most `timeout` (returns at once
/// if it no longer does; may also return early, for no reason).
void futex_wait(std::atomic<int>& word, int expected, caf::timespan timeout) {
  auto ns = std::max<int64_t>(timeout.count(), 0);
  timespec ts{static_cast<time_t>(ns / 1'000'000'000),
              static_cast<long>(ns % 1'000'000'000)};
  ::syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAIT_PRIVATE,
            expected, &ts, nullptr, 0);
}

/// Wakes one thread waiting on `word`.
void futex_wake(std::atomic<int>& word) {
  ::syscall(SYS_futex, reinterpret_cast<int*>(&word), FUTEX_WAKE_PRIVATE, 1,
            nullptr, nullptr, 0);
}

/// The policy `caf::scheduler::coordinator` runs (see the header).
class wake_policy : public caf::policy::unprofiled {
public:
  using queue_type = caf::detail::double_ended_queue<caf::resumable>;

  struct coordinator_data {
    explicit coordinator_data(caf::scheduler::abstract_coordinator*) {
    }
    std::atomic<size_t> next_worker{0};
  };

  struct worker_data {
    explicit worker_data(caf::scheduler::abstract_coordinator* p)
      : nap(caf::get_or(p->system().config(),
                        "work-stealing.relaxed-sleep-duration",
                        caf::defaults::work_stealing::relaxed_sleep_duration)) {
    }

    /// Each worker gets its own (CAF copies one for every worker).
    worker_data(const worker_data& other) : nap(other.nap) {
    }

    queue_type queue;
    /// 1 while the worker may be waiting on it (a futex word).
    std::atomic<int> asleep{0};
    std::minstd_rand rng{std::random_device{}()};
    caf::timespan nap;
  };

  template <class Coordinator>
  void central_enqueue(Coordinator* self, caf::resumable* job) {
    auto n = self->num_workers();
    auto w = self->worker_by_id(d(self).next_worker++ % n);
    w->external_enqueue(job);
  }

  template <class Worker>
  void external_enqueue(Worker* self, caf::resumable* job) {
    auto& wd = d(self);
    wd.queue.append(job);
    // Pairs with the fence in `dequeue`: the worker either sees the job
    // before it waits, or its flag is seen here.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // One of the threads that see the flag clears it and wakes the worker;
    // a worker not yet waiting then does not wait (the word is no longer 1).
    if (wd.asleep.load(std::memory_order_relaxed) == 1
        && wd.asleep.exchange(0) == 1)
      futex_wake(wd.asleep);
  }

  template <class Worker>
  void internal_enqueue(Worker* self, caf::resumable* job) {
    d(self).queue.prepend(job);
  }

  template <class Worker>
  void resume_job_later(Worker* self, caf::resumable* job) {
    d(self).queue.append(job);
  }

  template <class Worker>
  caf::resumable* dequeue(Worker* self) {
    auto& wd = d(self);
    for (;;) {
      if (auto job = wd.queue.take_head())
        return job;
      if (auto job = try_steal(self))
        return job;
      // Announce the sleep, then look once more: a job queued before the
      // announcement was seen is found here (see `external_enqueue`).
      wd.asleep.store(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (wd.queue.empty())
        futex_wait(wd.asleep, 1, wd.nap);
      wd.asleep.store(0, std::memory_order_relaxed);
    }
  }

  template <class Worker, class UnaryFunction>
  void foreach_resumable(Worker* self, UnaryFunction f) {
    while (auto job = d(self).queue.take_head())
      f(job);
  }

  template <class Coordinator, class UnaryFunction>
  void foreach_central_resumable(Coordinator*, UnaryFunction) {
    // Jobs from outside go straight to a worker's queue.
  }

private:
  template <class Worker>
  caf::resumable* try_steal(Worker* self) {
    auto p = self->parent();
    auto n = p->num_workers();
    if (n < 2)
      return nullptr;
    auto victim = d(self).rng() % (n - 1);
    if (victim >= self->id())
      ++victim; // anyone but itself
    // An empty queue is seen without its locks, which its owner needs.
    auto& q = d(p->worker_by_id(victim)).queue;
    return q.empty() ? nullptr : q.take_tail();
  }
};

using node_coordinator = caf::scheduler::coordinator<wake_policy>;

} // namespace

void use_node_scheduler(caf::actor_system_config& cfg) {
  cfg.module_factories.push_back(
    [](caf::actor_system& sys) -> caf::actor_system::module* {
      return new node_coordinator(sys);
    });
}

bool runs_node_scheduler(caf::actor_system& sys) {
  return dynamic_cast<node_coordinator*>(&sys.scheduler()) != nullptr;
}

} // namespace parley
