#include "sim_world.hpp"
#include "random_schedule.hpp"
#include "sim_actors.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include <doctest/doctest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "actors/outbox_relay.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"

namespace parley::sim {

using namespace std::chrono_literals;

namespace {

caf::scheduler::test_coordinator& coordinator(caf::actor_system& sys) {
  return dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
}

void fnv(uint64_t& h, uint64_t x) {
  for (int i = 0; i < 8; ++i) {
    h ^= (x >> (i * 8)) & 0xFF;
    h *= 1099511628211ull;
  }
}

} // namespace

// -- world ----------------------------------------------------------------------

struct world::node_actors {
  store_writer_actor writer;
  store_reader_actor reader;
  delivery_actor delivery;
  directory_actor directory;
  std::vector<caf::actor> others;
};

world::world(uint64_t s, knobs kn)
  : seed(s),
    k(kn),
    sched_rng(s * 0x9E3779B97F4A7C15ull + 1),
    fault_rng(s * 0xC2B2AE3D27D4EB4Full + 2),
    disk(std::make_shared<memory_backend>()) {
  disk->fail_write = [this](const write_batch& b) {
    if (write_hook && write_hook(b))
      return true;
    return faults_on && uniform() < k.p_store_fail;
  };
}

world::~world() {
  if (sys_)
    crash();
  auto& t = grand_totals();
  ++t.runs;
  t.steps += steps;
  t.failed_writes += disk->failed_writes();
  t.node_crashes += incarnation - 1;
  t.deliveries += deliveries.size();
  for (auto& [cmid, o] : outcomes) {
    t.answers += o.answers.size();
    t.errors += o.errors.size();
  }
}

totals& grand_totals() {
  static totals t;
  return t;
}

double world::uniform() {
  return std::uniform_real_distribution<double>{0, 1}(fault_rng);
}

caf::actor_system& world::system() {
  return *sys_;
}

directory_actor world::directory() const {
  return node_->directory;
}

void world::record(const std::string& cmid, const send_result& r) {
  auto& o = outcomes[cmid];
  o.answers.push_back(r);
  if (!r.deduplicated)
    fresh_answers[{incarnation, o.user, o.conv}].push_back(r.server_sequence);
}

void world::record(const std::string& cmid, const caf::error& e) {
  outcomes[cmid].errors.push_back(e);
}

std::vector<conversation_id> world::live_conversations() const {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(node_->directory);
  auto& st
    = dynamic_cast<caf::stateful_actor<
        directory_state, directory_actor::base>&>(*ptr)
        .state;
  std::vector<conversation_id> out;
  for (auto& [id, hdl] : st.conversations)
    out.push_back(id);
  return out;
}

void world::boot() {
  ++incarnation;
  cfg_ = std::make_unique<caf::actor_system_config>();
  cfg_->set("scheduler.policy", caf::atom("testing"));
  cfg_->set("logger.verbosity", caf::atom("quiet"));
  cfg_->add_message_types<caf::id_block::parley>();
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
  auto& sched = coordinator(*sys_);
  node_ = std::make_unique<node_actors>();
  auto& sys = *sys_;
  node_->writer = sys.spawn(store_writer_impl,
                            std::shared_ptr<kv_backend>(disk),
                            store_writer_limits{});
  node_->reader = sys.spawn(store_reader_impl,
                            std::shared_ptr<kv_backend>(disk), uint64_t{50});
  node_->delivery = spawn_recorder(sys, this);
  conversation_limits lim;
  lim.watermark_delay = std::chrono::milliseconds(k.watermark_delay_ms);
  lim.idempotency_cache = 8; // small, so lookups hit the store too
  lim.idempotency_filter = 16; // and past it, every new key is looked up
  lim.watermark_every = k.watermark_every;
  lim.idempotency_window_ms = k.idempotency_window_ms;
  lim.sweep_interval_ms = k.sweep_interval_ms;
  auto epoch = virtual_epoch_ms_;
  auto* sp = &sched;
  clock_fn clock = [sp, epoch] {
    using namespace std::chrono;
    return epoch
           + duration_cast<milliseconds>(
               sp->clock().current_time.time_since_epoch())
               .count();
  };
  conversation_deps deps{node_->writer, node_->reader, node_->delivery,
                         clock, lim};
  if (k.dead_projection) {
    auto gone = sys.spawn([](caf::event_based_actor* self) { self->quit(); });
    deps.projection = caf::actor_cast<delivery_actor>(gone);
  }
  node_->directory = sys.spawn(directory_impl, std::move(deps));
  node_->others.push_back(
    sys.spawn(outbox_relay_impl, node_->reader, node_->directory));
  if (std::getenv("PARLEY_SIM_DEBUG"))
    caf::actor_cast<caf::abstract_actor*>(node_->directory)
      ->attach_functor([](const caf::error& r) {
        fprintf(stderr, "directory down: %s\n", caf::to_string(r).c_str());
      });
  if (incarnation == 1)
    join_members();
  else
    spawn_clients(true);
}

void world::join_members() {
  for (int c = 0; c < k.clients; ++c) {
    auto conv = conversation_id(1 + c % k.conversations);
    node_->others.push_back(
      spawn_joiner(*sys_, this, conv, user_id(100 + c)));
  }
}

void world::spawn_clients(bool replay_some) {
  for (int c = 0; c < k.clients; ++c) {
    std::vector<std::string> cmids;
    for (int i = 0; i < k.messages; ++i) {
      auto cmid = "c" + std::to_string(c) + "-m" + std::to_string(i);
      auto o = outcomes.find(cmid);
      bool acked = o != outcomes.end() && !o->second.answers.empty();
      if (!acked || (replay_some && uniform() < k.p_replay))
        cmids.push_back(std::move(cmid));
    }
    send(c, std::move(cmids));
  }
}

void world::replay_acked() {
  for (int c = 0; c < k.clients; ++c) {
    std::vector<std::string> cmids;
    for (int i = 0; i < k.messages; ++i)
      cmids.push_back("c" + std::to_string(c) + "-m" + std::to_string(i));
    send(c, std::move(cmids));
  }
}

void world::advance(std::chrono::milliseconds dt) {
  coordinator(*sys_).advance_time(dt);
}

void world::send(int c, std::vector<std::string> cmids) {
  client_plan plan{conversation_id(1 + c % k.conversations), user_id(100 + c),
                   device_id(1), std::move(cmids)};
  for (auto& cmid : plan.cmids) {
    outcomes[cmid].conv = plan.conv;
    outcomes[cmid].user = plan.user;
  }
  node_->others.push_back(spawn_client(*sys_, this, std::move(plan)));
}

void world::crash() {
  auto& sched = coordinator(*sys_);
  for (auto& a : node_->others)
    caf::anon_send_exit(a, caf::exit_reason::kill);
  caf::anon_send_exit(node_->directory, caf::exit_reason::kill);
  caf::anon_send_exit(node_->writer, caf::exit_reason::kill);
  caf::anon_send_exit(node_->reader, caf::exit_reason::kill);
  caf::anon_send_exit(node_->delivery, caf::exit_reason::kill);
  // Let the exits run; nothing else may happen any more (the store is gone).
  auto live_disk = disk->fail_write;
  disk->fail_write = [](const write_batch&) { return true; };
  for (int i = 0; i < 1000000 && sched.has_job(); ++i)
    sched.run_once();
  node_.reset();
  sys_.reset();
  cfg_.reset();
  // A power loss: what no synced write covered is gone.
  if (k.power_loss)
    grand_totals().lost_unsynced += disk->lose_unsynced();
  disk->fail_write = live_disk;
  virtual_epoch_ms_ += 60'000; // the reboot takes a minute
}

bool world::step() {
  auto& sched = coordinator(*sys_);
  ++steps;
  if (faults_on && uniform() < k.p_time_jump) {
    auto dt = std::chrono::milliseconds(static_cast<int64_t>(1 + uniform() * 3000));
    sched.advance_time(dt);
  }
  if (faults_on && k.p_conv_crash > 0 && uniform() < k.p_conv_crash) {
    auto convs = live_conversations();
    if (!convs.empty()) {
      auto ptr = caf::actor_cast<caf::abstract_actor*>(node_->directory);
      auto& st = dynamic_cast<caf::stateful_actor<
                   directory_state, directory_actor::base>&>(*ptr)
                   .state;
      auto victim = convs[sched_rng() % convs.size()];
      // As if it threw: `kill` would also take down the linked directory,
      // which no real conversation failure can do.
      caf::anon_send_exit(st.conversations[victim],
                          caf::exit_reason::unhandled_exception);
      ++grand_totals().conv_crashes;
      fnv(trace_hash, 0xDEAD0000 + victim);
    }
  }
  auto& jobs = sched.jobs;
  if (jobs.empty()) {
    if (!sched.trigger_timeout())
      return false;
    fnv(trace_hash, 0x7111E);
    return true;
  }
  fnv(trace_hash, run_one_random(sched, sched_rng));
  if (step_hook)
    step_hook();
  return true;
}

bool world::run(uint64_t max_steps) {
  for (uint64_t i = 0; i < max_steps; ++i)
    if (!step())
      return true;
  return false;
}

bool world::all_acked() const {
  for (int c = 0; c < k.clients; ++c)
    for (int i = 0; i < k.messages; ++i) {
      auto o = outcomes.find("c" + std::to_string(c) + "-m"
                             + std::to_string(i));
      if (o == outcomes.end() || o->second.answers.empty())
        return false;
    }
  return true;
}

std::string world::run_all() {
  boot();
  if (!run(200000))
    return "setup did not finish";
  spawn_clients(false);
  std::set<uint64_t> crash_at;
  for (int i = 0; i < k.node_crashes; ++i)
    crash_at.insert(fault_rng() % k.faulty_steps);
  faults_on = true;
  for (uint64_t s = 0; s < k.faulty_steps; ++s) {
    if (crash_at.count(s)) {
      crash();
      boot();
    }
    if (!step())
      break;
  }
  faults_on = false; // heal: no new faults, everything must finish
  if (!run(2000000))
    return "no quiescence within the step cap after heal (liveness)";
  return check();
}

std::string world::check() const {
  std::set<std::string> expected;
  for (int c = 0; c < k.clients; ++c)
    for (int i = 0; i < k.messages; ++i)
      expected.insert("c" + std::to_string(c) + "-m" + std::to_string(i));
  std::map<conversation_id, kv_backend*> disks;
  for (conversation_id conv = 1; conv <= conversation_id(k.conversations);
       ++conv)
    disks[conv] = disk.get();
  return check_send_log(expected, disks, outcomes, fresh_answers, deliveries);
}

std::string check_send_log(const std::set<std::string>& expected,
                           const std::map<conversation_id, kv_backend*>& disks,
                           const std::map<std::string, outcome>& outcomes,
                           const fresh_answer_log& fresh_answers,
                           const std::vector<delivery>& deliveries) {
  std::ostringstream why;
  std::map<std::pair<conversation_id, std::string>, sequence> stored;
  for (auto& [conv, disk] : disks) {
    auto msgs = store::fetch_messages(*disk, conv, 0, 1u << 30);
    if (!msgs)
      return "cannot read conversation " + std::to_string(conv);
    for (size_t i = 0; i < msgs->size(); ++i) {
      auto& m = (*msgs)[i];
      if (m.seq != i + 1) {
        why << "conversation " << conv << ": sequence gap, position " << i + 1
            << " holds seq " << m.seq;
        return why.str();
      }
      auto key = std::make_pair(conv, m.client_message_id);
      if (!stored.emplace(key, m.seq).second) {
        why << "conversation " << conv << ": " << m.client_message_id
            << " stored twice (seq " << stored[key] << " and " << m.seq << ")";
        return why.str();
      }
      if (expected.count(m.client_message_id) == 0) {
        why << "unexpected message " << m.client_message_id;
        return why.str();
      }
    }
    auto snap = store::load_conversation(*disk, conv);
    if (snap && snap->dispatched != snap->head) {
      why << "conversation " << conv << ": outbox not drained after heal ("
          << snap->dispatched << " < " << snap->head << ")";
      return why.str();
    }
  }
  for (auto& cmid : expected) {
    auto o = outcomes.find(cmid);
    if (o == outcomes.end() || o->second.answers.empty())
      return cmid + " never acknowledged (liveness)";
    auto s = stored.find({o->second.conv, cmid});
    if (s == stored.end())
      return cmid + " acknowledged but not stored";
    auto& first = o->second.answers.front();
    for (auto& a : o->second.answers) {
      if (a.server_sequence != s->second
          || a.server_message_id != make_server_message_id(o->second.conv,
                                                           s->second)
          || a.sent_at_ms != first.sent_at_ms) {
        why << cmid << ": answer seq " << a.server_sequence << " id "
            << a.server_message_id << " at " << a.sent_at_ms
            << " differs from stored seq " << s->second << " / first answer";
        return why.str();
      }
    }
    for (auto& e : o->second.errors) {
      auto code = static_cast<errc>(e.code());
      if (e.category() == caf::atom("parley") && !retryable(code))
        return cmid + ": non-retryable error " + to_string(code);
    }
  }
  // Answers leave in sequence order: the fresh ones a client receives from
  // a conversation have increasing sequences.
  for (auto& [who, seqs] : fresh_answers)
    for (size_t i = 1; i < seqs.size(); ++i)
      if (seqs[i] <= seqs[i - 1]) {
        why << "user " << std::get<1>(who) << " got seq " << seqs[i]
            << " after seq " << seqs[i - 1] << " from conversation "
            << std::get<2>(who);
        return why.str();
      }
  // Deliveries: each incarnation of a conversation emits in strictly
  // increasing order (so at most once); every stored message was emitted.
  std::map<std::pair<uint64_t, caf::actor_id>, sequence> last;
  std::set<std::pair<conversation_id, sequence>> emitted;
  for (auto& d : deliveries) {
    auto& l = last[{d.incarnation, d.from}];
    if (d.seq <= l) {
      why << "conversation " << d.conv << " emitted seq " << d.seq
          << " after seq " << l << " in one incarnation";
      return why.str();
    }
    l = d.seq;
    emitted.insert({d.conv, d.seq});
  }
  for (auto& [key, seq] : stored)
    if (emitted.count({key.first, seq}) == 0) {
      why << "conversation " << key.first << " seq " << seq
          << " was never emitted for delivery";
      return why.str();
    }
  return {};
}

// -- seeds --------------------------------------------------------------------------

void for_each_seed(const char* test, uint64_t first, uint64_t count,
                   const std::function<std::string(uint64_t)>& body) {
  if (auto s = std::getenv("PARLEY_SIM_SEED"))
    first = std::strtoull(s, nullptr, 10);
  if (auto n = std::getenv("PARLEY_SIM_SEEDS"))
    count = std::strtoull(n, nullptr, 10);
  uint64_t failures = 0;
  for (uint64_t seed = first; seed < first + count; ++seed) {
    auto why = body(seed);
    if (!why.empty()) {
      ++failures;
      FAIL_CHECK("seed=" << seed << ": " << why
                         << "\nreplay: PARLEY_SIM_SEED=" << seed
                         << " PARLEY_SIM_SEEDS=1 ./sim_tests -tc='"
                         << std::string(test) << "'");
      if (failures >= 5)
        break;
    }
  }
  auto t = grand_totals();
  if (t.runs == 0) { // seeds of another world (e.g. two_node_world)
    MESSAGE(std::string(test) << ": " << count << " seeds from " << first
                              << ", " << failures << " failed");
    return;
  }
  MESSAGE(std::string(test) << ": " << count << " seeds from " << first
                            << ", " << failures << " failed; so far " << t.runs
                            << " runs, " << t.steps << " steps, "
                            << t.answers << " answers, " << t.errors
                            << " errors, " << t.failed_writes
                            << " failed writes, " << t.node_crashes
                            << " node crashes (" << t.lost_unsynced
                            << " unsynced writes lost), " << t.conv_crashes
                            << " conversation crashes, " << t.deliveries
                            << " deliveries");
}

} // namespace parley::sim
