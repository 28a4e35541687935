// The two-node swarm's leases (two_node_lease.hpp): the ticker, the
// forwarding of transitions to the writer, outages and quiescence. The
// audit and the checks: two_node_lease_check.cpp.

#include "two_node_lease.hpp"
#include "two_node_detail.hpp"
#include "two_node_world.hpp"

#include <cstdio>
#include <cstdlib>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/store_writer.hpp"

namespace parley::sim {

namespace {

using ms = std::chrono::milliseconds;

caf::behavior ticker(caf::event_based_actor* self, two_node_world* w,
                     node_id n, caf::timespan first) {
  self->delayed_send(self, first, caf::tick_atom::value);
  return {[=](caf::tick_atom) { w->lease_tick(n, self); }};
}

/// A node's store as its writer sees it: every write that lands is audited.
class audited_backend : public kv_backend {
public:
  audited_backend(std::shared_ptr<kv_backend> inner, two_node_world* w,
                  node_id n)
    : inner_(std::move(inner)), w_(w), n_(n) {
  }
  caf::error write(const write_batch& batch, bool sync) override {
    auto err = inner_->write(batch, sync);
    if (!err)
      w_->audit_write(n_, batch);
    return err;
  }
  caf::expected<std::optional<std::string>>
  get(std::string_view key) override {
    return inner_->get(key);
  }
  caf::error scan(std::string_view from, std::string_view to,
                  const visitor& f) override {
    return inner_->scan(from, to, f);
  }
  caf::expected<std::optional<std::pair<std::string, std::string>>>
  last(std::string_view from, std::string_view to) override {
    return inner_->last(from, to);
  }

private:
  std::shared_ptr<kv_backend> inner_;
  two_node_world* w_;
  node_id n_;
};

} // namespace

lease_model::lease_model(cluster::cp_clock clock)
  : now(clock), plane(std::move(clock)) {
  for (auto& nl : nodes)
    nl.client = std::make_unique<cluster::memory_cp_client>(plane);
}

void publish_lease_deadline(node_lease& nl,
                            std::chrono::steady_clock::time_point now) {
  int64_t at = 0;
  if (nl.keeper && nl.keeper->may_write(now))
    at = std::chrono::duration_cast<std::chrono::nanoseconds>(
           nl.keeper->fence_deadline().time_since_epoch())
           .count();
  nl.deadline->store(at);
}

std::string lease_key(node_id n) {
  return "/parley/sim/nodes/" + std::to_string(n);
}

caf::actor spawn_lease_ticker(caf::actor_system& sys, two_node_world* w,
                              node_id n, caf::timespan first) {
  return sys.spawn(ticker, w, n, first);
}

std::shared_ptr<kv_backend>
lease_audited(std::shared_ptr<kv_backend> inner, two_node_world* w,
              node_id n) {
  return std::make_shared<audited_backend>(std::move(inner), w, n);
}

std::chrono::steady_clock::time_point two_node_world::now() const {
  return coordinator(*sys_).clock().current_time;
}

void two_node_world::lease_boot(node_id n) {
  auto& nl = leases->nodes[n - 1];
  auto& nd = at(n);
  // The writer starts fenced; live once the new keeper has registered.
  nl.generation = 1;
  caf::anon_send(nd.writer, caf::put_atom::value, lease_state{false, 1});
  cluster::lease_keeper_options opts;
  opts.key = lease_key(n);
  opts.value = "{\"node\":" + std::to_string(n) + ",\"incarnation\":"
               + std::to_string(nd.incarnation) + "}";
  opts.ttl = std::chrono::seconds(k.lease_ttl_s);
  opts.margin = ms(k.fence_margin_ms);
  nl.keeper = std::make_unique<cluster::lease_keeper>(
    *nl.client, opts, [this, n](bool live) { on_lease_change(n, live); });
  nl.fenced_window = false;
  nl.owned_pending = 0;
  // parleyd registers before it serves (cluster_member waits for a live
  // lease): the first tick runs now, so the writer's first messages are
  // the fence and, if the control plane answered, the live report.
  auto t = now();
  auto next = nl.keeper->tick(t);
  publish_lease_deadline(nl, t);
  nl.ticker = spawn_lease_ticker(*sys_, this, n, next - t);
  leases->tickers.insert(nl.ticker.id());
}

void two_node_world::lease_crash(node_id n) {
  auto& nl = leases->nodes[n - 1];
  nl.keeper.reset(); // no release: the lease runs out in the double
  nl.deadline->store(0);
  nl.ticker = nullptr;
  nl.fenced_window = false;
}

void two_node_world::on_lease_change(node_id n, bool live) {
  auto& nl = leases->nodes[n - 1];
  ++nl.generation;
  auto& t = two_node_grand_totals();
  if (!live) {
    ++t.fenced_windows;
    ++nl.windows;
    nl.fenced_window = true;
  } else {
    nl.fenced_window = false;
  }
  if (std::getenv("PARLEY_SIM_DEBUG"))
    fprintf(stderr, "step %llu t=%lld node %llu lease %s generation %llu\n",
            (unsigned long long)steps, (long long)ms_of(now()),
            (unsigned long long)n, live ? "live" : "fenced",
            (unsigned long long)nl.generation);
  fnv(trace_hash, 0x1EA5E00 + n * 2 + live);
  publish_lease_deadline(nl, now()); // before the writer hears of it
  if (!live && k.lease_fence_never_sent)
    return; // the planted bug
  caf::anon_send(at(n).writer, caf::put_atom::value,
                 lease_state{live, nl.generation});
}

void two_node_world::lease_tick(node_id n, caf::event_based_actor* self) {
  auto& nl = leases->nodes[n - 1];
  if (!nl.keeper || nl.ticker.id() != self->id())
    return; // an old incarnation's
  auto t = now();
  auto had_lease = nl.keeper->lease();
  auto next = nl.keeper->tick(t);
  publish_lease_deadline(nl, t);
  if (had_lease != 0 && nl.keeper->lease() != had_lease
      && nl.keeper->lease() != 0)
    ++two_node_grand_totals().lease_regrants;
  self->delayed_send(self, next - t, caf::tick_atom::value);
}

void two_node_world::lease_faults(uint64_t s) {
  auto t = now();
  if (auto o = outage_at_.find(s); o != outage_at_.end()) {
    auto& nl = leases->nodes[o->second.first - 1];
    if (!nl.cut) {
      nl.cut = true;
      nl.cut_until = t + ms(o->second.second);
      nl.client->set_unreachable(true);
      ++two_node_grand_totals().cp_outages;
      fnv(trace_hash, 0xC0FF00 + o->second.first);
    }
  }
  for (auto& nl : leases->nodes)
    if (nl.cut && t >= nl.cut_until) {
      nl.cut = false;
      nl.client->set_unreachable(false);
    }
}

void two_node_world::lease_heal() {
  for (auto& nl : leases->nodes)
    if (nl.cut) {
      nl.cut = false;
      nl.client->set_unreachable(false);
    }
}

bool two_node_world::leases_quiet() const {
  auto& sched = coordinator(*sys_);
  using clock_t = caf::detail::simple_actor_clock;
  for (auto& [due, ev] : sched.clock().schedule()) {
    if (ev->subtype != clock_t::actor_msg_type)
      return false;
    auto& msg = static_cast<const clock_t::actor_msg&>(*ev);
    if (!msg.receiver || leases->tickers.count(msg.receiver->id()) == 0)
      return false;
  }
  for (node_id n : {1, 2}) {
    auto& nl = leases->nodes[n - 1];
    if (!at(n).up)
      continue;
    if (nl.cut || !nl.keeper || !nl.keeper->reported())
      return false;
    auto& ws = writer_state(at(n).writer);
    if (!ws.lease.live || ws.lease.generation != nl.generation)
      return false;
  }
  return true;
}

} // namespace parley::sim
