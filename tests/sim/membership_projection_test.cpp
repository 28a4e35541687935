// The membership index as a projection (issue 21, item 7;
// runtime/core/membership_events.hpp): group changes and direct joins go
// through a directory whose conversations relay their membership events
// over a faulty hop (seeded: events dropped before or after they are
// applied, delayed and so reordered, copies kept and replayed at the end),
// while conversations crash and the node restarts between commit and
// relay. After quiescence every user's index row ('y') equals the
// conversation's member record ('b'), no event is still owed ('g'), stale
// copies replayed afterwards change nothing, and no write batch ever spans
// two partitions (the writer writes each commit on its own here, and a
// backend checks every batch's keys).

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/accounts.hpp"
#include "actors/directory.hpp"
#include "actors/outbox_relay.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/memory_backend.hpp"
#include "coordinated_system.hpp"
#include "random_schedule.hpp"
#include "sim_world.hpp"

using namespace parley;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t parts = 8;

/// A backend that refuses nothing but records every batch spanning two
/// partitions (the outbox watermark, a lazy put that rides along with
/// whatever commit comes next, is left out).
class partition_audit : public kv_backend {
public:
  explicit partition_audit(std::shared_ptr<kv_backend> kv)
    : kv_(std::move(kv)) {
  }

  std::vector<std::string> problems;
  uint64_t batches = 0;

  caf::error write(const write_batch& batch, bool sync) override {
    std::set<uint32_t> ps;
    for (auto& op : batch.ops) {
      if (keys::table_of(op.key) == keys::outbox_tag)
        continue;
      if (auto s = keys::slot_of_key(op.key))
        ps.insert(partition_of_slot(*s, parts));
    }
    ++batches;
    if (ps.size() > 1)
      problems.push_back("a batch of " + std::to_string(batch.ops.size())
                         + " ops spans " + std::to_string(ps.size())
                         + " partitions");
    return kv_->write(batch, sync);
  }
  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    return kv_->get(key);
  }
  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    return kv_->scan(from, to, f);
  }
  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    return kv_->last(from, to);
  }

private:
  std::shared_ptr<kv_backend> kv_;
};

/// What the faulty hop does, and counts.
struct hop_ctl {
  directory_actor dir;
  std::mt19937_64 rng;
  bool faulty = true;
  double p_drop = 0, p_lost_ack = 0, p_delay = 0, p_copy = 0;
  std::vector<membership_event> copies; ///< replayed at the end
  std::vector<std::pair<caf::response_promise, membership_event>> held;
  uint64_t events = 0, dropped = 0, lost_acks = 0, delayed = 0;

  double uniform() {
    return double(rng() >> 11) / double(1ull << 53);
  }
};

/// Between the conversations and the directory: as deps.memberships.
caf::behavior hop_impl(caf::event_based_actor* self,
                       std::shared_ptr<hop_ctl> c) {
  return {
    [self, c](caf::put_atom, membership_event& ev) -> caf::result<uint64_t> {
      ++c->events;
      if (!c->faulty)
        return self->delegate(c->dir, caf::put_atom::value, ev);
      if (c->uniform() < c->p_copy)
        c->copies.push_back(ev);
      auto u = c->uniform();
      if (u < c->p_drop) {
        ++c->dropped; // never answered: the conversation's request times out
        return caf::delegated<uint64_t>{};
      }
      if (u < c->p_drop + c->p_lost_ack) {
        ++c->lost_acks; // applied, the ack lost
        self->request(c->dir, 10s, caf::put_atom::value, ev)
          .then([](uint64_t) {}, [](caf::error&) {});
        return caf::delegated<uint64_t>{};
      }
      if (u < c->p_drop + c->p_lost_ack + c->p_delay) {
        ++c->delayed;
        c->held.emplace_back(self->make_response_promise(), ev);
        self->delayed_send(self,
                           std::chrono::milliseconds(1 + c->rng() % 3000),
                           caf::tick_atom::value);
        return caf::delegated<uint64_t>{};
      }
      return self->delegate(c->dir, caf::put_atom::value, ev);
    },
    [self, c](caf::tick_atom) {
      if (c->held.empty())
        return;
      auto i = c->held.begin() + c->rng() % c->held.size();
      auto [rp, ev] = std::move(*i);
      c->held.erase(i);
      rp.delegate(caf::actor_cast<caf::actor>(c->dir), caf::put_atom::value,
                  ev);
    },
  };
}

delivery_actor::behavior_type quiet(delivery_actor::pointer) {
  return {
    [](deliver_atom, const stored_message&, const std::vector<user_id>&) {},
    [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

struct world : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  std::shared_ptr<partition_audit> audit
    = std::make_shared<partition_audit>(disk);
  std::shared_ptr<hop_ctl> hop = std::make_shared<hop_ctl>();
  caf::actor hop_actor;
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  directory_actor dir;
  std::mt19937_64 rng;
  std::mt19937_64 sched_rng;
  uint64_t steps = 0, answers = 0, errors = 0, crashes = 0;
  size_t rows = 0; ///< member records compared by the last check

  explicit world(uint64_t seed)
    : rng(seed * 0x9E3779B97F4A7C15ull + 7), sched_rng(seed + 11) {
    hop->rng.seed(seed ^ 0x40Bull);
    auto pick = [&](double p) { return rng() % 2 ? p : 0.0; };
    hop->p_drop = pick(0.2);
    hop->p_lost_ack = pick(0.2);
    hop->p_delay = pick(0.3);
    hop->p_copy = 0.3;
    hop_actor = sys->spawn(hop_impl, hop);
    delivery = sys->spawn(quiet);
    boot();
  }

  void boot() {
    store_writer_limits wl;
    wl.max_batch_ops = 1; // each commit its own write: the audit sees it
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(audit),
                        wl);
    reader = sys->spawn(store_reader_impl, std::shared_ptr<kv_backend>(audit),
                        uint64_t{50});
    conversation_deps deps{writer, reader, delivery,
                           [] { return int64_t{1'700'000'000'000}; },
                           conversation_limits{}, nullptr};
    deps.memberships = caf::actor_cast<membership_sink_actor>(hop_actor);
    dir = sys->spawn(placed_directory_impl, deps, placement::single_node(parts));
    hop->dir = dir;
    sys->spawn(outbox_relay_impl, reader, dir);
  }

  /// A crash of the node: every actor of it ends (held events stay in the
  /// hop, to land on the next incarnation late).
  void restart() {
    for (auto hdl : {caf::actor_cast<caf::actor>(dir),
                     caf::actor_cast<caf::actor>(reader),
                     caf::actor_cast<caf::actor>(writer)})
      caf::anon_send_exit(hdl, caf::exit_reason::kill);
    sched->run();
    boot();
  }

  /// Every actor ends (also after a failed run: the system waits for
  /// them), requests still waiting end by their timeouts.
  ~world() {
    for (auto hdl : {caf::actor_cast<caf::actor>(dir),
                     caf::actor_cast<caf::actor>(reader),
                     caf::actor_cast<caf::actor>(writer), hop_actor,
                     caf::actor_cast<caf::actor>(delivery)})
      caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
    for (int i = 0; i < 100000; ++i) {
      sched->run();
      if (!sched->trigger_timeout())
        break;
    }
  }

  directory_state& dstate() {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(dir);
    return dynamic_cast<caf::stateful_actor<directory_state,
                                            directory_actor::base>&>(*ptr)
      .state;
  }

  /// One client request through the directory; counts its answer.
  template <class T, class... Ts>
  void ask(Ts... xs) {
    auto d = dir;
    sys->spawn([this, d, xs...](caf::event_based_actor* self) {
      self->request(d, 60s, xs...)
        .then([this](T&) { ++answers; }, [this](caf::error&) { ++errors; });
    });
  }

  template <class T>
  struct reply {
    std::optional<T> ok;
    caf::error err;
  };

  /// One request, run until its answer is in.
  template <class T, class... Ts>
  reply<T> ask_now(Ts... xs) {
    auto slot = std::make_shared<reply<T>>();
    auto d = dir;
    sys->spawn([slot, d, xs...](caf::event_based_actor* self) {
      self->request(d, 60s, xs...)
        .then([slot](T& x) { slot->ok = std::move(x); },
              [slot](caf::error& e) { slot->err = e; });
    });
    for (int i = 0; i < 1'000'000 && !slot->ok && !slot->err; ++i)
      if (!step())
        break;
    return *slot;
  }

  bool has(const std::string& key) {
    auto v = disk->get(key);
    return v && v->has_value();
  }

  void random_request(int i) {
    auto user = [&] { return user_id(1 + rng() % 6); };
    if (rng() % 5 == 0) {
      auto a = user(), b = user();
      if (a == b)
        return;
      ask<sequence>(caf::join_atom::value, direct_conversation_id(a, b),
                    rng() % 2 ? a : b);
      return;
    }
    conversation_id g = 1 + rng() % 3;
    group_change c;
    c.change = int32_t(1 + rng() % 6); // created .. demoted
    c.actor = user();
    c.device = 1;
    c.name = "g";
    for (int n = int(rng() % 3); n >= 0; --n)
      c.targets.push_back(user());
    // Some repeats of one request id (retries of a change).
    c.request_id = "r" + std::to_string(rng() % 2 ? i : i / 2);
    ask<send_result>(group_atom::value, g, c);
  }

  bool step() {
    ++steps;
    if (sched->jobs.empty())
      return sched->trigger_timeout();
    sim::run_one_random(*sched, sched_rng);
    return true;
  }

  bool quiesce() {
    for (int i = 0; i < 2'000'000; ++i)
      if (!step())
        return true;
    return false;
  }

  std::string check() {
    if (!audit->problems.empty())
      return audit->problems.front();
    std::map<std::pair<user_id, conversation_id>, std::string> b, y;
    std::string why;
    auto err = store::scan_table(*disk, keys::members_tag,
                                 [&](std::string_view k, std::string_view v) {
                                   auto ids = keys::decode_member(k);
                                   b[{ids->second, ids->first}] = v;
                                   return true;
                                 });
    err = store::scan_table(*disk, keys::memberships_tag,
                            [&](std::string_view k, std::string_view v) {
                              auto ids = keys::decode_membership(k);
                              y[{ids->first, ids->second}] = v;
                              return true;
                            });
    size_t owed = 0;
    err = store::scan_table(*disk, keys::member_events_tag,
                            [&](std::string_view, std::string_view) {
                              ++owed;
                              return true;
                            });
    if (owed > 0)
      return std::to_string(owed) + " membership events still owed";
    rows = b.size();
    for (auto& [k, v] : b) {
      auto i = y.find(k);
      if (i == y.end())
        return "user " + std::to_string(k.first) + " has no index row of "
               + "conversation " + std::to_string(k.second);
      if (i->second != v)
        return "user " + std::to_string(k.first) + "'s index row of "
               + "conversation " + std::to_string(k.second)
               + " differs from the member record";
    }
    if (y.size() != b.size())
      return "index rows without a member record";
    return {};
  }
};

struct totals {
  uint64_t runs = 0, events = 0, dropped = 0, lost_acks = 0, delayed = 0,
           replayed = 0, answers = 0, errors = 0, crashes = 0, restarts = 0,
           batches = 0, rows = 0;
};

totals& grand() {
  static totals t;
  return t;
}

std::string run(uint64_t seed) {
  world w{seed};
  auto& t = grand();
  ++t.runs;
  int requests = 20 + int(w.rng() % 30);
  bool restart = w.rng() % 2;
  uint64_t restart_at = w.rng() % 3000;
  for (int i = 0; i < requests; ++i)
    w.random_request(i);
  for (uint64_t s = 0; s < 6000; ++s) {
    if (restart && s == restart_at) {
      w.restart();
      ++t.restarts;
    }
    if (w.rng() % 200 == 0) { // a conversation crashes (as if it threw)
      auto& convs = w.dstate().conversations;
      if (!convs.empty()) {
        auto i = convs.begin();
        std::advance(i, w.rng() % convs.size());
        caf::anon_send_exit(i->second, caf::exit_reason::unhandled_exception);
        ++w.crashes;
      }
    }
    if (!w.step())
      break;
  }
  w.hop->faulty = false; // heal: held events still land, late
  if (!w.quiesce())
    return "no quiescence after heal (liveness)";
  if (auto why = w.check(); !why.empty())
    return why;
  // Stale and repeated events, long after newer ones: nothing changes.
  for (auto& ev : w.hop->copies)
    caf::anon_send(caf::actor_cast<caf::actor>(w.dir), caf::put_atom::value,
                   ev);
  t.replayed += w.hop->copies.size();
  if (!w.quiesce())
    return "no quiescence after the replay (liveness)";
  if (auto why = w.check(); !why.empty())
    return "after replaying stale events: " + why;
  t.events += w.hop->events;
  t.dropped += w.hop->dropped;
  t.lost_acks += w.hop->lost_acks;
  t.delayed += w.hop->delayed;
  t.answers += w.answers;
  t.errors += w.errors;
  t.crashes += w.crashes;
  t.batches += w.audit->batches;
  t.rows += w.rows;
  return {};
}

} // namespace

TEST_CASE("sim: membership events dropped, delayed, repeated and replayed "
          "stale across crashes leave every index row equal to its member "
          "record, written one partition per batch") {
  sim::for_each_seed("sim: membership events*", 1000, 150, run);
  auto& t = grand();
  MESSAGE("membership projection: " << t.runs << " runs, " << t.events
          << " events (" << t.dropped << " dropped, " << t.lost_acks
          << " acks lost, " << t.delayed << " delayed), " << t.replayed
          << " stale copies replayed, " << t.answers << " answers, "
          << t.errors << " errors, " << t.crashes << " conversation crashes, "
          << t.restarts << " node restarts, " << t.batches
          << " batches audited, " << t.rows
          << " index rows equal to their member records");
  if (std::getenv("PARLEY_SIM_SEEDS") == nullptr) {
    CHECK(t.dropped > 0);
    CHECK(t.lost_acks > 0);
    CHECK(t.delayed > 0);
    CHECK(t.replayed > 0);
    CHECK(t.restarts > 0);
    CHECK(t.crashes > 0);
    CHECK(t.rows > 10 * t.runs);
  }
}

TEST_CASE("sim: a membership change is answered once its members' index "
          "rows are written, with a retryable error if they are not, and "
          "its retry with the same request id gets the same result") {
  world w{1};
  w.hop->p_drop = 1; // every event lost until healed
  w.hop->p_lost_ack = w.hop->p_delay = w.hop->p_copy = 0;
  conversation_id g = 7;
  group_change c{membership_change::created, 1, 1, {2, 3}, "g", "",
                 "create-1"};
  auto first = w.ask_now<send_result>(group_atom::value, g, c);
  REQUIRE(first.err);
  CHECK(is(first.err, errc::unavailable));
  // Committed on the conversation's side, owed to the users' side.
  CHECK(w.has(keys::member(g, 2)));
  CHECK_FALSE(w.has(keys::membership(2, g)));
  w.hop->faulty = false;
  auto again = w.ask_now<send_result>(group_atom::value, g, c);
  REQUIRE_MESSAGE(again.ok, caf::to_string(again.err));
  CHECK(again.ok->server_sequence == 1u);
  for (user_id u : {1, 2, 3}) // at the answer: every index row is there
    CHECK(w.has(keys::membership(u, g)));
  // A keyed change: its first answer times out, its retry answers the
  // same sequence once the row is written.
  w.hop->faulty = true;
  group_change add{membership_change::added, 1, 1, {4}, "", "", "add-1"};
  auto lost = w.ask_now<send_result>(group_atom::value, g, add);
  REQUIRE(lost.err);
  CHECK(is(lost.err, errc::unavailable));
  CHECK_FALSE(w.has(keys::membership(4, g)));
  w.hop->faulty = false;
  auto retry = w.ask_now<send_result>(group_atom::value, g, add);
  REQUIRE_MESSAGE(retry.ok, caf::to_string(retry.err));
  CHECK(retry.ok->server_sequence == 2u);
  CHECK(w.has(keys::membership(4, g)));
  // A direct join waits the same way.
  auto conv = direct_conversation_id(5, 6);
  auto joined = w.ask_now<sequence>(caf::join_atom::value, conv, user_id{5});
  REQUIRE_MESSAGE(joined.ok, caf::to_string(joined.err));
  CHECK(w.has(keys::membership(5, conv)));
}
