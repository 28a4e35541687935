// The hot paths' tagged requests (runtime/core/tagged_messages.hpp) under
// the test coordinator: they are ordinary messages, which an actor that has
// ended drops silently where a CAF request bounced at once, so no asker may
// be left to its deadline where it got an immediate answer before. A tagged
// send through the directory is answered like a request (also when the
// directory refuses it); one queued behind the conversation's retirement is
// answered before the actor ends; a tagged commit is answered by the store
// writer with its tag, also when fenced.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/directory.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

constexpr node_id here = 1;
constexpr node_id there = 2;
constexpr uint32_t parts = 8;

/// A conversation whose partition is even (here) or odd (there).
conversation_id conv_on(bool even) {
  for (conversation_id c = 1;; ++c)
    if ((partition_of(placement_key::conversation(c), parts) % 2 == 0)
        == even)
      return c;
}

struct fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  directory_actor dir;
  /// What the asker got.
  std::shared_ptr<std::vector<send_answer>> sends
    = std::make_shared<std::vector<send_answer>>();
  std::shared_ptr<std::vector<receipt_answer>> receipts
    = std::make_shared<std::vector<receipt_answer>>();
  std::shared_ptr<std::vector<commit_answer>> commits
    = std::make_shared<std::vector<commit_answer>>();
  caf::actor asker;

  fixture() {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        store_writer_limits{});
    reader = sys->spawn(store_reader_impl, std::shared_ptr<kv_backend>(disk),
                        uint64_t{50});
    delivery = sys->spawn([](delivery_actor::pointer)
                            -> delivery_actor::behavior_type {
      return {
        [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
        [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
      };
    });
    partition_map m;
    m.map_epoch = 1;
    for (uint32_t p = 0; p < parts; ++p)
      m.owners.push_back(p % 2 == 0 ? here : there);
    conversation_deps deps{writer, reader, delivery,
                           [] { return int64_t{1'700'000'000'000}; },
                           conversation_limits{}, nullptr};
    dir = sys->spawn(placed_directory_impl, deps, placement{here, m});
    auto s = sends;
    auto r = receipts;
    auto c = commits;
    asker = sys->spawn([s, r, c](caf::event_based_actor*) -> caf::behavior {
      return {
        [s](send_atom, send_answer& a) { s->push_back(std::move(a)); },
        [r](receipt_atom, receipt_answer& a) { r->push_back(std::move(a)); },
        [c](commit_atom, commit_answer& a) { c->push_back(std::move(a)); },
      };
    });
    sched->run();
  }

  ~fixture() {
    for (auto hdl : {caf::actor_cast<caf::actor>(dir), asker,
                     caf::actor_cast<caf::actor>(delivery),
                     caf::actor_cast<caf::actor>(reader),
                     caf::actor_cast<caf::actor>(writer)})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    sched->run();
  }

  static tagged_send send_to(conversation_id conv, uint64_t tag) {
    return tagged_send{tag, send_request{conv, 1, 1, "m" + std::to_string(tag),
                                         1, "x"}};
  }
};

} // namespace

TEST_CASE("sim: tagged sends and receipts through the directory are answered "
          "to their asker with their tag, a refusal at once") {
  fixture f;
  auto mine = conv_on(true);
  auto theirs = conv_on(false);
  // Nothing exists yet: the conversation answers not_found, the directory
  // unavailable for a partition another node owns (no peer known). An
  // anonymous tagged send gets no answer and harms nothing.
  caf::anon_send(f.dir, send_atom::value, fixture::send_to(mine, 10));
  caf::anon_send(f.dir, send_atom::value, fixture::send_to(theirs, 9));
  caf::send_as(f.asker, f.dir, send_atom::value, fixture::send_to(mine, 11));
  caf::send_as(f.asker, f.dir, send_atom::value, fixture::send_to(theirs, 12));
  caf::send_as(f.asker, f.dir, receipt_atom::value,
               tagged_receipt{13, theirs, 1, 1, 1, 1, true});
  caf::send_as(f.asker, f.dir, receipt_atom::value,
               tagged_receipt{14, mine, 1, 1, 1, 1, true});
  f.sched->run();
  REQUIRE(f.sends->size() == 2);
  for (auto& a : *f.sends) {
    CAPTURE(a.tag);
    if (a.tag == 11)
      CHECK(is(a.err, errc::not_found));
    else
      CHECK((a.tag == 12 && is(a.err, errc::unavailable)));
  }
  REQUIRE(f.receipts->size() == 2);
  for (auto& a : *f.receipts) {
    CAPTURE(a.tag);
    if (a.tag == 13)
      CHECK(is(a.err, errc::unavailable));
    else
      CHECK((a.tag == 14 && is(a.err, errc::not_member)));
  }
}

TEST_CASE("sim: a tagged send queued behind a conversation's retirement is "
          "answered before the actor ends, not dropped") {
  fixture f;
  auto conv = conv_on(true);
  caf::send_as(f.asker, f.dir, send_atom::value, fixture::send_to(conv, 1));
  f.sched->run();
  REQUIRE(f.sends->size() == 1); // not_found; the actor retires in 30 s
  auto ptr = caf::actor_cast<caf::abstract_actor*>(f.dir);
  auto& st = dynamic_cast<caf::stateful_actor<directory_state,
                                              directory_actor::base>&>(*ptr)
               .state;
  REQUIRE(st.conversations.count(conv) == 1);
  auto actor = st.conversations[conv];
  // The retirement is due: its message is in the mailbox (not yet run),
  // and a send the directory handed on lands behind it.
  f.sched->advance_time(31s);
  caf::send_as(f.asker, actor, send_atom::value, fixture::send_to(conv, 2));
  f.sched->run();
  REQUIRE(f.sends->size() == 2);
  CHECK(f.sends->back().tag == 2);
  CHECK(is(f.sends->back().err, errc::not_found));
  // And then it retired all the same: nothing is left in the directory.
  f.sched->advance_time(31s);
  f.sched->run();
  CHECK(st.conversations.empty());
}

TEST_CASE("sim: the store writer answers a tagged commit to its sender with "
          "its tag: the synced write, or the fence that refused it") {
  fixture f;
  write_batch b;
  b.put("k", "v");
  caf::send_as(f.asker, f.writer, commit_atom::value,
               tagged_commit{5, 77, 1, b});
  f.sched->run();
  REQUIRE(f.commits->size() == 1);
  CHECK(f.commits->at(0).tag == 5);
  CHECK(!f.commits->at(0).err);
  CHECK(f.commits->at(0).synced >= 1);
  // A failed write fences writer 77 at epoch 1; its next commit there is
  // refused with the fenced epoch, at once, with its own tag.
  f.disk->fail_write = [](const write_batch&) { return true; };
  caf::send_as(f.asker, f.writer, commit_atom::value,
               tagged_commit{6, 77, 1, b});
  f.sched->run();
  f.disk->fail_write = nullptr;
  caf::send_as(f.asker, f.writer, commit_atom::value,
               tagged_commit{7, 77, 1, b});
  f.sched->run();
  REQUIRE(f.commits->size() == 3);
  CHECK(f.commits->at(1).tag == 6);
  CHECK(is(f.commits->at(1).err, errc::storage_failed));
  CHECK(f.commits->at(2).tag == 7);
  CHECK(is(f.commits->at(2).err, errc::storage_fenced));
  CHECK(next_epoch(f.commits->at(2).err, 1) == 2);
}
