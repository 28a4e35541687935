#include "actors/store_writer.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/keys.hpp"

namespace parley {

namespace {

using self_ptr = store_writer_actor::stateful_pointer<store_writer_state>;

/// Answers waiter `w` with the synced write's number or `err`.
void answer(self_ptr self, store_writer_state::waiter& w, uint64_t synced,
            const caf::error& err) {
  if (w.to) {
    self->send(w.to, commit_atom::value, commit_answer{w.tag, synced, err});
  } else if (err) {
    w.promise.deliver(err);
  } else {
    w.promise.deliver(synced);
  }
}

/// Refuses commits of `writer` at `epoch` if it is fenced there; else
/// clears a fence it has moved past.
caf::error check_fence(store_writer_state& st, uint64_t writer,
                       uint64_t epoch) {
  if (auto i = st.fenced.find(writer); i != st.fenced.end()) {
    if (epoch <= i->second)
      return caf::make_error(errc::storage_fenced,
                             "an earlier write of this writer failed",
                             i->second); // see next_epoch
    st.fenced.erase(i);
  }
  return {};
}

/// The partition of `key` this writer gave up, if any.
std::optional<uint32_t> given_up_of(const store_writer_state& st,
                                    std::string_view key) {
  if (!st.any_given_up)
    return std::nullopt;
  auto slot = keys::slot_of_key(key);
  if (!slot)
    return std::nullopt;
  auto p = partition_of_slot(*slot, st.map.partitions());
  if (p < st.given_up.size() && st.given_up[p])
    return p;
  return std::nullopt;
}

/// Whether the lapsed lease refuses writes to `key`: a key of a partition
/// this node owns at the current map (any partitioned key before the
/// first map).
bool lease_live(const store_writer_state& st) {
  if (!st.lease.live)
    return false;
  auto& deadline = st.limits.lease_deadline;
  if (!deadline)
    return true;
  auto now = st.limits.lease_clock
               ? st.limits.lease_clock()
               : std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
                   .count();
  return now < deadline->load();
}

bool lease_fenced(const store_writer_state& st, std::string_view key) {
  if (lease_live(st))
    return false;
  auto slot = keys::slot_of_key(key);
  if (!slot)
    return false; // meta
  if (st.map.map_epoch == 0)
    return true;
  return st.map.owner(partition_of_slot(*slot, st.map.partitions()))
         == st.me;
}

/// Sorts the puts without an answer after a change of map or lease (or
/// before a write, for the lease deadline): those of partitions this node
/// gave up are dropped; those of its own partitions wait in `held` while
/// its lease is not live, and go back to `lazy` once it is.
void sort_lazy(store_writer_state& st) {
  for (auto i = st.held.begin(); i != st.held.end();) {
    if (given_up_of(st, i->first)) {
      i = st.held.erase(i);
    } else if (!lease_fenced(st, i->first)) {
      st.lazy.emplace(i->first, std::move(i->second)); // a newer one wins
      i = st.held.erase(i);
    } else {
      ++i;
    }
  }
  for (auto i = st.lazy.begin(); i != st.lazy.end();) {
    if (given_up_of(st, i->first)) {
      i = st.lazy.erase(i);
    } else if (lease_fenced(st, i->first)) {
      st.held[i->first] = std::move(i->second);
      i = st.lazy.erase(i);
    } else {
      ++i;
    }
  }
}

/// Refuses a commit of `writer` at `epoch` that touches a partition this
/// node gave up, or one it owns while its lease is not live (and fences
/// the writer there, as a failed write does).
caf::error check_partitions(store_writer_state& st, uint64_t writer,
                            uint64_t epoch, const write_batch& batch) {
  if (!st.any_given_up && lease_live(st))
    return {};
  for (auto& op : batch.ops) {
    caf::error err;
    if (auto p = given_up_of(st, op.key))
      err = caf::make_error(errc::unavailable,
                            "partition " + std::to_string(*p)
                              + " left this node at map epoch "
                              + std::to_string(st.map.map_epoch));
    else if (lease_fenced(st, op.key))
      err = caf::make_error(errc::unavailable,
                            "the node's lease lapsed; retry");
    if (err) {
      auto& f = st.fenced[writer];
      f = std::max(f, epoch);
      return err;
    }
  }
  return {};
}

/// Whether something accepted but not written yet touches a partition the
/// lease fence holds now (its deadline passed after it was accepted).
bool pending_fenced(const store_writer_state& st) {
  if (lease_live(st))
    return false;
  for (auto& op : st.pending.ops)
    if (lease_fenced(st, op.key))
      return true;
  for (auto& [key, v] : st.pending_max)
    if (lease_fenced(st, key))
      return true;
  for (auto& op : st.pending_versioned)
    if (lease_fenced(st, op.key) || lease_fenced(st, op.version_key))
      return true;
  return false;
}

/// Refuses everything accepted and not written yet, as a failed write
/// does: nothing of it is written, each requester gets `err` and its
/// writer is fenced at its epoch. For a lease that lapsed between a
/// commit's acceptance and its write: writing it then could land after
/// another node took the partition, and a later commit of the same
/// writer refused meanwhile must not see an earlier one succeed after it.
void refuse_pending(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  auto waiting = std::move(st.waiting);
  st.waiting.clear();
  st.pending.ops.clear();
  st.pending_max.clear();
  st.pending_versioned.clear();
  ++st.stats.failures;
  for (auto& w : waiting) {
    auto& f = st.fenced[w.writer];
    f = std::max(f, w.epoch);
    answer(self, w, 0, err);
  }
}

caf::error lease_lapsed_error() {
  return caf::make_error(errc::unavailable, "the node's lease lapsed; retry");
}

/// Writes everything pending and answers its requesters: a synced write
/// if anyone waits for it (or `sync`), else an unsynced one (only records
/// a crash may lose are pending).
void write_pending(self_ptr self, bool sync = false) {
  auto& st = self->state;
  st.tick_scheduled = false;
  if (st.limits.lease_deadline && pending_fenced(st))
    refuse_pending(self, lease_lapsed_error());
  sync = sync || !st.waiting.empty();
  if (st.waiting.empty() && st.pending.empty() && st.lazy.empty())
    return;
  if (!st.lazy.empty() && st.limits.lease_deadline)
    sort_lazy(st); // the deadline may have passed since they came
  if (!st.lazy.empty()) {
    write_batch both;
    for (auto& [key, value] : st.lazy)
      both.put(key, value);
    for (auto& op : st.pending.ops)
      both.ops.push_back(std::move(op));
    st.pending = std::move(both);
  }
  // Resolve versioned puts against the disk and each other, in order
  // (this thread is the only writer, so nothing changes these keys in
  // between).
  if (!st.pending_versioned.empty()) {
    std::map<std::string, uint64_t> newest;
    for (auto& op : st.pending_versioned) {
      auto i = newest.find(op.version_key);
      if (i == newest.end()) {
        auto cur = st.kv->get(op.version_key);
        uint64_t on_disk = 0;
        if (cur && *cur)
          on_disk = keys::read_u64(**cur, 0).value_or(0);
        i = newest.emplace(op.version_key, on_disk).first;
      }
      if (op.version <= i->second)
        continue; // stale or repeated: the newer record stays
      i->second = op.version;
      std::string v;
      keys::append_u64(v, op.version);
      st.pending.put(std::move(op.key), std::move(op.value));
      st.pending.put(op.version_key, std::move(v));
    }
    st.pending_versioned.clear();
  }
  // Resolve max-merges against the disk (this thread is the only writer,
  // so nothing changes these keys in between).
  for (auto& [key, v] : st.pending_max) {
    auto cur = st.kv->get(key);
    uint64_t on_disk = 0;
    if (cur && *cur)
      on_disk = keys::read_u64(**cur, 0).value_or(0);
    if (v > on_disk) {
      std::string bytes;
      keys::append_u64(bytes, v);
      st.pending.put(key, std::move(bytes));
    }
  }
  st.pending_max.clear();
  // Sorted, LevelDB inserts walk its memtable in order (far fewer cache
  // misses); stable, so later operations on one key still win.
  std::stable_sort(st.pending.ops.begin(), st.pending.ops.end(),
                   [](const kv_op& a, const kv_op& b) { return a.key < b.key; });
  auto t0 = std::chrono::steady_clock::now();
  auto err = st.kv->write(st.pending, sync);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(
              std::chrono::steady_clock::now() - t0)
              .count();
  auto ms = us / 1000;
  if (st.limits.metrics && sync)
    st.limits.metrics->commit_latency.observe(static_cast<uint64_t>(us));
  if (ms >= 20)
    spdlog::warn("slow synced write ms={} ops={} requests={}", ms,
                 st.pending.ops.size(), st.waiting.size());
  auto waiting = std::move(st.waiting);
  auto ops = st.pending.ops.size();
  st.waiting.clear();
  st.pending.ops.clear();
  if (err) {
    ++st.stats.failures;
    for (auto& w : waiting) {
      auto& f = st.fenced[w.writer];
      f = std::max(f, w.epoch);
      answer(self, w, 0, err);
    }
    // No one waits for the lazy puts to retry them: the writer does.
    if (!st.lazy.empty() && !st.retry_scheduled) {
      st.retry_scheduled = true;
      self->delayed_send(self, std::chrono::milliseconds(100),
                         caf::tick_atom::value);
    }
    return;
  }
  st.lazy.clear();
  if (sync)
    ++st.stats.syncs;
  st.stats.ops += ops;
  st.stats.commits += waiting.size();
  for (auto& w : waiting)
    answer(self, w, st.stats.syncs, caf::error{});
}

/// Adds `batch` to what the next write carries.
void add(self_ptr self, write_batch& batch) {
  auto& st = self->state;
  for (auto& op : batch.ops) {
    if (op.max_u64) {
      auto v = keys::read_u64(op.value, 0).value_or(0);
      auto& slot = st.pending_max[op.key];
      slot = std::max(slot, v);
    } else if (!op.version_key.empty()) {
      st.pending_versioned.push_back(std::move(op));
    } else {
      st.pending.ops.push_back(std::move(op));
    }
  }
}

/// Writes once the mailbox is drained (everything in it joins the batch),
/// or now if the batch is already large.
void write_soon(self_ptr self) {
  auto& st = self->state;
  if (st.pending.ops.size() + st.pending_versioned.size()
      >= st.limits.max_batch_ops) {
    write_pending(self);
  } else if (!st.tick_scheduled) {
    // Runs after everything already in the mailbox: that is the batch.
    st.tick_scheduled = true;
    self->send(self, caf::tick_atom::value);
  }
}

} // namespace

store_writer_actor::behavior_type
store_writer_impl(self_ptr self, std::shared_ptr<kv_backend> kv,
                  store_writer_limits limits) {
  self->state.kv = std::move(kv);
  self->state.limits = limits;
  return {
    [=](commit_atom, uint64_t writer, uint64_t epoch,
        write_batch& batch) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (auto err = check_fence(st, writer, epoch))
        return err;
      if (auto err = check_partitions(st, writer, epoch, batch)) {
        if (pending_fenced(st))
          refuse_pending(self, err); // answered before this refusal
        return err;
      }
      add(self, batch);
      auto rp = self->make_response_promise<uint64_t>();
      st.waiting.push_back({writer, epoch, rp, {}, 0});
      write_soon(self);
      return rp;
    },
    [=](commit_atom, tagged_commit& c) {
      auto& st = self->state;
      auto to = caf::actor_cast<commit_answer_actor>(self->current_sender());
      auto err = check_fence(st, c.writer, c.epoch);
      if (!err)
        err = check_partitions(st, c.writer, c.epoch, c.batch);
      if (err) {
        if (pending_fenced(st))
          refuse_pending(self, err); // answered before this refusal
        if (to)
          self->send(to, commit_atom::value, commit_answer{c.tag, 0, err});
        return;
      }
      add(self, c.batch);
      st.waiting.push_back({c.writer, c.epoch, {}, std::move(to), c.tag});
      write_soon(self);
    },
    [=](caf::put_atom, write_batch& batch) {
      auto& st = self->state;
      for (auto& op : batch.ops) {
        if (given_up_of(st, op.key))
          continue; // a crash may lose them anyway
        if (lease_fenced(st, op.key))
          st.held[op.key] = std::move(op.value); // written once live
        else
          st.lazy[op.key] = std::move(op.value); // plain puts (see the hpp)
      }
      write_soon(self);
    },
    [=](load_atom, conversation_id conv) -> caf::result<conversation_snapshot> {
      write_pending(self, true);
      // A new incarnation of the conversation starts at epoch 1, for its
      // send path and its receipts alike.
      self->state.fenced.erase(writer_ids::conversation(conv));
      self->state.fenced.erase(writer_ids::receipts(conv));
      auto snap = store::load_conversation(*self->state.kv, conv);
      if (!snap)
        return snap.error();
      return std::move(*snap);
    },
    [=](caf::put_atom, node_id me,
        partition_map& next) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (auto err = next.validate(next.partitions()))
        return err;
      if (st.map.map_epoch > 0 && next.partitions() != st.map.partitions())
        return caf::make_error(errc::bad_request,
                               "a map of another partition count");
      if (next.map_epoch < st.map.map_epoch)
        return caf::make_error(errc::conflict,
                               "map epoch " + std::to_string(next.map_epoch)
                                 + " is below the writer's "
                                 + std::to_string(st.map.map_epoch));
      if (next.map_epoch == st.map.map_epoch)
        return st.map.map_epoch;
      // Everything accepted so far lands before the fence holds.
      write_pending(self, true);
      auto first = st.map.map_epoch == 0;
      st.given_up.resize(next.partitions(), false);
      for (uint32_t p = 0; p < next.partitions(); ++p) {
        if (next.owner(p) == me)
          st.given_up[p] = false;
        else if (!first && st.map.owner(p) == me)
          st.given_up[p] = true;
      }
      st.map = std::move(next);
      st.me = me;
      st.any_given_up = std::find(st.given_up.begin(), st.given_up.end(),
                                  true)
                        != st.given_up.end();
      sort_lazy(st);
      if (st.any_given_up)
        spdlog::info("partition fence map_epoch={} node={}",
                     st.map.map_epoch, me);
      return st.map.map_epoch;
    },
    [=](caf::put_atom, lease_state next) -> uint64_t {
      auto& st = self->state;
      // Everything accepted so far lands before the fence holds.
      write_pending(self, true);
      if (next.generation <= st.lease.generation)
        return st.lease.generation; // older (or repeated): ignored
      if (next.live != st.lease.live)
        spdlog::info("lease fence live={} generation={}", next.live,
                     next.generation);
      st.lease = next;
      sort_lazy(st);
      if (!st.lazy.empty())
        write_soon(self);
      return st.lease.generation;
    },
    [=](caf::flush_atom) -> uint64_t {
      write_pending(self, true);
      return self->state.stats.syncs;
    },
    [=](stats_atom) -> writer_stats { return self->state.stats; },
    [=](caf::tick_atom) {
      auto& st = self->state;
      if (st.tick_scheduled || st.retry_scheduled) {
        st.retry_scheduled = false;
        write_pending(self);
      }
    },
  };
}

uint64_t next_epoch(const caf::error& err, uint64_t epoch) {
  auto next = epoch + 1;
  if (is(err, errc::storage_fenced)) {
    auto& ctx = err.context();
    if (ctx.size() == 2 && ctx.match_element<uint64_t>(1))
      next = std::max(next, ctx.get_as<uint64_t>(1) + 1);
  }
  return next;
}

} // namespace parley
