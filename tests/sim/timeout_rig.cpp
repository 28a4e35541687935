#include "timeout_rig.hpp"

#include <chrono>
#include <deque>
#include <sstream>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/store/conversation_store.hpp"
#include "random_schedule.hpp"

namespace parley::sim {

namespace {

// -- the stand-in writer -------------------------------------------------------

struct gate_state {
  store_writer_actor real;
  std::shared_ptr<gate_plan> plan;
  bool holding = false;
  std::deque<std::function<void()>> held; ///< in arrival order
};

using gate_ptr = store_writer_actor::stateful_pointer<gate_state>;

/// Passes `f` on now, or queues it behind what is held (order is kept, as
/// between two actors of one node).
void pass(gate_ptr self, std::function<void()> f) {
  if (self->state.holding)
    self->state.held.push_back(std::move(f));
  else
    f();
}

/// A commit arrived: starts the hold if the plan says so now, and counts
/// it if it is held.
void note_commit(gate_ptr self) {
  auto& st = self->state;
  auto& p = *st.plan;
  if (p.armed && !st.holding && !p.released) {
    if (p.pass_commits > 0) {
      --p.pass_commits;
    } else {
      st.holding = true;
      self->delayed_send(self, p.hold_for, caf::tick_atom::value);
    }
  }
  if (st.holding)
    ++p.held_commits;
}

/// A store writer in front of `real`: the same interface, answered by
/// `real` (delegated; a tagged commit is passed on with its sender kept,
/// so `real` answers the conversation directly), but from the hold on
/// nothing reaches `real` until the release (the tick) passes it all on in
/// order, or drops it.
store_writer_actor::behavior_type
gate_impl(gate_ptr self, store_writer_actor real,
          std::shared_ptr<gate_plan> plan) {
  self->state.real = real;
  self->state.plan = plan;
  return {
    [self](commit_atom, tagged_commit& c) {
      note_commit(self);
      ++self->state.plan->tagged_commits;
      auto from = caf::actor_cast<caf::actor>(self->current_sender());
      pass(self, [self, from, c = std::move(c)]() mutable {
        caf::send_as(from, self->state.real, commit_atom::value,
                     std::move(c));
      });
    },
    [self](commit_atom, uint64_t w, uint64_t e,
           write_batch& b) -> caf::result<uint64_t> {
      note_commit(self);
      auto rp = self->make_response_promise<uint64_t>();
      pass(self, [self, rp, w, e, b = std::move(b)]() mutable {
        rp.delegate(self->state.real, commit_atom::value, w, e, std::move(b));
      });
      return rp;
    },
    [self](load_atom, conversation_id c)
      -> caf::result<conversation_snapshot> {
      auto rp = self->make_response_promise<conversation_snapshot>();
      pass(self, [self, rp, c]() mutable {
        rp.delegate(self->state.real, load_atom::value, c);
      });
      return rp;
    },
    [self](caf::put_atom, write_batch& b) {
      pass(self, [self, b = std::move(b)]() mutable {
        self->send(self->state.real, caf::put_atom::value, std::move(b));
      });
    },
    [self](caf::flush_atom) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      pass(self, [self, rp]() mutable {
        rp.delegate(self->state.real, caf::flush_atom::value);
      });
      return rp;
    },
    [self](stats_atom) -> caf::result<writer_stats> {
      auto rp = self->make_response_promise<writer_stats>();
      return rp.delegate(self->state.real, stats_atom::value);
    },
    [self](caf::put_atom, node_id me,
           partition_map& m) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      return rp.delegate(self->state.real, caf::put_atom::value, me,
                         std::move(m));
    },
    [self](caf::put_atom, lease_state l) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      return rp.delegate(self->state.real, caf::put_atom::value, l);
    },
    [self](caf::tick_atom) { // the release
      auto& st = self->state;
      st.holding = false;
      st.plan->released = true;
      auto held = std::move(st.held);
      st.held.clear();
      if (!st.plan->drop)
        for (auto& f : held)
          f();
    },
  };
}

// -- the stand-in reader -------------------------------------------------------

/// A store reader in front of `real` that drops the first `*drops`
/// idempotency lookups (their askers hear nothing).
store_reader_actor::behavior_type
lookup_gate_impl(store_reader_actor::pointer self, store_reader_actor real,
                 std::shared_ptr<int> drops) {
  return {
    [=](lookup_atom a, conversation_id c, user_id u, device_id d,
        std::string& cmid) -> caf::result<idempotency_hit> {
      auto rp = self->make_response_promise<idempotency_hit>();
      if (*drops > 0) {
        --*drops;
        return rp; // never answered
      }
      return rp.delegate(real, a, c, u, d, std::move(cmid));
    },
    [=](fetch_atom a, conversation_id c, sequence after, uint64_t n)
      -> caf::result<std::vector<stored_message>> {
      auto rp = self->make_response_promise<std::vector<stored_message>>();
      return rp.delegate(real, a, c, after, n);
    },
    [=](outbox_atom a) -> caf::result<std::vector<uint64_t>> {
      auto rp = self->make_response_promise<std::vector<uint64_t>>();
      return rp.delegate(real, a);
    },
    [=](outbox_atom a, uint32_t p, uint32_t n)
      -> caf::result<std::vector<uint64_t>> {
      auto rp = self->make_response_promise<std::vector<uint64_t>>();
      return rp.delegate(real, a, p, n);
    },
    [=](sweep_atom a, conversation_id c, sequence after, int64_t cutoff,
        uint64_t n) -> caf::result<idempotency_sweep> {
      auto rp = self->make_response_promise<idempotency_sweep>();
      return rp.delegate(real, a, c, after, cutoff, n);
    },
    [=](ack_atom a, user_id u, conversation_id c) -> caf::result<sequence> {
      auto rp = self->make_response_promise<sequence>();
      return rp.delegate(real, a, u, c);
    },
    [=](fetch_atom a, conv_reads& r) -> caf::result<conv_answers> {
      auto rp = self->make_response_promise<conv_answers>();
      return rp.delegate(real, a, std::move(r));
    },
    [=](fetch_atom a, user_reads& r) -> caf::result<user_answers> {
      auto rp = self->make_response_promise<user_answers>();
      return rp.delegate(real, a, std::move(r));
    },
  };
}

} // namespace

// -- the rig ---------------------------------------------------------------------

timeout_rig::timeout_rig(uint64_t seed)
  : rng(seed * 0x9E3779B97F4A7C15ull + 7) {
  auto kv = std::shared_ptr<kv_backend>(disk);
  auto real_writer = sys->spawn(store_writer_impl, kv, store_writer_limits{});
  auto real_reader = sys->spawn(store_reader_impl, kv, uint64_t{50});
  writer = sys->spawn(gate_impl, real_writer, plan);
  reader = sys->spawn(lookup_gate_impl, real_reader, lookup_drops);
  others = {caf::actor_cast<caf::actor>(real_writer),
            caf::actor_cast<caf::actor>(real_reader),
            caf::actor_cast<caf::actor>(writer),
            caf::actor_cast<caf::actor>(reader)};
}

timeout_rig::~timeout_rig() {
  if (directory)
    caf::anon_send_exit(directory, caf::exit_reason::user_shutdown);
  for (auto& a : others)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  for (int i = 0; i < 100000 && sched->has_job(); ++i)
    sched->run_once();
}

std::function<int64_t()> timeout_rig::clock() {
  auto* sp = sched;
  return [sp] {
    using namespace std::chrono;
    return 1'700'000'000'000
           + duration_cast<milliseconds>(
               sp->clock().current_time.time_since_epoch())
               .count();
  };
}

void timeout_rig::start_directory() {
  conversation_limits lim;
  lim.idempotency_cache = 8; // small: repeats are looked up in the store
  lim.idempotency_filter = 16;
  lim.sweep_interval_ms = int64_t{1} << 60; // no sweep commits
  auto seen_log = seen;
  auto recorder = sys->spawn([seen_log](delivery_actor::pointer)
                               -> delivery_actor::behavior_type {
    return {
      [seen_log](deliver_atom, const stored_message& m,
                 const std::vector<user_id>&) {
        seen_log->emitted.insert(m.seq);
      },
      [](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
    };
  });
  others.push_back(caf::actor_cast<caf::actor>(recorder));
  directory = sys->spawn(directory_impl,
                         conversation_deps{writer, reader, recorder, clock(),
                                           lim});
}

bool timeout_rig::step() {
  if (!sched->has_job())
    return sched->trigger_timeout();
  run_one_random(*sched, rng);
  return true;
}

bool timeout_rig::run(std::function<bool()> done, uint64_t cap) {
  for (uint64_t i = 0; i < cap; ++i) {
    if (done && sched->jobs.empty() && done())
      return true;
    if (!step())
      return true;
  }
  return false;
}

caf::timespan timeout_rig::now() const {
  return sched->clock().current_time.time_since_epoch();
}

void timeout_rig::join(user_id user) {
  auto dir = directory;
  others.push_back(sys->spawn([dir, user](caf::event_based_actor* self) {
    auto again = std::make_shared<std::function<void()>>();
    *again = [self, dir, user, again] {
      self->request(dir, caf::infinite, caf::get_atom::value, conv_id)
        .then([self, user, again](conversation_actor& c) {
          self->request(c, caf::infinite, caf::join_atom::value, user)
            .then([](sequence) {}, [again](caf::error&) { (*again)(); });
        });
    };
    (*again)();
  }));
}

void timeout_rig::client(user_id user, std::vector<std::string> cmids,
                         size_t window) {
  auto dir = directory;
  auto seen_log = seen;
  auto backoff = std::make_shared<std::mt19937_64>(rng());
  others.push_back(sys->spawn([=](caf::event_based_actor* self) {
    auto next = std::make_shared<size_t>(0);
    auto send = std::make_shared<std::function<void(std::string)>>();
    auto launch_next = [=] {
      if (*next < cmids.size())
        (*send)(cmids[(*next)++]);
    };
    *send = [=](std::string cmid) {
      send_request req;
      req.conversation = conv_id;
      req.sender_user = user;
      req.sender_device = 1;
      req.client_message_id = cmid;
      req.kind = 1;
      req.payload = "payload of " + cmid;
      auto retry = [=](const caf::error& err) {
        seen_log->errors[cmid].push_back(err);
        auto ms = 10 + (*backoff)() % 500;
        self->delayed_send(self, std::chrono::milliseconds(ms),
                           again_atom::value, cmid);
      };
      self->request(dir, caf::infinite, caf::get_atom::value, conv_id)
        .then([=](conversation_actor& c) {
          self->request(c, caf::infinite, send_atom::value, req)
            .then(
              [=](send_result& res) {
                seen_log->answers[cmid].push_back(res);
                launch_next();
              },
              retry);
        });
    };
    for (size_t i = 0; i < window; ++i)
      launch_next();
    return caf::behavior{
      [=](again_atom, std::string& cmid) { (*send)(cmid); },
    };
  }));
}

std::string timeout_rig::check(const std::set<std::string>& expected) const {
  std::ostringstream why;
  auto msgs = store::fetch_messages(*disk, conv_id, 0, 1u << 30);
  if (!msgs)
    return "cannot read the log";
  std::map<std::string, sequence> stored;
  for (size_t i = 0; i < msgs->size(); ++i) {
    auto& m = (*msgs)[i];
    if (m.seq != i + 1) {
      why << "sequence gap: position " << i + 1 << " holds " << m.seq;
      return why.str();
    }
    if (!stored.emplace(m.client_message_id, m.seq).second) {
      why << m.client_message_id << " stored twice (seq "
          << stored[m.client_message_id] << " and " << m.seq << ")";
      return why.str();
    }
    if (!expected.count(m.client_message_id) && m.client_message_id != "old")
      return "unexpected message " + m.client_message_id;
    if (!seen->emitted.count(m.seq)) {
      why << "seq " << m.seq << " was never emitted for delivery";
      return why.str();
    }
  }
  for (auto& cmid : expected) {
    auto a = seen->answers.find(cmid);
    if (a == seen->answers.end() || a->second.empty())
      return cmid + " never answered";
    auto s = stored.find(cmid);
    if (s == stored.end())
      return cmid + " answered but not stored";
    for (auto& res : a->second)
      if (res.server_sequence != s->second) {
        why << cmid << " answered seq " << res.server_sequence
            << " but stored at " << s->second;
        return why.str();
      }
  }
  for (auto& [cmid, errs] : seen->errors)
    for (auto& e : errs) {
      if (e.category() == caf::atom("parley")) {
        if (!retryable(static_cast<errc>(e.code())))
          return cmid + ": non-retryable " + caf::to_string(e);
      } else if (!(e == caf::sec::request_timeout)
                 && !(e == caf::sec::request_receiver_down)) {
        return cmid + ": unexpected error " + caf::to_string(e);
      }
    }
  return {};
}

size_t timeout_rig::errors_of(errc x) const {
  size_t n = 0;
  for (auto& [cmid, errs] : seen->errors)
    for (auto& e : errs)
      n += is(e, x) ? 1 : 0;
  return n;
}

} // namespace parley::sim
