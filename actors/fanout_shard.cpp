// The fan-out's shards (actors/fanout.hpp): each splits its slice of a
// large group's members by owner node and sends each node's registry its
// batches, at most `window` in flight.

#include "actors/fanout.hpp"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "runtime/core/timeouts.hpp"

namespace parley {

namespace {

using shard_ptr = fanout_shard_actor::stateful_pointer<fanout_shard_state>;

/// Lowers the priority of the shard's own thread (detached) once, so that
/// the threads serving everyone else win when the CPU is short.
void lower_priority(shard_ptr self) {
  auto& st = self->state;
  if (!st.opts.own_threads || st.prioritized)
    return;
  st.prioritized = true;
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)),
                  st.opts.nice)
      != 0)
    spdlog::warn("fanout shard could not lower its priority");
}

/// `users` grouped by the node owning their partition, each group cut into
/// batches of at most `batch_users` (one node's batch may mix partitions).
std::vector<fanout_shard_state::batch>
split(const fanout_shard_state& st, const std::vector<user_id>& users) {
  const auto& map = st.deps.where.map;
  auto parts = std::max<uint32_t>(map.partitions(), 1);
  std::map<node_id, std::vector<user_id>> by_owner;
  for (auto u : users)
    by_owner[map.owner(partition_of(placement_key::user(u), parts))]
      .push_back(u);
  std::vector<fanout_shard_state::batch> out;
  auto most = std::max<size_t>(st.opts.batch_users, 1);
  for (auto& [owner, us] : by_owner)
    for (size_t i = 0; i < us.size(); i += most)
      out.push_back({owner, std::vector<user_id>(
                              us.begin() + static_cast<std::ptrdiff_t>(i),
                              us.begin() + static_cast<std::ptrdiff_t>(
                                std::min(us.size(), i + most)))});
  return out;
}

void pump(shard_ptr self);
void answered(shard_ptr self, uint64_t token, uint64_t pushed);

/// Splits the batches of queued work not sent yet again by the current map.
void resplit(fanout_shard_state& st) {
  for (auto& [id, w] : st.queue) {
    std::vector<user_id> left;
    for (auto i = w.next; i < w.batches.size(); ++i)
      left.insert(left.end(), w.batches[i].users.begin(),
                  w.batches[i].users.end());
    w.batches.resize(w.next);
    for (auto& b : split(st, left))
      w.batches.push_back(std::move(b));
  }
}

/// Settles one answered (or failed) batch of work `id`.
void settle(shard_ptr self, uint64_t id, uint64_t pushed) {
  auto& st = self->state;
  --st.in_flight;
  auto i = st.queue.find(id);
  if (i != st.queue.end()) {
    auto& w = i->second;
    --w.open;
    w.pushed += pushed;
    if (w.next == w.batches.size() && w.open == 0) {
      if (st.deps.metrics)
        st.deps.metrics->fanout_pushes += w.pushed;
      w.rp.deliver(w.pushed);
      st.queue.erase(i);
    }
  }
  pump(self);
}

/// Sends batches, oldest work first, while fewer than `window` are in
/// flight. A batch goes to the registry of its users' node; one whose node
/// has no known registry is skipped (those members sync).
void pump(shard_ptr self) {
  auto& st = self->state;
  auto window = std::max<size_t>(st.opts.window, 1);
  for (auto i = st.queue.begin();
       i != st.queue.end() && st.in_flight < window;) {
    auto id = i->first;
    auto& w = i->second;
    if (w.next == w.batches.size()) {
      if (w.open == 0) { // nothing to send (no users)
        w.rp.deliver(w.pushed);
        i = st.queue.erase(i);
      } else {
        ++i;
      }
      continue;
    }
    auto& b = w.batches[w.next++];
    auto reg = st.deps.registries.find(b.owner);
    if (reg == st.deps.registries.end() || !reg->second) {
      st.unrouted += b.users.size();
      spdlog::warn("fanout: no registry for node={}; {} members sync instead",
                   b.owner, b.users.size());
      continue;
    }
    ++st.in_flight;
    ++w.open;
    auto token = st.next_token++;
    st.sent.emplace(token, fanout_shard_state::sent_batch{id, b.owner});
    self
      ->request(reg->second, timeouts::scan, fanout_atom::value, w.msg,
                std::move(b.users))
      .then([self, token](uint64_t n) { answered(self, token, n); },
            [self, token](caf::error& err) {
              // A registry that moved a partition or does not answer in
              // time: its members sync (a retried slice tries again).
              spdlog::warn("fanout batch failed error=\"{}\"",
                           to_string(err));
              answered(self, token, 0);
            });
  }
}

/// The answer (or failure) of batch `token`, unless the batch was given
/// up already.
void answered(shard_ptr self, uint64_t token, uint64_t pushed) {
  auto& st = self->state;
  auto i = st.sent.find(token);
  if (i == st.sent.end())
    return; // its node was forgotten: settled then
  auto id = i->second.work;
  st.sent.erase(i);
  settle(self, id, pushed);
}

/// Settles at once the batches in flight to node `n`, which was forgotten
/// (gone, or its connection lost): an answer may never come, and they
/// must not hold the window until their timeout. Their members sync.
void give_up(shard_ptr self, node_id n) {
  auto& st = self->state;
  std::vector<uint64_t> works;
  for (auto i = st.sent.begin(); i != st.sent.end();) {
    if (i->second.owner != n) {
      ++i;
      continue;
    }
    works.push_back(i->second.work);
    i = st.sent.erase(i);
  }
  if (works.empty())
    return;
  st.given_up += works.size();
  spdlog::warn("fanout: node={} forgotten with {} batches in flight; their "
               "members sync",
               n, works.size());
  for (auto id : works)
    settle(self, id, 0);
}

} // namespace

uint64_t set_registry(fanout_deps& deps, node_id n, caf::actor reg) {
  if (reg)
    deps.registries[n] = caf::actor_cast<device_registry_actor>(std::move(reg));
  else
    deps.registries.erase(n);
  return deps.registries.size();
}

fanout_shard_actor::behavior_type
fanout_shard_impl(shard_ptr self, fanout_deps deps, fanout_options opts) {
  self->state.deps = std::move(deps);
  self->state.opts = opts;
  return {
    [self](fanout_atom, stored_message& msg,
           std::vector<user_id>& users) -> caf::result<uint64_t> {
      lower_priority(self);
      auto& st = self->state;
      auto rp = self->make_response_promise<uint64_t>();
      auto batches = split(st, users);
      st.queue.emplace(st.next_work++,
                       fanout_shard_state::work{std::move(msg),
                                                std::move(batches), 0, 0, 0,
                                                rp});
      pump(self);
      return rp;
    },
    [self](caf::put_atom, partition_map& next) -> caf::result<uint64_t> {
      auto& st = self->state;
      auto& where = st.deps.where;
      if (next.map_epoch == where.map.map_epoch)
        return where.map.map_epoch; // taken before (a repeated hand-out)
      if (auto err = where.replace(std::move(next)))
        return err;
      resplit(st);
      pump(self);
      return where.map.map_epoch;
    },
    [self](caf::put_atom, node_id n, caf::actor& reg) {
      auto forget = !reg;
      set_registry(self->state.deps, n, std::move(reg));
      if (forget)
        give_up(self, n);
      pump(self);
    },
  };
}

} // namespace parley
