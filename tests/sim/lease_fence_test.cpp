// The store writer's lease fence (issue 22, ownership with fencing; see
// actors/store_writer.hpp): while the node's lease is not live, commits
// into the node's partitions are refused (unavailable) and nothing of them
// lands; the fence's answer comes after everything accepted before it is
// written; a newer live report lifts it, an older one does not. Several
// writers commit while the lease goes down and up at random points, over
// many seeds, under the test coordinator.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/store_writer.hpp"
#include "coordinated_system.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/memory_backend.hpp"

using namespace parley;

namespace {

constexpr uint32_t parts = 4;

/// What the collector saw, in the order the writer sent it.
struct event {
  bool lease = false; ///< a lease answer (generation), else a commit's
  uint64_t generation = 0;
  commit_answer commit;
};

struct fixture : sim::coordinated_system {
  std::shared_ptr<memory_backend> disk = std::make_shared<memory_backend>();
  store_writer_actor writer;
  caf::actor collector; ///< sends everything; gets every answer
  std::shared_ptr<std::vector<event>> log
    = std::make_shared<std::vector<event>>();

  explicit fixture(store_writer_limits limits = {}) {
    writer = sys->spawn(store_writer_impl, std::shared_ptr<kv_backend>(disk),
                        std::move(limits));
    auto out = log;
    collector = sys->spawn([out](caf::event_based_actor*) -> caf::behavior {
      return {
        [out](commit_atom, commit_answer& a) {
          out->push_back({false, 0, std::move(a)});
        },
        [out](uint64_t generation) {
          out->push_back({true, generation, {}});
        },
      };
    });
    sched->run();
  }

  ~fixture() {
    caf::anon_send_exit(collector, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
    sched->run();
  }

  bool on_disk(const std::string& key) {
    auto v = disk->get(key);
    return v && v->has_value();
  }
};

/// One writer of the scenario: its keys live in `partition` (-1: meta).
struct writer_model {
  uint64_t id = 0;
  int partition = 0;
  uint64_t epoch = 1;
  uint64_t refused_epoch = 0; ///< highest epoch a refusal fenced
  uint64_t next = 0;          ///< key counter

  std::string key() {
    auto suffix = "w" + std::to_string(id) + "/" + std::to_string(next++);
    if (partition < 0)
      return keys::meta("lease-test-" + suffix);
    return store::partition_range(static_cast<uint32_t>(partition), parts)
             .first
           + suffix;
  }
};

/// One commit sent: what the writer's lease was when it reached it.
struct sent_commit {
  size_t writer = 0;
  uint64_t epoch = 0;
  std::string key;
  bool live_at_writer = true; ///< the last effective report before it
  bool answered = false;
};

/// Runs one seed; returns "" or what went wrong.
std::string run_seed(uint64_t seed) {
  std::mt19937_64 rng(seed);
  fixture f;
  // Odd seeds give no map: then every partitioned key is the node's.
  bool with_map = seed % 2 == 0;
  if (with_map) {
    caf::anon_send(f.writer, caf::put_atom::value, node_id{1},
                   partition_map{1, {1, 1, 2, 2}});
    f.sched->run();
  }
  auto owned = [&](int p) {
    return p >= 0 && (!with_map || p < 2); // node 1 owns 0 and 1
  };
  std::vector<writer_model> writers{
    {101, 0}, {102, 0}, {103, 1}, {104, 2}, {105, -1}};
  std::map<uint64_t, sent_commit> commits; // by tag
  std::vector<std::string> lazy_keys; ///< puts without an answer
  uint64_t tag = 0;
  // The reports sent, in order, and the writer's lease as they imply it.
  std::vector<lease_state> reports;
  lease_state sent_model; // live, generation 0
  uint64_t next_generation = 1;
  // The answers seen so far (the collector's order is the writer's).
  size_t seen = 0, reports_answered = 0;
  lease_state answered_model;
  std::vector<uint64_t> tag_at_report; // the last commit sent before it
  std::map<std::string, uint64_t> tag_of_key;
  std::string problem;
  auto fail = [&](const std::string& what) {
    if (problem.empty())
      problem = what;
  };
  // The writer's own lease (the write hook runs in its handler).
  auto writer_live = [&] {
    auto* ptr = caf::actor_cast<caf::abstract_actor*>(f.writer);
    return dynamic_cast<caf::stateful_actor<store_writer_state,
                                            store_writer_actor::base>&>(*ptr)
      .state.lease.live;
  };
  // Every write: nothing of what reached the writer while its lease was
  // down lands; puts without an answer into its partitions land only
  // while it is live (held meanwhile, written once live again).
  f.disk->fail_write = [&](const write_batch& b) {
    for (auto& op : b.ops) {
      auto i = tag_of_key.find(op.key);
      if (i != tag_of_key.end() && !commits[i->second].live_at_writer)
        fail("a commit that reached a fenced writer was written");
      if (op.value == "lazy" && !writer_live())
        fail("a put without an answer was written while the lease was "
             "not live");
    }
    return false;
  };
  auto check_answers = [&] {
    for (; seen < f.log->size(); ++seen) {
      auto& ev = (*f.log)[seen];
      if (ev.lease) {
        auto k = reports_answered++;
        auto& r = reports.at(k);
        auto newer = r.generation > answered_model.generation;
        auto was_live = answered_model.live;
        if (newer)
          answered_model = r;
        if (ev.generation != answered_model.generation)
          fail("a lease answer names generation "
               + std::to_string(ev.generation));
        // The fence answers after everything accepted before it is
        // written (and answered): nothing more lands once it answers.
        if (newer && !r.live && was_live)
          for (auto& [t, c] : commits)
            if (t <= tag_at_report[k] && !c.answered)
              fail("the fence answered before commit " + std::to_string(t)
                   + ", sent before it, was answered");
        continue;
      }
      auto& c = commits.at(ev.commit.tag);
      auto& w = writers[c.writer];
      c.answered = true;
      auto& err = ev.commit.err;
      if (!err) {
        if (!f.on_disk(c.key))
          fail("an acknowledged commit is not on disk");
        if (!answered_model.live && owned(w.partition))
          fail("a commit was acknowledged between the fence's answer and "
               "the next live answer");
        if (owned(w.partition) && !c.live_at_writer)
          fail("a commit reached a fenced writer and was written");
        continue;
      }
      if (f.on_disk(c.key))
        fail("a refused commit is on disk");
      if (!owned(w.partition))
        fail("a commit outside the node's partitions was refused: "
             + to_string(err));
      else if (is(err, errc::unavailable)) {
        if (c.live_at_writer)
          fail("unavailable while the lease was live");
      } else if (!is(err, errc::storage_fenced)
                 || c.epoch > w.refused_epoch) {
        fail("a refusal that is neither the lease's nor its writer "
             "fence's: "
             + to_string(err));
      }
      w.refused_epoch = std::max(w.refused_epoch, c.epoch);
      w.epoch = std::max(w.epoch, next_epoch(err, c.epoch));
    }
  };
  auto commit = [&](size_t i) {
    auto& w = writers[i];
    auto key = w.key();
    if (owned(w.partition))
      tag_of_key[key] = tag + 1;
    write_batch b;
    b.put(key, "v");
    commits[++tag] = {i, w.epoch, key, sent_model.live};
    caf::send_as(f.collector, f.writer, commit_atom::value,
                 tagged_commit{tag, w.id, w.epoch, std::move(b)});
  };
  auto report = [&](lease_state s) {
    reports.push_back(s);
    tag_at_report.push_back(tag);
    if (s.generation > sent_model.generation)
      sent_model = s;
    caf::send_as(f.collector, f.writer, caf::put_atom::value, s);
  };
  for (int step = 0; step < 300 && problem.empty(); ++step) {
    auto what = rng() % 100;
    if (what < 45) {
      commit(rng() % writers.size());
    } else if (what < 52) {
      auto& w = writers[rng() % 3]; // an owned partition's writer
      auto key = w.key();
      lazy_keys.push_back(key);
      write_batch b;
      b.put(key, "lazy");
      caf::anon_send(f.writer, caf::put_atom::value, b);
    } else if (what < 60) {
      report({!sent_model.live, next_generation++});
    } else if (what < 63 && sent_model.generation > 1) {
      // A delayed report: older than the one in force, ignored.
      report({!sent_model.live, sent_model.generation - 1
                                  - rng() % (sent_model.generation - 1)});
    } else {
      for (auto n = rng() % 6; n > 0 && f.sched->try_run_once(); --n)
        ;
    }
    check_answers();
  }
  f.sched->run();
  check_answers();
  for (auto& [t, c] : commits)
    if (!c.answered)
      fail("commit " + std::to_string(t) + " was never answered");
  // Live again: every writer commits at its bumped epoch, and the puts
  // held while the lease was down are written (the partitions are still
  // the node's).
  report({true, next_generation++});
  f.sched->run();
  check_answers();
  for (auto& k : lazy_keys)
    if (!f.on_disk(k))
      fail("a put without an answer into the node's partition was lost "
           "(held while the lease was down, never written): " + k);
  for (size_t i = 0; i < writers.size(); ++i)
    commit(i);
  f.sched->run();
  check_answers();
  for (size_t t = tag - writers.size() + 1; t <= tag; ++t)
    if (!commits[t].answered || !f.on_disk(commits[t].key))
      fail("a commit after the lease is live again failed");
  return problem;
}

} // namespace

TEST_CASE("sim: while the lease is not live the store writer refuses the "
          "node's partitions' commits and writes nothing of them, a newer "
          "live report lifts the fence, an older one does not") {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    auto problem = run_seed(seed);
    INFO("seed " << seed);
    REQUIRE_MESSAGE(problem.empty(), "seed " << seed << ": " << problem);
  }
}

TEST_CASE("sim: the lease fence in order: answered after what came before "
          "is written, stale reports ignored, meta keys unaffected") {
  fixture f;
  auto [lo, hi] = store::partition_range(0, parts);
  auto send = [&](uint64_t tag, uint64_t writer, uint64_t epoch,
                  std::string key) {
    write_batch b;
    b.put(std::move(key), "v");
    caf::send_as(f.collector, f.writer, commit_atom::value,
                 tagged_commit{tag, writer, epoch, std::move(b)});
  };
  auto lease = [&](bool live, uint64_t generation) {
    caf::send_as(f.collector, f.writer, caf::put_atom::value,
                 lease_state{live, generation});
  };
  send(1, 7, 1, lo + "a"); // accepted before the fence
  lease(false, 2);
  send(2, 7, 1, lo + "b");           // refused: unavailable
  send(3, 8, 1, keys::meta("m"));    // meta: written
  lease(true, 1);                    // stale: ignored
  send(4, 7, 2, lo + "c");           // still refused
  lease(true, 3);
  send(5, 7, 2, lo + "d"); // fenced at 2 by the refusal of 4
  send(6, 7, 3, lo + "e"); // past it: written
  f.sched->run();
  auto& log = *f.log;
  REQUIRE(log.size() == 9);
  CHECK(!log[0].lease);
  CHECK(log[0].commit.tag == 1);
  CHECK(!log[0].commit.err);
  CHECK(log[1].lease);
  CHECK(log[1].generation == 2);
  CHECK(is(log[2].commit.err, errc::unavailable));
  CHECK(!log[3].commit.err);
  CHECK(log[4].generation == 2);
  CHECK(is(log[5].commit.err, errc::unavailable));
  CHECK(log[6].generation == 3);
  CHECK(is(log[7].commit.err, errc::storage_fenced));
  CHECK(!log[8].commit.err);
  CHECK(f.on_disk(lo + "a"));
  CHECK(!f.on_disk(lo + "b"));
  CHECK(f.on_disk(keys::meta("m")));
  CHECK(!f.on_disk(lo + "c"));
  CHECK(!f.on_disk(lo + "d"));
  CHECK(f.on_disk(lo + "e"));
}

TEST_CASE("sim: the store writer fences at the lease thread's deadline "
          "without waiting for a report (a process resumed after SIGSTOP)") {
  auto deadline = std::make_shared<std::atomic<int64_t>>(0);
  auto at = [&](std::chrono::steady_clock::duration from_now) {
    deadline->store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      (std::chrono::steady_clock::now() + from_now)
                        .time_since_epoch())
                      .count());
  };
  store_writer_limits lim;
  lim.lease_deadline = deadline;
  fixture f{lim};
  auto [lo, hi] = store::partition_range(0, parts);
  auto send = [&](uint64_t tag, uint64_t epoch, std::string key) {
    write_batch b;
    b.put(std::move(key), "v");
    caf::send_as(f.collector, f.writer, commit_atom::value,
                 tagged_commit{tag, 7, epoch, std::move(b)});
    f.sched->run();
  };
  at(std::chrono::hours(1)); // renewed: an hour to go
  send(1, 1, lo + "a");
  deadline->store(0); // the lease thread fenced; its report is not here yet
  send(2, 1, lo + "b");
  send(3, 2, keys::meta("m")); // meta keys are not the partitions'
  at(-std::chrono::seconds(1)); // a deadline that has passed
  send(4, 2, lo + "c");
  at(std::chrono::hours(1)); // renewed again
  send(5, 3, lo + "d");
  auto& log = *f.log;
  REQUIRE(log.size() == 5);
  CHECK(!log[0].commit.err);
  CHECK(is(log[1].commit.err, errc::unavailable));
  CHECK(!log[2].commit.err);
  CHECK(is(log[3].commit.err, errc::unavailable));
  CHECK(!log[4].commit.err);
  CHECK(f.on_disk(lo + "a"));
  CHECK(!f.on_disk(lo + "b"));
  CHECK(!f.on_disk(lo + "c"));
  CHECK(f.on_disk(lo + "d"));
  CHECK(f.on_disk(keys::meta("m")));
}

TEST_CASE("sim: a commit accepted before the lease deadline but not written "
          "by then is refused with the rest of its batch, never written "
          "after a later commit of its writer was refused") {
  auto deadline = std::make_shared<std::atomic<int64_t>>(0);
  int64_t now_ns = 1000;
  store_writer_limits lim;
  lim.lease_deadline = deadline;
  lim.lease_clock = [&now_ns] { return now_ns; };
  fixture f{lim};
  auto [lo, hi] = store::partition_range(0, parts);
  auto send = [&](uint64_t tag, uint64_t epoch, std::string key) {
    write_batch b;
    b.put(std::move(key), "v");
    caf::send_as(f.collector, f.writer, commit_atom::value,
                 tagged_commit{tag, 7, epoch, std::move(b)});
  };
  deadline->store(5000);
  send(1, 1, lo + "a");
  send(2, 1, keys::meta("m1")); // meta, in the same batch
  f.sched->run_once();           // the writer accepts 1: its write waits
  f.sched->run_once();           // ... and 2
  now_ns = 6000;                 // the process stalled past the deadline
  send(3, 1, lo + "b");          // refused: the lease lapsed
  f.sched->run();
  auto& log = *f.log;
  REQUIRE(log.size() == 3);
  // 1 and 2 are refused (their batch was not written) before 3 is.
  CHECK(log[0].commit.tag == 1);
  CHECK(is(log[0].commit.err, errc::unavailable));
  CHECK(log[1].commit.tag == 2);
  CHECK(is(log[1].commit.err, errc::unavailable));
  CHECK(log[2].commit.tag == 3);
  // The write of 1 and 2 came first (it was queued) and fenced the writer
  // at epoch 1: 3 is refused as fenced, retryable too.
  CHECK(is(log[2].commit.err, errc::storage_fenced));
  CHECK(!f.on_disk(lo + "a"));
  CHECK(!f.on_disk(keys::meta("m1")));
  CHECK(!f.on_disk(lo + "b"));
  // Renewed: the writer's next epoch is written; the old one stays fenced.
  deadline->store(20000);
  send(4, 1, lo + "c");
  send(5, 2, lo + "d");
  f.sched->run();
  REQUIRE(log.size() == 5);
  CHECK(is(log[3].commit.err, errc::storage_fenced));
  CHECK(!log[4].commit.err);
  CHECK(f.on_disk(lo + "d"));
  // A commit accepted and then caught by the deadline at its write (no
  // later commit to notice it first) is refused too.
  send(6, 2, lo + "e");
  f.sched->run_once();
  now_ns = 30000;
  f.sched->run();
  REQUIRE(log.size() == 6);
  CHECK(is(log[5].commit.err, errc::unavailable));
  CHECK(!f.on_disk(lo + "e"));
  // A later commit that reaches the writer past the deadline before the
  // earlier one's write: the earlier one is refused first, then it.
  deadline->store(50000);
  send(7, 3, lo + "f");
  send(8, 3, lo + "g");
  f.sched->run_once(); // 7 accepted; its write is queued behind 8
  now_ns = 60000;
  f.sched->run();
  REQUIRE(log.size() == 8);
  CHECK(log[6].commit.tag == 7);
  CHECK(is(log[6].commit.err, errc::unavailable));
  CHECK(log[7].commit.tag == 8);
  CHECK(is(log[7].commit.err, errc::unavailable));
  CHECK(!f.on_disk(lo + "f"));
  CHECK(!f.on_disk(lo + "g"));
}
