#pragma once

// The group tests' world under the test coordinator: one conversation on a
// memory store, its deliveries and receipt pushes recorded, requests fired
// at it and answered when the scheduler runs; and a check of what was
// delivered against the group's own membership events.

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/conversation.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

namespace parley::group_sim {

struct delivered {
  stored_message msg;
  std::set<user_id> to;
};

struct receipt_pushed {
  receipt_event ev;
  std::vector<user_id> to;
};

/// Records every delivery and receipt push it is asked for.
delivery_actor::behavior_type
recorder(delivery_actor::pointer,
         std::shared_ptr<std::vector<delivered>> out,
         std::shared_ptr<std::vector<receipt_pushed>> receipts);

struct answer {
  std::optional<send_result> ok;
  caf::error err;
};

struct fixture : sim::coordinated_system {
  static constexpr conversation_id conv = 77;
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  std::shared_ptr<std::vector<delivered>> out
    = std::make_shared<std::vector<delivered>>();
  std::shared_ptr<std::vector<receipt_pushed>> receipts
    = std::make_shared<std::vector<receipt_pushed>>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  conversation_actor actor;

  fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
    reader = sys->spawn(store_reader_impl, std::shared_ptr<kv_backend>(disk),
                        uint64_t{50});
    delivery = sys->spawn(recorder, out, receipts);
    start();
  }

  ~fixture() {
    for (auto hdl : {caf::actor_cast<caf::actor>(actor),
                     caf::actor_cast<caf::actor>(delivery),
                     caf::actor_cast<caf::actor>(reader),
                     caf::actor_cast<caf::actor>(writer)})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
  }

  void start(size_t max_group_size = 100'000) {
    conversation_limits lim;
    lim.max_group_size = max_group_size;
    start(lim);
  }

  void start(conversation_limits lim) {
    conversation_deps deps{writer, reader, delivery,
                           [] { return int64_t{1'700'000'000'000}; }, lim,
                           nullptr};
    actor = sys->spawn(conversation_impl, conv, deps);
    sched->run();
  }

  void crash(size_t max_group_size = 100'000) {
    conversation_limits lim;
    lim.max_group_size = max_group_size;
    crash(lim);
  }

  /// Kills the conversation (as a crash) and starts it again with `lim`.
  void crash(conversation_limits lim) {
    caf::anon_send_exit(actor, caf::exit_reason::unhandled_exception);
    sched->run();
    start(lim);
  }

  /// Fires a request; its answer lands in the returned slot when the
  /// scheduler gets to it.
  template <class... Ts>
  std::shared_ptr<answer> fire(Ts... args) {
    auto slot = std::make_shared<answer>();
    auto hdl = actor;
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, caf::infinite, args...)
        .then([=](send_result& r) { slot->ok = r; },
              [=](caf::error& e) { slot->err = e; });
    });
    return slot;
  }

  template <class... Ts>
  answer ask(Ts... args) {
    auto slot = fire(args...);
    sched->run();
    return *slot;
  }

  answer change(int32_t kind, user_id actor_user, std::vector<user_id> targets,
                std::string name = {}) {
    return ask(group_atom::value,
               group_change{kind, actor_user, 1, std::move(targets),
                            std::move(name), {}});
  }

  answer send(user_id from, int32_t kind = 1) {
    static int counter = 0;
    return ask(send_atom::value,
               send_request{conv, from, 1, "c" + std::to_string(++counter),
                            kind, "hello"});
  }

  /// Who got the message with sequence `seq`.
  std::set<user_id> to_of(sequence seq) {
    for (auto& d : *out)
      if (d.msg.seq == seq)
        return d.to;
    return {};
  }
};

/// Replays a group's membership events in sequence order and checks each
/// delivery against the membership they define: an event goes to the
/// members after its additions and before its removals (the removed see
/// their removal), any other message to the members at its sequence, and
/// its sender must be one of them. Returns what is wrong, or "".
std::string check_against_log(const std::vector<delivered>& out);

} // namespace parley::group_sim
