#include "two_node_world.hpp"
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
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"
#include "actors/store_reader.hpp"
#include "actors/store_writer.hpp"

namespace parley::sim {

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

node_id other(node_id n) {
  return n == 1 ? 2 : 1;
}

directory_state& state_of(const directory_actor& dir) {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(dir);
  return dynamic_cast<caf::stateful_actor<directory_state,
                                          directory_actor::base>&>(*ptr)
    .state;
}

/// A planted bug: a store that acknowledges a synced write before it is
/// durable (a power loss may take it).
class sync_ignoring_backend : public kv_backend {
public:
  sync_ignoring_backend(std::shared_ptr<memory_backend> disk, const bool* when)
    : disk_(std::move(disk)), when_(when) {
  }
  caf::error write(const write_batch& batch, bool sync) override {
    return disk_->write(batch, sync && !*when_);
  }
  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    return disk_->get(key);
  }
  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    return disk_->scan(from, to, f);
  }
  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    return disk_->last(from, to);
  }

private:
  std::shared_ptr<memory_backend> disk_;
  const bool* when_; ///< lies only while this is true
};

} // namespace

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
  for (int c = 0; c < k.clients; ++c)
    homes.push_back(1 + fault_rng() % 2);
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
  if (std::getenv("PARLEY_SIM_DEBUG"))
    fprintf(stderr, "step %llu error %s %s\n", (unsigned long long)steps,
            cmid.c_str(), caf::to_string(e).c_str());
  outcomes[cmid].errors.push_back(e);
}

void two_node_world::boot(node_id n) {
  auto& sys = *sys_;
  auto& nd = at(n);
  ++nd.incarnation;
  nd.up = true;
  auto store = std::shared_ptr<kv_backend>(nd.disk);
  if (k.disk_ignores_sync)
    store = std::make_shared<sync_ignoring_backend>(nd.disk, &faults_on);
  nd.writer = sys.spawn(store_writer_impl, store, store_writer_limits{});
  nd.reader = sys.spawn(store_reader_impl,
                        std::shared_ptr<kv_backend>(nd.disk), uint64_t{50});
  nd.delivery = spawn_node_recorder(sys, this, n);
  conversation_limits lim;
  lim.idempotency_cache = 8;   // small, so lookups hit the store too
  lim.idempotency_filter = 16; // and past it, every new key is looked up
  auto* sp = &coordinator(sys);
  auto epoch = virtual_epoch_ms_;
  clock_fn clock = [sp, epoch] {
    using namespace std::chrono;
    return epoch
           + duration_cast<milliseconds>(
               sp->clock().current_time.time_since_epoch())
               .count();
  };
  conversation_deps deps{nd.writer, nd.reader, nd.delivery, clock, lim};
  nd.inbox = sys.spawn(inbox_supervisor_impl,
                       std::shared_ptr<kv_backend>(nd.disk), nd.writer,
                       false, true, caf::timespan{0}, caf::timespan{0},
                       std::shared_ptr<node_metrics>{});
  deps.projection = caf::actor_cast<delivery_actor>(nd.inbox);
  directory_peers peers;
  peers.emplace(other(n), caf::actor_cast<directory_actor>(
                            net_->directory_port(n, other(n))));
  nd.directory = sys.spawn(routing_directory_impl, std::move(deps),
                           placement{n, map}, std::move(peers));
  nd.others.push_back(sys.spawn(outbox_relay_impl, nd.reader, nd.directory));
  net_->set_directory(n, caf::actor_cast<caf::strong_actor_ptr>(nd.directory));
}

void two_node_world::spawn_clients(node_id n) {
  for (int c = 0; c < k.clients; ++c) {
    if (homes[c] != n)
      continue;
    routed_plan plan{n, convs[c % convs.size()], user_id(100 + c), {}};
    for (int i = 0; i < k.messages; ++i) {
      auto cmid = "c" + std::to_string(c) + "-m" + std::to_string(i);
      auto& o = outcomes[cmid];
      o.conv = plan.conv;
      o.user = plan.user;
      if (o.answers.empty())
        plan.cmids.push_back(std::move(cmid));
    }
    at(n).others.push_back(spawn_routed_client(*sys_, this, std::move(plan)));
  }
}

void two_node_world::crash(node_id n) {
  if (std::getenv("PARLEY_SIM_DEBUG"))
    fprintf(stderr, "step %llu crash node %llu\n", (unsigned long long)steps,
            (unsigned long long)n);
  auto& nd = at(n);
  auto& sched = coordinator(*sys_);
  net_->set_directory(n, nullptr); // connections to and from n reset
  nd.up = false;
  // Kill every actor of the node: the directory takes its conversations
  // with it (linked). Run until they are all gone; the other node may run
  // meanwhile, but nothing crosses the link and n's disk takes no write.
  std::vector<caf::strong_actor_ptr> victims;
  auto add = [&](auto hdl) {
    victims.push_back(caf::actor_cast<caf::strong_actor_ptr>(hdl));
  };
  for (auto& [id, conv] : state_of(nd.directory).conversations)
    add(conv);
  for (auto& a : nd.others)
    add(a);
  add(nd.directory);
  add(nd.writer);
  add(nd.reader);
  add(nd.delivery);
  {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(nd.inbox);
    auto& st = dynamic_cast<caf::stateful_actor<
      inbox_supervisor_state, inbox_supervisor_actor::base>&>(*ptr)
                 .state;
    if (st.worker)
      add(st.worker);
    add(nd.inbox);
  }
  auto alive = std::make_shared<size_t>(victims.size());
  for (auto& v : victims) {
    caf::actor_cast<caf::abstract_actor*>(v)->attach_functor(
      [alive] { --*alive; });
    caf::anon_send_exit(v, caf::exit_reason::kill);
  }
  auto live_disk = nd.disk->fail_write;
  nd.disk->fail_write = [](const write_batch&) { return true; };
  for (int i = 0; i < 1000000 && *alive > 0 && sched.has_job(); ++i)
    fnv(trace_hash, run_one_random(sched, sched_rng));
  nd.others.clear();
  nd.directory = nullptr;
  nd.writer = nullptr;
  nd.reader = nullptr;
  nd.delivery = nullptr;
  nd.inbox = nullptr;
  if (k.power_loss && !stopping_)
    two_node_grand_totals().lost_unsynced += nd.disk->lose_unsynced();
  nd.disk->fail_write = live_disk;
  if (!stopping_)
    ++two_node_grand_totals().node_crashes;
  fnv(trace_hash, 0xC2A5400 + n);
}

void two_node_world::stop_all() {
  stopping_ = true;
  for (node_id n : {1, 2})
    if (at(n).up)
      crash(n);
  net_->clear();
  auto& sched = coordinator(*sys_);
  for (int i = 0; i < 1000000 && sched.has_job(); ++i)
    sched.run_once();
  net_.reset();
  sys_.reset();
  cfg_.reset();
}

bool two_node_world::step() {
  auto& sched = coordinator(*sys_);
  ++steps;
  if (faults_on && uniform() < k.p_time_jump)
    sched.advance_time(std::chrono::milliseconds(
      static_cast<int64_t>(1 + uniform() * 3000)));
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
    if (!sched.trigger_timeout())
      return false;
    fnv(trace_hash, 0x7111E);
    return true;
  }
  fnv(trace_hash, run_one_random(sched, sched_rng));
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
  faults_on = true;
  for (uint64_t s = 0; s < k.faulty_steps; ++s) {
    if (auto b = boot_at.find(s); b != boot_at.end() && !at(b->second).up) {
      boot(b->second);
      spawn_clients(b->second);
    }
    if (auto c = crash_at.find(s); c != crash_at.end() && at(c->second).up) {
      crash(c->second);
      boot_at[s + 1 + fault_rng() % k.max_down_steps] = c->second;
    }
    net_->broken = std::any_of(breaks.begin(), breaks.end(), [s](auto& w) {
      return w.first <= s && s < w.second;
    });
    if (!step())
      break;
  }
  // Heal: no new faults, a node still down reboots, everything must finish.
  faults_on = false;
  net_->broken = false;
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
  fnv(trace_hash, net_->trace);
  return check();
}

std::string two_node_world::check() const {
  if (net_ && !net_->violations.empty())
    return "link: " + net_->violations.front();
  std::set<std::string> expected;
  for (int c = 0; c < k.clients; ++c)
    for (int i = 0; i < k.messages; ++i)
      expected.insert("c" + std::to_string(c) + "-m" + std::to_string(i));
  std::map<conversation_id, kv_backend*> disks;
  for (auto conv : convs)
    disks[conv] = at(owner_of(conv)).disk.get();
  if (auto why = check_send_log(expected, disks, outcomes, fresh_answers,
                                deliveries);
      !why.empty())
    return why;
  return check_unread();
}

std::string two_node_world::check_unread() const {
  for (auto conv : convs) {
    auto& disk = *at(owner_of(conv)).disk;
    auto msgs = store::fetch_messages(disk, conv, 0, 1u << 30);
    if (!msgs)
      return "cannot read conversation " + std::to_string(conv);
    for (int c = 0; c < k.clients; ++c) {
      if (convs[c % convs.size()] != conv)
        continue;
      auto user = user_id(100 + c);
      // What the user is shown (a stale projection row is computed from
      // the log for the answer), against a recount from the log.
      std::vector<inbox_entry> stale;
      auto shown = store::list_inbox(disk, user, {conv}, &stale);
      auto fresh = store::compute_inbox_entry(disk, user, conv);
      if (!shown || !fresh)
        return "cannot read the inbox of user " + std::to_string(user);
      two_node_grand_totals().stale_inbox_rows += stale.size();
      uint64_t recount = 0;
      for (auto& m : *msgs)
        if (m.seq > fresh->read && m.sender_user != user)
          ++recount;
      auto where = "user " + std::to_string(user) + " in conversation "
                   + std::to_string(conv) + ": ";
      auto e = std::find_if(shown->begin(), shown->end(),
                            [conv](auto& x) { return x.conversation == conv; });
      if (e == shown->end()) {
        if (!msgs->empty())
          return where + "no inbox entry for " + std::to_string(msgs->size())
                 + " messages";
        continue;
      }
      if (e->unread != recount || e->head != msgs->size())
        return where + "inbox shows head " + std::to_string(e->head)
               + " read " + std::to_string(e->read) + " unread "
               + std::to_string(e->unread) + "; the log: head "
               + std::to_string(msgs->size()) + ", read cursor "
               + std::to_string(fresh->read) + ", "
               + std::to_string(recount) + " from others after it";
    }
  }
  return {};
}

} // namespace parley::sim
