// The two-node swarm's leases (two_node_lease.hpp): the ticker, the
// forwarding of transitions to the writer, outages, the write audit and
// the end checks.

#include "two_node_lease.hpp"
#include "two_node_detail.hpp"
#include "two_node_world.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/store_writer.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"

namespace parley::sim {

namespace {

using ms = std::chrono::milliseconds;

int64_t ms_of(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<ms>(t.time_since_epoch()).count();
}

const store_writer_state& writer_state(const store_writer_actor& w) {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(w);
  return dynamic_cast<caf::stateful_actor<store_writer_state,
                                          store_writer_actor::base>&>(*ptr)
    .state;
}

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
  // parleyd registers before it serves (cluster_member waits for a live
  // lease): the first tick runs now, so the writer's first messages are
  // the fence and, if the control plane answered, the live report.
  auto t = now();
  auto next = nl.keeper->tick(t);
  nl.ticker = spawn_lease_ticker(*sys_, this, n, next - t);
  leases->tickers.insert(nl.ticker.id());
}

void two_node_world::lease_crash(node_id n) {
  auto& nl = leases->nodes[n - 1];
  nl.keeper.reset(); // no release: the lease runs out in the double
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

void two_node_world::lease_watermarks() {
  // A conversation that went idle while its node was fenced sent its
  // outbox watermark as a lazy put, which the fenced writer dropped
  // (store_writer.hpp); nothing sends it again, so it stays behind the
  // head until the next message (a restart re-emits from the older one;
  // devices skip what they have). Counted, then written here, so that the
  // one-node invariant (drained after heal) still checks everything else.
  // Only for nodes that were fenced while up in this run.
  for (auto conv : convs) {
    auto n = owner_of(conv);
    if (leases->nodes[n - 1].windows == 0)
      continue;
    auto& disk = *at(n).disk;
    auto snap = store::load_conversation(disk, conv);
    if (!snap || snap->dispatched >= snap->head)
      continue;
    ++two_node_grand_totals().watermarks_fenced_off;
    write_batch batch;
    store::add_watermark(batch, conv, snap->head);
    disk.write(batch, true);
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

void two_node_world::lease_watch() {
  // Without a stall since the keeper's last renewal, the fence reaches the
  // writer at the deadline's instant (virtual time stands still while any
  // work waits), so no writer may still be live once the lease could have
  // lapsed.
  auto t = now();
  for (node_id n : {1, 2}) {
    auto& nl = leases->nodes[n - 1];
    if (!at(n).up || !nl.keeper
        || t < nl.keeper->last_renewed() + std::chrono::seconds(k.lease_ttl_s)
        || stalled_until_ > nl.keeper->last_renewed())
      continue; // within the lease, or a stall: the race audit_write counts
    auto& ws = writer_state(at(n).writer);
    if (ws.lease.live)
      leases->violate(
        "node " + std::to_string(n) + " at t=" + std::to_string(ms_of(t))
        + " ms, step " + std::to_string(steps)
        + ": its writer is still live past its lease (last renewal sent at t="
        + std::to_string(ms_of(nl.keeper->last_renewed())) + " ms)");
  }
}

void two_node_world::audit_write(node_id n, const write_batch& batch) {
  const std::string* owned = nullptr;
  for (auto& op : batch.ops) {
    auto slot = keys::slot_of_key(op.key);
    if (slot
        && map.owner(partition_of_slot(*slot, map.partitions())) == n) {
      owned = &op.key;
      break;
    }
  }
  auto& nd = at(n);
  if (owned == nullptr || !nd.writer)
    return;
  auto& t = two_node_grand_totals();
  ++t.lease_writes;
  auto& nl = leases->nodes[n - 1];
  auto& ws = writer_state(nd.writer);
  auto when = now();
  auto where = "node " + std::to_string(n) + " (incarnation "
               + std::to_string(nd.incarnation) + ") at t="
               + std::to_string(ms_of(when)) + " ms, step "
               + std::to_string(steps) + ": ";
  if (!ws.lease.live) {
    leases->violate(
      where + "its writer wrote into a partition it owns (key of "
      + std::to_string(owned->size()) + " bytes) while fenced at lease "
      + "generation " + std::to_string(ws.lease.generation));
    return;
  }
  if (!nl.keeper || nl.keeper->may_write(when))
    return;
  auto lapse = nl.keeper->last_renewed() + std::chrono::seconds(k.lease_ttl_s);
  if (when < lapse) {
    ++t.writes_in_margin; // the fence is on its way
    return;
  }
  auto what = where + "its writer accepted a write into a partition it "
              "owns after its lease could have lapsed (last renewal sent at "
              "t=" + std::to_string(ms_of(nl.keeper->last_renewed()))
              + " ms, TTL " + std::to_string(k.lease_ttl_s)
              + " s; keeper fenced, writer live at generation "
              + std::to_string(ws.lease.generation) + ")";
  if (stalled_until_ <= nl.keeper->last_renewed()) {
    // No stall since the renewal: the fence reached the writer at the
    // deadline's instant, so nothing may land past the lease.
    leases->violate(what);
    return;
  }
  auto over = uint64_t(ms_of(when) - ms_of(lapse));
  ++t.writes_past_lease;
  t.max_past_lease_ms = std::max(t.max_past_lease_ms, over);
  if (t.first_past_lease.empty())
    t.first_past_lease = "seed " + std::to_string(seed) + ": " + what
                         + ", after a stall that ended at t="
                         + std::to_string(ms_of(stalled_until_)) + " ms";
}

std::string two_node_world::check_leases() const {
  if (!leases)
    return {};
  if (leases->violations > 0)
    return "lease: " + leases->first_violation + " ("
           + std::to_string(leases->violations) + " violations)";
  auto regs = leases->plane.range("/parley/sim/nodes/");
  if (!regs)
    return "lease: cannot read the registrations";
  auto t = now();
  for (node_id n : {1, 2}) {
    auto& nl = leases->nodes[n - 1];
    auto where = "lease: node " + std::to_string(n) + " after heal: ";
    if (!at(n).up || !nl.keeper)
      return where + "down";
    if (nl.fenced_window || !nl.keeper->reported()
        || !nl.keeper->may_write(t))
      return where + "its keeper is still fenced";
    auto& ws = writer_state(at(n).writer);
    if (!ws.lease.live || ws.lease.generation != nl.generation)
      return where + "its writer is at generation "
             + std::to_string(ws.lease.generation)
             + (ws.lease.live ? " live" : " fenced") + ", the keeper's last "
             + std::to_string(nl.generation);
    bool found = false;
    for (auto& kv : regs->kvs)
      found = found
              || (kv.key == lease_key(n) && kv.lease == nl.keeper->lease());
    if (!found)
      return where + "not registered under its lease";
  }
  return {};
}

} // namespace parley::sim
