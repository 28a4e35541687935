// The inbox actor's conversation side (inbox.hpp): message and receipt
// events into rows, and the actor's behaviour.

#include "actors/inbox.hpp"

#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "actors/inbox_detail.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/store/meta_store.hpp"

namespace parley {

namespace inbox_detail {

store::async_reads reads(self_ptr self) {
  auto& st = self->state;
  if (!st.router)
    return store::async_reads::of(
      store::partition_reads::local(*st.kv, st.partitions));
  store::async_reads r;
  r.partitions = st.partitions;
  auto router = st.router;
  r.convs = [self, router](conv_reads x, store::then_fn<conv_answers> k) {
    self->request(router, timeouts::ask, fetch_atom::value, std::move(x))
      .then([k](conv_answers& a) { k(std::move(a)); },
            [k](caf::error& err) { k(std::move(err)); });
  };
  r.users = [self, router](user_reads x, store::then_fn<user_answers> k) {
    self->request(router, timeouts::ask, fetch_atom::value, std::move(x))
      .then([k](user_answers& a) { k(std::move(a)); },
            [k](caf::error& err) { k(std::move(err)); });
  };
  return r;
}

bool worth_retrying(const caf::error& err) {
  if (err.category() == caf::atom("parley"))
    return retryable(static_cast<errc>(err.code()));
  // CAF's own (a timeout, a receiver that ended with its node): the
  // route may work again.
  return err.category() == caf::atom("system");
}

namespace {

constexpr size_t max_cache = 50000;

/// The conversation side's view of (user, conv) from the log: its own
/// member record gives the window (conv_read_member_probe), by message.
void compute(self_ptr self, const entry_key& k,
             store::then_fn<inbox_entry> done) {
  conv_query q;
  q.conv = k.second;
  q.kind = conv_read_member_probe;
  q.user = k.first;
  conv_reads r;
  r.partition = partition_of(placement_key::conversation(k.second),
                             self->state.partitions);
  r.queries.push_back(std::move(q));
  reads(self).convs(std::move(r), [k, done](caf::expected<conv_answers> a) {
    if (!a)
      done(a.error());
    else if (a->answers.empty())
      done(caf::make_error(errc::storage_corrupt, "probe not answered"));
    else
      done(a->answers.front().entry);
  });
}

void apply(self_ptr self, const projection_event& ev, user_id user);

/// Drops the cached rows for which `drop` holds, except those that still
/// have to be sent (dirty, in flight) or are being recomputed; returns how
/// many went.
template <class Pred>
size_t forget_cached(self_ptr self, Pred drop) {
  auto& st = self->state;
  std::set<entry_key> busy;
  for (auto& [p, keys] : st.sending)
    busy.insert(keys.begin(), keys.end());
  size_t n = 0;
  for (auto i = st.cache.begin(); i != st.cache.end();) {
    auto& k = i->first;
    if (drop(k) && !st.dirty.count(k) && !busy.count(k)
        && !st.waiting.count(k)) {
      i = st.cache.erase(i);
      ++n;
    } else {
      ++i;
    }
  }
  return n;
}

void evict(self_ptr self) {
  if (self->state.cache.size() < max_cache)
    return;
  // Drop what is sent and acked; keep what still has to be.
  forget_cached(self, [](const entry_key&) { return true; });
}

/// The cached row of `k`, or null after starting its recomputation (the
/// event `ev` is applied to its result).
inbox_entry* entry(self_ptr self, const entry_key& k,
                   const projection_event& ev) {
  auto& st = self->state;
  if (auto w = st.waiting.find(k); w != st.waiting.end()) {
    w->second.push_back(ev);
    return nullptr;
  }
  if (auto i = st.cache.find(k); i != st.cache.end())
    return &i->second;
  evict(self);
  recompute(self, k);
  if (auto w = st.waiting.find(k); w != st.waiting.end()) {
    w->second.push_back(ev); // applied to the recomputed row
    return nullptr;
  }
  // Recomputed at once (local reads): apply to the result, if any.
  auto i = st.cache.find(k);
  return i == st.cache.end() ? nullptr : &i->second;
}

void on_message(self_ptr self, const projection_event& ev, user_id user) {
  auto& msg = ev.msg;
  entry_key k{user, msg.conversation};
  auto* e = entry(self, k, ev);
  if (!e || msg.seq <= e->head)
    return; // re-emitted, or already counted by a recomputation
  if (msg.seq != e->head + 1) {
    recompute(self, k); // events were lost: count from the log
    return;
  }
  auto next = *e;
  next.head = msg.seq;
  next.latest_sender = msg.sender_user;
  next.latest_at_ms = msg.sent_at_ms;
  if (msg.sender_user != user && msg.seq > next.read)
    ++next.unread;
  mark(self, k, next);
}

/// Only reads change a row (delivered cursors do not).
void on_read(self_ptr self, const projection_event& ev) {
  auto& r = ev.receipt;
  entry_key k{r.user, r.conversation};
  auto* e = entry(self, k, ev);
  if (!e || r.seq <= e->read)
    return;
  if (r.seq >= e->head) {
    auto next = *e;
    next.read = r.seq;
    next.unread = 0;
    mark(self, k, next);
    return;
  }
  // Read part-way: count what is left from the log.
  recompute(self, k);
}

void apply(self_ptr self, const projection_event& ev, user_id user) {
  if (ev.is_message)
    on_message(self, ev, user);
  else if (ev.receipt.kind == 2)
    on_read(self, ev);
}

/// A new map: rows cached for partitions whose owner changed are
/// forgotten (read again from the store, or recomputed from the log, when
/// next needed), unless they still have to be sent or are being written.
/// A partition that left and came back was replaced in this node's store
/// by the other owner's copy, which can be newer than the cache.
uint64_t take_map(self_ptr self, partition_map next) {
  auto& st = self->state;
  if (next.map_epoch <= st.map.map_epoch)
    return st.map.map_epoch;
  auto moved = [&](uint32_t p) {
    return !st.map.owners.empty() && st.map.owner(p) != next.owner(p);
  };
  auto forgotten = forget_cached(self, [&](const entry_key& k) {
    return moved(
      partition_of(placement_key::conversation(k.second), st.partitions));
  });
  for (auto i = st.rows.begin(); i != st.rows.end();) {
    if (moved(partition_of(placement_key::user(i->first.first),
                           st.partitions))
        && !st.row_writes.count(i->first)) {
      i = st.rows.erase(i);
      ++forgotten;
    } else {
      ++i;
    }
  }
  if (forgotten > 0)
    spdlog::info("inbox: partition map epoch={} forgotten_rows={}",
                 next.map_epoch, forgotten);
  st.map = std::move(next);
  return st.map.map_epoch;
}

void on_event(self_ptr self, const projection_event& ev) {
  if (!ev.is_message) {
    apply(self, ev, ev.receipt.user);
    return;
  }
  for (auto user : ev.to)
    apply(self, ev, user);
}

} // namespace

void start_recompute(self_ptr self, const entry_key& k,
                     std::vector<projection_event> evs,
                     std::function<void()> after) {
  self->state.waiting[k] = std::move(evs);
  compute(self, k, [self, k, after](caf::expected<inbox_entry> e) {
    auto& st = self->state;
    auto evs = std::move(st.waiting[k]);
    st.waiting.erase(k);
    if (e) {
      mark(self, k, *e);
      for (auto& ev : evs) // on the recomputed row
        apply(self, ev, k.first);
    } else if (worth_retrying(e.error())) {
      // Unavailable for now (a timeout, a partition moving): again after
      // timeouts::retry, with the events that came meanwhile.
      spdlog::warn("inbox entry not computed user={} conversation={} "
                   "error=\"{}\"",
                   k.first, k.second, to_string(e.error()));
      auto& later = st.stalled[k];
      later.insert(later.end(), evs.begin(), evs.end());
      queue_retry(self);
    } else if (!is(e.error(), errc::forbidden)) {
      spdlog::warn("inbox entry not computed user={} conversation={} "
                   "error=\"{}\"",
                   k.first, k.second, to_string(e.error()));
    }
    if (after)
      after();
  });
}

void recompute(self_ptr self, const entry_key& k, std::function<void()> after) {
  auto& st = self->state;
  if (st.waiting.count(k)) { // under way: its result counts this too
    if (after)
      after();
    return;
  }
  std::vector<projection_event> evs;
  if (auto i = st.stalled.find(k); i != st.stalled.end()) {
    evs = std::move(i->second);
    st.stalled.erase(i);
  }
  start_recompute(self, k, std::move(evs), std::move(after));
}

void retry_stalled(self_ptr self) {
  auto stalled = std::exchange(self->state.stalled, {});
  for (auto& [k, evs] : stalled)
    if (!self->state.waiting.count(k))
      start_recompute(self, k, std::move(evs), {});
}

} // namespace inbox_detail

using namespace inbox_detail;

inbox_actor::behavior_type
inbox_impl(self_ptr self, std::shared_ptr<kv_backend> kv,
           store_writer_actor writer, directory_actor router,
           uint32_t partitions, bool reconcile_at_start, caf::timespan flush_delay,
           std::shared_ptr<node_metrics> metrics) {
  auto& st = self->state;
  st.kv = std::move(kv);
  st.writer = std::move(writer);
  st.router = std::move(router);
  st.flush_delay = flush_delay;
  if (partitions > 0)
    st.partitions = partitions;
  else if (auto p = store::stored_partitions(*st.kv); p && *p > 0)
    st.partitions = *p;
  if (reconcile_at_start)
    rebuild(self, 0, false, [](caf::expected<uint64_t> n) {
      if (!n)
        spdlog::error("inbox reconciliation failed error=\"{}\"",
                      to_string(n.error()));
      else
        spdlog::info("inbox reconciled repaired_entries={}", *n);
    });
  return {
    [self, metrics](deliver_atom, const projection_batch& batch) {
      if (metrics)
        metrics->projection_backlog -= int64_t(batch.events.size());
      for (auto& ev : batch.events)
        on_event(self, ev);
    },
    [self, metrics](deliver_atom, const stored_message& msg,
                    const std::vector<user_id>& to) {
      if (metrics)
        --metrics->projection_backlog;
      projection_event ev;
      ev.msg = msg;
      ev.to = to;
      on_event(self, ev);
    },
    [self, metrics](receipt_atom, const receipt_event& r,
                    const std::vector<user_id>&) {
      if (metrics)
        --metrics->projection_backlog;
      projection_event ev;
      ev.is_message = false;
      ev.receipt = r;
      on_event(self, ev);
    },
    [self](caf::put_atom, partition_map& next) {
      return take_map(self, std::move(next));
    },
    [self](caf::get_atom,
           user_id user) -> caf::result<std::vector<inbox_entry>> {
      inbox_query q;
      q.kind = inbox_query_list;
      q.user = user;
      if (self->state.router) // the owner of the user's partition answers
        return self->delegate(self->state.router, fetch_atom::value, q);
      return answer(self, q);
    },
    [self](caf::put_atom, user_id user, conversation_id conv, bool archived,
           bool pinned, bool muted) -> caf::result<inbox_entry> {
      inbox_query q{inbox_query_flags, user, conv, archived, pinned, muted};
      auto rp = self->make_response_promise<inbox_entry>();
      auto one = [rp](std::vector<inbox_entry>& xs) mutable {
        if (xs.size() == 1)
          rp.deliver(xs.front());
        else
          rp.deliver(caf::make_error(errc::storage_corrupt, "no entry"));
      };
      if (self->state.router)
        self->request(self->state.router, timeouts::commit, fetch_atom::value,
                      q)
          .then(one, [rp](caf::error& err) mutable { rp.deliver(err); });
      else
        self->request(caf::actor_cast<inbox_actor>(self), timeouts::commit,
                      fetch_atom::value, q)
          .then(one, [rp](caf::error& err) mutable { rp.deliver(err); });
      return rp;
    },
    [self](rebuild_atom, user_id user, bool all) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      rebuild(self, user, all, [rp, user, all](caf::expected<uint64_t> n) mutable {
        if (!n) {
          rp.deliver(n.error());
          return;
        }
        spdlog::info("inbox rebuilt user={} all={} entries={}", user, all, *n);
        rp.deliver(*n);
      });
      return rp;
    },
    [self](caf::put_atom, inbox_rows& r) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      accept(self, std::move(r.rows), false,
             [rp](caf::expected<uint64_t> n) mutable {
               if (n)
                 rp.deliver(*n);
               else
                 rp.deliver(n.error());
             });
      return rp;
    },
    [self](fetch_atom, const inbox_query& q) { return answer(self, q); },
    [self](caf::put_atom, directory_actor& router, uint32_t partitions) {
      self->state.router = std::move(router);
      if (partitions > 0)
        self->state.partitions = partitions;
    },
    [self](caf::flush_atom) { flush(self); },
    [self](caf::timeout_atom) {
      self->state.retry_queued = false;
      retry_stalled(self);
      for (auto& f : std::exchange(self->state.deferred, {}))
        f();
      flush(self);
    },
  };
}

} // namespace parley
