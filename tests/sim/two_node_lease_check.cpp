// The two-node swarm's lease invariants (two_node_lease.hpp): the audit of
// every write, the per-step watch for a writer live past its lease, the
// outbox watermarks the fence dropped, and the checks after heal.

#include "two_node_detail.hpp"
#include "two_node_lease.hpp"
#include "two_node_world.hpp"

#include <algorithm>

#include <caf/scheduled_actor.hpp>

#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"

namespace parley::sim {

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


size_t two_node_world::owned_pending(node_id n) const {
  auto& ws = writer_state(at(n).writer);
  auto owned = [&](const std::string& key) {
    auto slot = keys::slot_of_key(key);
    return slot
           && map.owner(partition_of_slot(*slot, map.partitions())) == n;
  };
  size_t count = 0;
  for (auto& op : ws.pending.ops)
    count += owned(op.key);
  for (auto& op : ws.pending_versioned)
    count += owned(op.key);
  for (auto& [key, value] : ws.lazy)
    count += owned(key);
  return count;
}

void two_node_world::lease_watch() {
  // The published deadline's promise (lease_runner.hpp): the writer accepts
  // nothing into a partition its node owns at or past it (0: fenced). A
  // step that left more such ops unwritten accepted them at now().
  for (node_id n : {1, 2}) {
    auto& nl = leases->nodes[n - 1];
    if (!k.lease_deadline || !at(n).up || !at(n).writer)
      continue;
    auto count = owned_pending(n);
    auto grew = count > nl.owned_pending;
    nl.owned_pending = count;
    auto deadline = nl.deadline->load();
    auto t_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  now().time_since_epoch())
                  .count();
    if (grew && (deadline == 0 || t_ns >= deadline))
      leases->violate(
        "node " + std::to_string(n) + " at t=" + std::to_string(ms_of(now()))
        + " ms, step " + std::to_string(steps)
        + ": its writer accepted a write into a partition it owns at or "
          "past its published fence deadline ("
        + (deadline == 0 ? std::string("0: fenced")
                         : std::to_string(deadline / 1'000'000) + " ms")
        + ")");
  }

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

namespace {

/// The message the writer is handling (the one that made it write).
std::string writer_message(const store_writer_actor& w) {
  auto ptr = caf::actor_cast<caf::abstract_actor*>(w);
  auto* sa = dynamic_cast<caf::scheduled_actor*>(ptr);
  if (sa == nullptr || sa->current_mailbox_element() == nullptr)
    return "?";
  auto what = caf::to_string(sa->current_mailbox_element()->content());
  return what.size() > 60 ? what.substr(0, 60) + "..." : what;
}

} // namespace

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
              + std::to_string(ws.lease.generation) + "; published deadline "
              + std::to_string(nl.deadline->load() / 1'000'000)
              + " ms; the writer's clock "
              + std::to_string(ws.limits.lease_clock
                                 ? ws.limits.lease_clock() / 1'000'000
                                 : -1)
              + " ms; it wrote on " + writer_message(nd.writer) + ")";
  if (stalled_until_ <= nl.keeper->last_renewed()) {
    // No stall since the renewal: the fence reached the writer at the
    // deadline's instant, so nothing may land past the lease.
    leases->violate(what);
    return;
  }
  // After a stall the writer may run before the fence message reaches it.
  // Without the deadline (k.lease_deadline) that race is counted; with it,
  // failed: the writer refuses at the published deadline itself.
  auto over = uint64_t(ms_of(when) - ms_of(lapse));
  ++t.writes_past_lease;
  t.max_past_lease_ms = std::max(t.max_past_lease_ms, over);
  what += ", past the lease after a stall that ended at t="
          + std::to_string(ms_of(stalled_until_)) + " ms";
  if (t.first_past_lease.empty())
    t.first_past_lease = "seed " + std::to_string(seed) + ": " + what;
  if (k.lease_deadline)
    leases->violate(what); // the deadline must stop this too
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
