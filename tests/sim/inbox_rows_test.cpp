// Inbox rows owned by the user's partition (issue 21, item 7;
// runtime/core/inbox_rows.hpp). Two inbox actors, one per node, each
// owning half of the partitions: conversations of either node emit message
// and read events to their node's inbox, which sends each partition's rows
// to the partition owner's inbox through a router stand-in that drops,
// delays (so that an older row lands after a newer one), duplicates and
// reorders them, and whose store writers refuse some commits; the seed
// picks which actor runs next. After heal and quiescence every (user,
// conversation) row on the user's node equals a recount from the log on
// the conversation's node, and no batch either inbox wrote spans two
// partitions. A row sent after a newer one never wins.

#include <doctest/doctest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/inbox.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/memory_backend.hpp"
#include "runtime/store/sync_reads.hpp"
#include "coordinated_system.hpp"
#include "random_schedule.hpp"
#include "sim_world.hpp"

using namespace parley;

namespace {

constexpr uint32_t partitions = 4; // node 1: 0 and 1, node 2: 2 and 3

node_id owner_of(uint32_t p) {
  return p < partitions / 2 ? 1 : 2;
}

/// What the inbox asked its writer to commit: batches, and those whose
/// keys lie in more than one partition.
struct batch_audit {
  uint64_t batches = 0, spanning = 0, refused = 0;
  /// Faults on: true refuses the commit (nothing written, a retryable
  /// error to the inbox, which answers its sender with it; if that sender
  /// has stopped waiting, nobody learns of it).
  std::function<bool()> refuse;
};

/// Stands in front of a store writer: checks each commit's batch, then
/// hands it on (the writer answers the inbox).
caf::behavior audited_writer(caf::event_based_actor* self,
                             store_writer_actor writer,
                             std::shared_ptr<batch_audit> audit) {
  return {
    [self, writer, audit](commit_atom a, uint64_t id, uint64_t epoch,
                          write_batch& batch) -> caf::result<uint64_t> {
      std::set<uint32_t> parts;
      for (auto& op : batch.ops)
        if (auto slot = keys::slot_of_key(op.key))
          parts.insert(partition_of_slot(*slot, partitions));
      ++audit->batches;
      if (parts.size() > 1)
        ++audit->spanning;
      if (audit->refuse && audit->refuse()) {
        ++audit->refused;
        return caf::make_error(errc::unavailable, "test: commit refused");
      }
      return self->delegate(writer, a, id, epoch, std::move(batch));
    },
  };
}

struct world : sim::coordinated_system {
  std::mt19937_64 rng;
  bool faults = true;
  std::map<node_id, std::shared_ptr<memory_backend>> disks;
  std::map<node_id, std::shared_ptr<batch_audit>> audits;
  std::map<node_id, inbox_actor> inboxes;
  std::map<node_id, caf::actor> routers;
  std::vector<caf::actor> others;
  uint64_t dropped = 0, delayed = 0, duplicated = 0;

  explicit world(uint64_t seed) : rng(seed) {
    for (node_id n : {1, 2}) {
      disks[n] = std::make_shared<memory_backend>();
      audits[n] = std::make_shared<batch_audit>();
      audits[n]->refuse = [this] { return faults && uniform() < 0.1; };
    }
    for (node_id n : {1, 2})
      routers[n] = sys->spawn(router_impl, this, n);
    for (node_id n : {1, 2}) {
      auto writer = sys->spawn(store_writer_impl,
                               std::shared_ptr<kv_backend>(disks[n]),
                               store_writer_limits{});
      auto audited = sys->spawn(audited_writer, writer, audits[n]);
      others.push_back(caf::actor_cast<caf::actor>(writer));
      others.push_back(audited);
      inboxes[n] = sys->spawn(inbox_impl,
                              std::shared_ptr<kv_backend>(disks[n]),
                              caf::actor_cast<store_writer_actor>(audited),
                              caf::actor_cast<directory_actor>(routers[n]),
                              partitions, false, caf::timespan{0},
                              std::shared_ptr<node_metrics>{});
    }
  }

  ~world() {
    for (auto& [n, a] : inboxes)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& [n, a] : routers)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    for (auto& a : others)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched->run();
  }

  double uniform() {
    return std::uniform_real_distribution<double>{0, 1}(rng);
  }

  memory_backend& disk_of(uint32_t p) {
    return *disks[owner_of(p)];
  }

  /// The directory's part the inbox uses: reads answered by the owner's
  /// store; rows to the owner's inbox, with faults.
  static caf::behavior router_impl(caf::event_based_actor* self, world* w,
                                   node_id n) {
    self->set_default_handler(caf::drop);
    self->set_error_handler([](caf::error&) {});
    return {
      [w](fetch_atom, const conv_reads& r) -> caf::result<conv_answers> {
        auto a = store::answer_conv_reads(w->disk_of(r.partition), r, 50);
        if (!a)
          return a.error();
        return std::move(*a);
      },
      [w](fetch_atom, const user_reads& r) -> caf::result<user_answers> {
        auto a = store::answer_user_reads(w->disk_of(r.partition), r);
        if (!a)
          return a.error();
        return std::move(*a);
      },
      [n](caf::get_atom, placement_key key) {
        route r;
        r.partition = partition_of(key, partitions);
        r.owner = owner_of(r.partition);
        r.local = r.owner == n;
        return r;
      },
      [self, w](caf::put_atom a, inbox_rows& r) -> caf::result<uint64_t> {
        auto to = w->inboxes[owner_of(r.partition)];
        if (w->faults) {
          auto x = w->uniform();
          if (x < 0.1) { // lost, with its ack: the sender times out
            ++w->dropped;
            return self->make_response_promise<uint64_t>();
          }
          if (x < 0.3) { // lands late (after newer rows), its ack lost
            ++w->delayed;
            self->delayed_send(to, std::chrono::milliseconds(w->rng() % 30000),
                               a, std::move(r));
            return self->make_response_promise<uint64_t>();
          }
          if (x < 0.4) { // twice
            ++w->duplicated;
            self->send(to, a, r);
          }
        }
        return self->delegate(to, a, std::move(r));
      },
      [](uint64_t) {}, // answers to the copies sent above
    };
  }

  // -- the workload: conversations on the conversation's node ---------------

  struct conv {
    std::vector<user_id> members;
    sequence head = 0;
    std::map<user_id, sequence> read;
  };
  std::map<conversation_id, conv> convs;

  node_id conv_node(conversation_id c) {
    return owner_of(partition_of(placement_key::conversation(c), partitions));
  }

  void open(conversation_id c, std::vector<user_id> users) {
    write_batch b;
    for (auto u : users)
      store::add_member(b, c, member{u, 0, 1, 0});
    REQUIRE(!disks[conv_node(c)]->write(b, true));
    convs[c].members = users;
  }

  /// An event to the conversation node's inbox (sometimes twice: the
  /// conversation emits at least once).
  template <class... Ts>
  void emit(conversation_id c, Ts... xs) {
    auto to = inboxes[conv_node(c)];
    caf::anon_send(to, xs...);
    if (faults && uniform() < 0.1)
      caf::anon_send(to, xs...);
  }

  void message(conversation_id c, user_id from) {
    auto& cv = convs[c];
    stored_message m;
    m.conversation = c;
    m.seq = ++cv.head;
    m.sender_user = from;
    m.client_message_id = "m" + std::to_string(m.seq);
    m.sent_at_ms = 1'700'000'000'000 + int64_t(m.seq);
    write_batch b;
    store::add_message(b, m);
    REQUIRE(!disks[conv_node(c)]->write(b, true));
    emit(c, deliver_atom::value, m, cv.members);
  }

  void read(conversation_id c, user_id u, sequence s) {
    auto& cur = convs[c].read[u];
    if (s <= cur)
      return;
    cur = s;
    write_batch b;
    store::add_receipt(b, c, receipt_cursor{u, 2, s});
    REQUIRE(!disks[conv_node(c)]->write(b, true));
    receipt_event ev;
    ev.conversation = c;
    ev.user = u;
    ev.kind = 2;
    ev.seq = s;
    emit(c, receipt_atom::value, ev, std::vector<user_id>{u});
  }

  /// Runs `n` steps in the seed's order, firing a timer when idle.
  bool run(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      if (sched->jobs.empty() || (faults && uniform() < 0.02)) {
        if (!sched->trigger_timeout())
          return true; // quiescent
        continue;
      }
      sim::run_one_random(*sched, rng);
    }
    return false;
  }

  /// Every row against a recount from the log; empty if all agree.
  std::string check() {
    for (auto& [c, cv] : convs)
      for (auto u : cv.members) {
        auto where = "user " + std::to_string(u) + " conversation "
                     + std::to_string(c) + ": ";
        auto p = partition_of(placement_key::user(u), partitions);
        auto row = store::load_inbox_entry(disk_of(p), u, c);
        if (!row)
          return where + "unreadable";
        if (cv.head == 0 && cv.read[u] == 0)
          continue;
        if (!*row)
          return where + "no row";
        auto msgs = store::fetch_messages(*disks[conv_node(c)], c, 0, 1000);
        uint64_t unread = 0;
        for (auto& m : *msgs)
          if (m.seq > cv.read[u] && m.sender_user != u)
            ++unread;
        auto& e = **row;
        if (e.head != cv.head || e.read != cv.read[u] || e.unread != unread
            || e.latest_sender != msgs->back().sender_user)
          return where + "row head " + std::to_string(e.head) + " read "
                 + std::to_string(e.read) + " unread "
                 + std::to_string(e.unread) + ", the log: head "
                 + std::to_string(cv.head) + " read "
                 + std::to_string(cv.read[u]) + " unread "
                 + std::to_string(unread);
      }
    return {};
  }
};

struct rows_totals {
  uint64_t runs = 0, batches = 0, spanning = 0, refused = 0, dropped = 0,
           delayed = 0, duplicated = 0;
};

} // namespace

TEST_CASE("sim: inbox rows are written by the user's partition owner, "
          "newest view first, under a lossy, reordering link") {
  rows_totals t;
  sim::for_each_seed("sim: inbox rows are written*", 40000, 300,
                     [&t](uint64_t seed) -> std::string {
    world w{seed};
    std::mt19937_64 rng{seed ^ 0x1B0Cull};
    std::vector<user_id> users{10, 11, 12, 13, 14, 15, 16, 17};
    for (conversation_id c = 1; c <= 4; ++c) {
      std::vector<user_id> us;
      for (auto u : users)
        if (rng() % 3 == 0 || us.size() < 2)
          us.push_back(u);
      w.open(c, us);
    }
    int ops = 20 + int(rng() % 60);
    for (int i = 0; i < ops; ++i) {
      auto c = conversation_id(1 + rng() % 4);
      auto& cv = w.convs[c];
      auto u = cv.members[rng() % cv.members.size()];
      if (rng() % 3 == 0 && cv.head > 0)
        w.read(c, u, 1 + rng() % cv.head);
      else
        w.message(c, u);
      w.run(rng() % 30);
    }
    w.faults = false; // heal
    if (!w.run(2'000'000))
      return "no quiescence after heal";
    ++t.runs;
    for (auto& [n, a] : w.audits) {
      t.batches += a->batches;
      t.spanning += a->spanning;
      t.refused += a->refused;
    }
    t.dropped += w.dropped;
    t.delayed += w.delayed;
    t.duplicated += w.duplicated;
    for (auto& [n, a] : w.audits)
      if (a->spanning > 0)
        return "node " + std::to_string(n) + " wrote a batch spanning "
               "partitions";
    return w.check();
  });
  MESSAGE("inbox rows: " << t.runs << " runs, " << t.batches
                         << " batches written (" << t.spanning
                         << " spanning partitions, " << t.refused
                         << " refused), link: " << t.dropped
                         << " dropped, " << t.delayed << " delayed, "
                         << t.duplicated << " duplicated");
  if (!std::getenv("PARLEY_SIM_SEEDS")) {
    CHECK(t.delayed > 0);
    CHECK(t.dropped > 0);
    CHECK(t.refused > 0);
    CHECK(t.spanning == 0);
  }
}

TEST_CASE("sim: an inbox row sent after a newer one does not win") {
  world w{1};
  w.faults = false;
  user_id u = 10;
  auto p = partition_of(placement_key::user(u), partitions);
  auto owner = w.inboxes[owner_of(p)];
  auto put = [&](sequence head, sequence read, uint64_t unread) {
    inbox_rows r;
    r.partition = p;
    inbox_entry e;
    e.conversation = 1;
    e.head = head;
    e.read = read;
    e.unread = unread;
    r.rows.push_back(inbox_row{u, e});
    caf::anon_send(owner, caf::put_atom::value, r);
    w.run(1000);
    auto row = store::load_inbox_entry(w.disk_of(p), u, 1);
    REQUIRE(row);
    REQUIRE(*row);
    return **row;
  };
  auto a = put(7, 2, 5);
  CHECK(a.head == 7);
  auto b = put(5, 0, 5); // older: dropped
  CHECK(b.head == 7);
  CHECK(b.read == 2);
  auto c = put(7, 1, 6); // same head, older read: dropped
  CHECK(c.read == 2);
  CHECK(c.unread == 5);
  auto d = put(7, 4, 3); // same head, newer read: written
  CHECK(d.read == 4);
  CHECK(d.unread == 3);
}

TEST_CASE("sim: an inbox forgets its cached rows of a partition that moved "
          "away and back") {
  world w{1};
  w.faults = false;
  user_id u = 10;
  auto p = partition_of(placement_key::user(u), partitions);
  auto n = owner_of(p);
  auto owner = w.inboxes[n];
  auto map_at = [&](uint64_t epoch, node_id owner_of_p) {
    partition_map m;
    m.map_epoch = epoch;
    for (uint32_t q = 0; q < partitions; ++q)
      m.owners.push_back(q == p ? owner_of_p : owner_of(q));
    return m;
  };
  auto hand = [&](partition_map m) {
    caf::anon_send(owner, caf::put_atom::value, std::move(m));
    w.run(1000);
  };
  auto put = [&](sequence head) {
    inbox_rows r;
    r.partition = p;
    inbox_entry e;
    e.conversation = 1;
    e.head = head;
    e.unread = head;
    r.rows.push_back(inbox_row{u, e});
    caf::anon_send(owner, caf::put_atom::value, r);
    w.run(1000);
    auto row = store::load_inbox_entry(w.disk_of(p), u, 1);
    REQUIRE(row);
    REQUIRE(*row);
    return (*row)->head;
  };
  hand(map_at(1, n));
  CHECK(put(7) == 7); // cached: head 7
  // The partition leaves; the other owner writes head 9; the range comes
  // back (streamed into this node's store, not through this inbox).
  hand(map_at(2, n == 1 ? 2 : 1));
  write_batch b;
  inbox_entry newer;
  newer.conversation = 1;
  newer.head = 9;
  newer.unread = 9;
  store::add_inbox_entry(b, u, newer);
  REQUIRE_FALSE(w.disk_of(p).write(b, true));
  hand(map_at(3, n));
  CHECK(put(8) == 9); // older than the store's row: not written
  CHECK(put(10) == 10);
}
