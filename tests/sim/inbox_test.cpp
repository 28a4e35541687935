// The inbox projection under the test coordinator: a seed-driven workload
// (users in several conversations, messages, read receipts that are dropped
// or repeated, crashes of the inbox actor while events are in flight) ends
// with stored inbox entries equal, field by field, to entries computed from
// the log; unread counts are exact at every quiet point.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/conversation.hpp"
#include "actors/inbox.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"
#include "sim_world.hpp"

using namespace parley;

namespace {

delivery_actor::behavior_type nowhere(delivery_actor::pointer) {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

std::string show(const inbox_entry& e) {
  std::ostringstream os;
  os << "{conv " << e.conversation << " head " << e.head << " read " << e.read
     << " unread " << e.unread << " latest " << e.latest_sender << "@"
     << e.latest_at_ms << " flags " << e.archived << e.pinned << e.muted
     << "}";
  return os.str();
}

struct fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  inbox_supervisor_actor inbox;
  std::map<conversation_id, conversation_actor> convs;
  std::map<conversation_id, std::vector<user_id>> members;
  std::map<conversation_id, sequence> head;
  int64_t now_ms = 1'700'000'000'000;

  fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
    reader = sys->spawn(store_reader_impl, std::shared_ptr<kv_backend>(disk),
                        uint64_t{50});
    delivery = sys->spawn(nowhere);
    inbox = sys->spawn(inbox_supervisor_impl, std::shared_ptr<kv_backend>(disk),
                       writer, false, false, caf::timespan{0},
                       caf::timespan{0}, // hand-off behind the mailbox
                       std::shared_ptr<node_metrics>{});
    sched->run();
  }

  ~fixture() {
    std::vector<caf::actor> all{caf::actor_cast<caf::actor>(inbox),
                                caf::actor_cast<caf::actor>(delivery),
                                caf::actor_cast<caf::actor>(reader),
                                caf::actor_cast<caf::actor>(writer)};
    for (auto& [id, c] : convs)
      all.push_back(caf::actor_cast<caf::actor>(c));
    for (auto& hdl : all)
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
  }

  template <class T, class Handle, class... Ts>
  std::optional<T> ask(Handle hdl, Ts... args) {
    auto out = std::make_shared<std::optional<T>>();
    sys->spawn([=](caf::event_based_actor* self) {
      self->request(hdl, caf::infinite, args...)
        .then([=](T& x) { *out = x; }, [](caf::error&) {});
    });
    sched->run();
    return *out;
  }

  void open(conversation_id id, std::vector<user_id> users) {
    conversation_deps deps{writer,
                           reader,
                           delivery,
                           [this] { return now_ms; },
                           conversation_limits{},
                           nullptr,
                           caf::actor_cast<delivery_actor>(inbox)};
    convs[id] = sys->spawn(conversation_impl, id, deps);
    for (auto u : users)
      REQUIRE(ask<sequence>(convs[id], caf::join_atom::value, u));
    members[id] = users;
  }

  void send(conversation_id id, user_id from) {
    static int counter = 0;
    now_ms += 7;
    send_request req{id, from, 1, "c" + std::to_string(++counter), 1, "x"};
    auto r = ask<send_result>(convs[id], send_atom::value, req);
    REQUIRE(r);
    head[id] = r->server_sequence;
  }

  void read(conversation_id id, user_id user, sequence seq) {
    caf::anon_send(convs[id], receipt_atom::value, user, device_id{1},
                   int32_t{2}, seq,
                   true);
  }

  void crash_inbox() {
    auto worker = ask<inbox_actor>(inbox, caf::get_atom::value);
    REQUIRE(worker);
    caf::anon_send_exit(*worker, caf::exit_reason::unhandled_exception);
  }

  /// Compares every stored entry with the log; returns what differs.
  std::string compare() {
    std::string out;
    for (auto& [conv, users] : members)
      for (auto u : users) {
        auto stored = store::load_inbox_entry(*disk, u, conv);
        auto fresh = store::compute_inbox_entry(*disk, u, conv);
        REQUIRE(stored);
        REQUIRE(fresh);
        // No stored entry is right for a conversation without messages
        // (entries come with activity; the listing computes missing ones).
        if (!*stored && (fresh->head != 0 || fresh->read != 0))
          out += "user " + std::to_string(u) + " has no entry for "
                 + std::to_string(conv) + "; ";
        else if (!*stored)
          continue;
        else if (!(**stored == *fresh))
          out += "user " + std::to_string(u) + ": stored " + show(**stored)
                 + " != log " + show(*fresh) + "; ";
      }
    return out;
  }
};

} // namespace

TEST_CASE("sim: unread counts follow messages and reads") {
  fixture f;
  f.open(1, {1, 2});
  for (int i = 0; i < 5; ++i)
    f.send(1, 1);
  f.send(1, 2);
  auto inbox2 = f.ask<std::vector<inbox_entry>>(f.inbox, caf::get_atom::value,
                                                user_id{2});
  REQUIRE(inbox2);
  REQUIRE(inbox2->size() == 1);
  CHECK((*inbox2)[0].head == 6);
  CHECK((*inbox2)[0].unread == 5); // its own message does not count
  CHECK((*inbox2)[0].latest_sender == 2);
  f.read(1, 2, 3);
  f.sched->run();
  inbox2 = f.ask<std::vector<inbox_entry>>(f.inbox, caf::get_atom::value,
                                           user_id{2});
  CHECK((*inbox2)[0].read == 3);
  CHECK((*inbox2)[0].unread == 2);
  f.read(1, 2, 6);
  f.sched->run();
  CHECK(store::load_inbox_entry(*f.disk, 2, 1)->value().unread == 0);
  // The sender's side: Alice wrote five, Bob one; Alice has 1 unread.
  CHECK(store::load_inbox_entry(*f.disk, 1, 1)->value().unread == 1);
  // Flags stick and order the list: pinned first, then latest activity.
  f.open(2, {2, 3});
  f.send(2, 3);
  auto list = f.ask<std::vector<inbox_entry>>(f.inbox, caf::get_atom::value,
                                              user_id{2});
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].conversation == 2);
  REQUIRE(f.ask<inbox_entry>(f.inbox, caf::put_atom::value, user_id{2},
                             conversation_id{1}, false, true, false));
  list = f.ask<std::vector<inbox_entry>>(f.inbox, caf::get_atom::value,
                                         user_id{2});
  CHECK((*list)[0].conversation == 1);
  CHECK((*list)[0].pinned);
  CHECK_FALSE(f.ask<inbox_entry>(f.inbox, caf::put_atom::value, user_id{2},
                                 conversation_id{9}, false, true, false));
  CHECK(f.compare().empty());
}

TEST_CASE("sim: the incremental inbox equals a rebuild from the log after "
          "crashes and lost receipts") {
  sim::for_each_seed("sim: the incremental inbox*", 9000, 120,
                     [](uint64_t seed) {
    std::mt19937_64 rng{seed};
    fixture f;
    const int users = 5;
    for (conversation_id c = 1; c <= 4; ++c) {
      std::vector<user_id> us;
      for (user_id u = 1; u <= users; ++u)
        if (rng() % 2 || us.size() < 2)
          us.push_back(u);
      f.open(c, us);
    }
    int steps = 20 + static_cast<int>(rng() % 60);
    for (int i = 0; i < steps; ++i) {
      auto c = conversation_id(1 + rng() % 4);
      auto& us = f.members[c];
      auto u = us[rng() % us.size()];
      switch (rng() % 8) {
        case 0:
          f.crash_inbox();
          break;
        case 1:
        case 2: {
          // A read, perhaps repeated, perhaps lost (never sent).
          if (f.head[c] == 0 || rng() % 5 == 0)
            break;
          auto s = 1 + rng() % f.head[c];
          for (int k = 0, n = 1 + static_cast<int>(rng() % 2); k < n; ++k)
            f.read(c, u, s);
          break;
        }
        default: {
          static int counter = 0;
          f.now_ms += 7;
          send_request req{c, u, 1, "s" + std::to_string(++counter), 1, "x"};
          // Sends race with everything else: do not always wait.
          caf::anon_send(f.convs[c], send_atom::value, req);
          f.head[c] += 1;
        }
      }
      f.sched->run(static_cast<size_t>(rng() % 20));
    }
    f.sched->run();
    auto diff = f.compare();
    if (!diff.empty())
      return diff;
    // The listing agrees with the entries, most recent first.
    for (user_id u = 1; u <= users; ++u) {
      auto list = f.ask<std::vector<inbox_entry>>(f.inbox,
                                                  caf::get_atom::value, u);
      if (!list)
        return std::string{"no inbox for a user"};
      for (size_t k = 1; k < list->size(); ++k)
        if ((*list)[k - 1].latest_at_ms < (*list)[k].latest_at_ms)
          return std::string{"inbox not ordered by latest activity"};
    }
    return std::string{};
  });
}
