#include "two_node_world.hpp"
#include "two_node_detail.hpp"
#include "random_schedule.hpp"
#include "two_node_actors.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "actors/outbox_relay.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"

namespace parley::sim {

two_node_totals& two_node_grand_totals() {
  static two_node_totals t;
  return t;
}

two_node_world::two_node_world(uint64_t s, two_node_knobs kn)
  : seed(s),
    k(kn),
    sched_rng(s * 0x9E3779B97F4A7C15ull + 3),
    fault_rng(s * 0xC2B2AE3D27D4EB4Full + 4) {
  // Half the partitions each (alternating), and conversations of both.
  map.map_epoch = 1;
  for (uint32_t p = 0; p < k.partitions; ++p)
    map.owners.push_back(1 + p % 2);
  std::array<int, 2> want{(k.conversations + 1) / 2, k.conversations / 2};
  for (conversation_id id = 1; want[0] + want[1] > 0; ++id) {
    auto p = partition_of(placement_key::conversation(id), k.partitions);
    auto& left = want[map.owners[p] - 1];
    if (left > 0) {
      --left;
      convs.push_back(id);
    }
  }
  for (int c = 0; c < k.clients; ++c) {
    homes.push_back(1 + fault_rng() % 2);
    tagged.push_back(uniform() < k.p_tagged_client);
  }
  for (node_id n : {1, 2}) {
    auto& nd = at(n);
    nd.id = n;
    nd.disk = std::make_shared<memory_backend>();
    nd.disk->fail_write = [this](const write_batch&) {
      return faults_on && uniform() < k.p_store_fail;
    };
  }
}

two_node_world::~two_node_world() {
  if (sys_)
    stop_all();
  auto& t = two_node_grand_totals();
  ++t.runs;
  t.steps += steps;
  for (auto& [cmid, o] : outcomes) {
    t.answers += o.answers.size();
    t.errors += o.errors.size();
  }
}

double two_node_world::uniform() {
  return std::uniform_real_distribution<double>{0, 1}(fault_rng);
}

node_id two_node_world::owner_of(conversation_id conv) const {
  return map.owner(
    partition_of(placement_key::conversation(conv), map.partitions()));
}

void two_node_world::record(const std::string& cmid, const send_result& r) {
  auto& o = outcomes[cmid];
  if (std::getenv("PARLEY_SIM_DEBUG"))
    fprintf(stderr, "step %llu answer %s conv %llu seq %llu dedup %d inc %llu\n",
            (unsigned long long)steps, cmid.c_str(), (unsigned long long)o.conv,
            (unsigned long long)r.server_sequence, int(r.deduplicated),
            (unsigned long long)at(owner_of(o.conv)).incarnation);
  o.answers.push_back(r);
  if (!r.deduplicated)
    fresh_answers[{at(owner_of(o.conv)).incarnation, o.user, o.conv}]
      .push_back(r.server_sequence);
}

void two_node_world::record(const std::string& cmid, const caf::error& e) {
  if (e == caf::sec::request_timeout)
    ++two_node_grand_totals().timeouts;
  if (leases && is(e, errc::unavailable)
      && caf::to_string(e).find("lease") != std::string::npos)
    ++two_node_grand_totals().fence_refusals;
  if (std::getenv("PARLEY_SIM_DEBUG"))
    fprintf(stderr, "step %llu error %s %s\n", (unsigned long long)steps,
            cmid.c_str(), caf::to_string(e).c_str());
  outcomes[cmid].errors.push_back(e);
}

bool two_node_world::step() {
  auto& sched = coordinator(*sys_);
  ++steps;
  if (on_step)
    on_step(*sys_);
  if (faults_on && uniform() < k.p_time_jump) {
    sched.advance_time(std::chrono::milliseconds(
      static_cast<int64_t>(1 + uniform() * 3000)));
    stalled_until_ = now();
    if (std::getenv("PARLEY_SIM_DEBUG"))
      fprintf(stderr, "step %llu time jump to t=%lld\n",
              (unsigned long long)steps, (long long)ms_of(now()));
  }
  if (faults_on && k.p_conv_crash > 0 && uniform() < k.p_conv_crash) {
    auto& nd = at(1 + sched_rng() % 2);
    if (nd.up) {
      auto& st = state_of(nd.directory);
      if (!st.conversations.empty()) {
        auto i = st.conversations.begin();
        std::advance(i, sched_rng() % st.conversations.size());
        // As if it threw (kill would take the linked directory down too).
        caf::anon_send_exit(i->second, caf::exit_reason::unhandled_exception);
        if (std::getenv("PARLEY_SIM_DEBUG"))
          fprintf(stderr, "step %llu conv crash %llu\n",
                  (unsigned long long)steps, (unsigned long long)i->first);
        fnv(trace_hash, 0xDEAD0000 + i->first);
      }
    }
  }
  if (sched.jobs.empty()
      || (faults_on && uniform() < k.p_fire_timer
          && sched.clock().has_pending_timeout())) {
    // With leases, the tickers re-arm for ever: quiet once only they are
    // left and every lease is live.
    if (leases && sched.jobs.empty() && leases_quiet())
      return false;
    const bool stall = !sched.jobs.empty(); // work waits meanwhile
    if (!sched.trigger_timeout())
      return false;
    if (stall)
      stalled_until_ = now();
    if (std::getenv("PARLEY_SIM_DEBUG"))
      fprintf(stderr, "step %llu timer fired at t=%lld%s\n",
              (unsigned long long)steps, (long long)ms_of(now()),
              stall ? " (a stall)" : "");
    fnv(trace_hash, 0x7111E);
    return true;
  }
  fnv(trace_hash, run_one_random(sched, sched_rng));
  if (leases)
    lease_watch();
  return true;
}

bool two_node_world::run(uint64_t max_steps) {
  for (uint64_t i = 0; i < max_steps; ++i)
    if (!step())
      return true;
  return false;
}

std::string two_node_world::run_all() {
  cfg_ = std::make_unique<caf::actor_system_config>();
  cfg_->set("scheduler.policy", caf::atom("testing"));
  cfg_->set("logger.verbosity", caf::atom("quiet"));
  cfg_->add_message_types<caf::id_block::parley>();
  sys_ = std::make_unique<caf::actor_system>(*cfg_);
  net_ = std::make_unique<hop_net>(*sys_, [this] { return uniform(); });
  net_->max_delay_ms = k.max_hop_delay_ms;
  net_->reorder = k.link_reorders;
  if (k.leases) {
    ++two_node_grand_totals().lease_runs;
    auto* sp = &coordinator(*sys_);
    leases = std::make_unique<lease_model>(
      [sp] { return sp->clock().current_time; });
  }
  boot(1);
  boot(2);
  for (int c = 0; c < k.clients; ++c)
    at(homes[c]).others.push_back(spawn_routed_joiner(
      *sys_, this, homes[c], convs[c % convs.size()], user_id(100 + c)));
  if (!run(200000))
    return "setup did not finish";
  spawn_clients(1);
  spawn_clients(2);
  // Faults: node crashes (node, step, downtime) and broken link windows.
  std::map<uint64_t, node_id> crash_at;
  std::map<uint64_t, node_id> boot_at;
  for (int i = 0; i < k.node_crashes; ++i)
    crash_at[fault_rng() % k.faulty_steps] = 1 + fault_rng() % 2;
  std::vector<std::pair<uint64_t, uint64_t>> breaks;
  for (int i = 0; i < k.link_breaks; ++i) {
    auto from = fault_rng() % k.faulty_steps;
    breaks.emplace_back(from, from + 1 + fault_rng() % k.max_break_steps);
  }
  // Control-plane outages of one node, longer than TTL - margin (virtual
  // time), some longer than the TTL (the lease lapses in the double).
  const int64_t fence_after = k.lease_ttl_s * 1000 - k.fence_margin_ms;
  for (int i = 0; leases && i < k.cp_outages; ++i) {
    // Half of them early, while the clients are still sending.
    auto at_step = fault_rng() % (i % 2 ? k.faulty_steps : 200);
    node_id n = 1 + fault_rng() % 2;
    outage_at_[at_step] = {
      n, fence_after + 100
           + int64_t(fault_rng() % uint64_t(k.lease_ttl_s * 2000))};
  }
  faults_on = true;
  for (uint64_t s = 0; s < k.faulty_steps; ++s) {
    if (auto b = boot_at.find(s); b != boot_at.end() && !at(b->second).up) {
      if (leases && leases->nodes[b->second - 1].cut) {
        // parleyd serves nothing before it has registered: it waits.
        auto later = s + 1;
        while (boot_at.count(later) > 0)
          ++later;
        boot_at[later] = b->second;
      } else {
        boot(b->second);
        spawn_clients(b->second);
      }
    }
    if (auto c = crash_at.find(s); c != crash_at.end() && at(c->second).up) {
      crash(c->second);
      boot_at[s + 1 + fault_rng() % k.max_down_steps] = c->second;
    }
    net_->broken = std::any_of(breaks.begin(), breaks.end(), [s](auto& w) {
      return w.first <= s && s < w.second;
    });
    if (leases)
      lease_faults(s);
    if (!step())
      break;
  }
  // Heal: no new faults, a node still down reboots, everything must finish.
  faults_on = false;
  net_->broken = false;
  if (leases)
    lease_heal();
  for (node_id n : {1, 2})
    if (!at(n).up) {
      boot(n);
      spawn_clients(n);
    }
  if (!run(k.heal_steps))
    return "no quiescence within the step cap after heal (liveness)";
  auto& t = two_node_grand_totals();
  t.hop_sent += net_->stats.sent;
  t.hop_delivered += net_->stats.delivered;
  t.hop_dropped += net_->stats.dropped;
  t.hop_bytes += net_->stats.bytes;
  for (auto& [cmid, o] : outcomes)
    if (homes[std::stoi(cmid.substr(1))] != owner_of(o.conv))
      t.remote_answers += o.answers.size();
  if (leases)
    lease_watermarks();
  if (k.sync_at_end) {
    for (int c = 0; c < k.clients; ++c)
      at(homes[c]).others.push_back(
        spawn_syncer(*sys_, this, homes[c], user_id(100 + c),
                     convs[c % convs.size()], &syncs[c]));
    if (!run(k.heal_steps))
      return "the syncs after heal did not finish (liveness)";
  }
  fnv(trace_hash, net_->trace);
  return k.check_at_end ? check() : std::string{};
}

} // namespace parley::sim
