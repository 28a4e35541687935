#include "actors/fanout.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley {

namespace {

using fanout_ptr = fanout_actor::stateful_pointer<fanout_state>;

fanout_shard_actor spawn_shard(fanout_ptr self) {
  auto& st = self->state;
  fanout_shard_actor s;
  if (st.opts.own_threads)
    s = self->spawn<caf::detached + caf::monitored>(fanout_shard_impl,
                                                    st.deps, st.opts);
  else
    s = self->spawn<caf::monitored>(fanout_shard_impl, st.deps, st.opts);
  st.to_stop->push_back(caf::actor_cast<caf::actor>(s));
  return s;
}

void dispatch(fanout_ptr self, uint64_t id) {
  auto& st = self->state;
  auto i = st.jobs.find(id);
  if (i == st.jobs.end())
    return;
  auto& j = i->second;
  self
    ->request(st.shards[j.shard], timeouts::scan, fanout_atom::value,
              j.msg, j.users)
    .then(
      [self, id](uint64_t) {
        auto& st = self->state;
        auto i = st.jobs.find(id);
        if (i == st.jobs.end())
          return; // done by an earlier attempt
        if (st.deps.metrics)
          st.deps.metrics->fanout_backlog
            -= static_cast<int64_t>(i->second.users.size());
        st.jobs.erase(i);
      },
      [self, id](caf::error& err) {
        // The shard is gone: its down message re-dispatches the job.
        if (err != caf::sec::request_timeout)
          return;
        // It is alive but has not finished the slice in time (or the
        // request or its answer was lost): hand the slice out again.
        // Repeats are harmless (a device actor passes each large-group
        // message to its connection at most once); a slow shard finds the
        // copy later in its queue, and the answer to it settles the job.
        spdlog::warn("fanout slice timed out job={}; dispatching it again",
                     id);
        dispatch(self, id);
      });
}

} // namespace

fanout_state::~fanout_state() {
  if (deps.metrics)
    for (auto& [id, j] : jobs)
      deps.metrics->fanout_backlog -= static_cast<int64_t>(j.users.size());
}


fanout_actor::behavior_type
fanout_impl(fanout_ptr self, fanout_deps deps, fanout_options opts) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.opts = opts;
  if (st.opts.shards == 0)
    st.opts.shards = 1;
  for (size_t i = 0; i < st.opts.shards; ++i)
    st.shards.push_back(spawn_shard(self));
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    for (size_t i = 0; i < st.shards.size(); ++i) {
      if (st.shards[i].address() != dm.source)
        continue;
      spdlog::warn("fanout shard failed shard={} reason=\"{}\"; restarting "
                   "and handing it its unfinished slices",
                   i, to_string(dm.reason));
      auto& hs = *st.to_stop;
      hs.erase(std::remove(hs.begin(), hs.end(),
                           caf::actor_cast<caf::actor>(st.shards[i])),
               hs.end());
      st.shards[i] = spawn_shard(self);
      for (auto& [id, j] : st.jobs)
        if (j.shard == i)
          dispatch(self, id);
    }
  });
  self->attach_functor([to_stop = st.to_stop] {
    for (auto& s : *to_stop)
      caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
  });
  return {
    [self](deliver_atom, const stored_message& msg,
           const std::vector<user_id>& to) {
      auto& st = self->state;
      std::vector<std::vector<user_id>> slices(st.shards.size());
      for (auto u : to)
        slices[u % slices.size()].push_back(u);
      for (size_t i = 0; i < slices.size(); ++i) {
        if (slices[i].empty())
          continue;
        auto id = st.next_job++;
        if (st.deps.metrics)
          st.deps.metrics->fanout_backlog
            += static_cast<int64_t>(slices[i].size());
        st.jobs.emplace(id, fanout_state::job{i, msg, std::move(slices[i])});
        dispatch(self, id);
      }
    },
    [self](receipt_atom, const receipt_event& ev,
           const std::vector<user_id>& to) {
      self->send(self->state.deps.receipts, receipt_atom::value, ev, to);
    },
    [self](caf::get_atom) {
      std::vector<caf::actor> out;
      for (auto& s : self->state.shards)
        out.push_back(caf::actor_cast<caf::actor>(s));
      return out;
    },
    [self](caf::put_atom, partition_map& next) -> caf::result<uint64_t> {
      auto& st = self->state;
      // The same epoch again: handed to the shards again (one may have
      // missed it), nothing changes here.
      if (next.map_epoch != st.deps.where.map.map_epoch)
        if (auto err = st.deps.where.replace(std::move(next)))
          return err;
      auto epoch = st.deps.where.map.map_epoch;
      auto rp = self->make_response_promise<uint64_t>();
      auto left = std::make_shared<size_t>(st.shards.size());
      auto failed = std::make_shared<caf::error>();
      auto settle = [rp, left, failed, epoch]() mutable {
        if (--*left > 0)
          return;
        if (*failed)
          rp.deliver(caf::make_error(errc::unavailable,
                                     "a fan-out shard did not take map epoch "
                                       + std::to_string(epoch) + ": "
                                       + to_string(*failed)));
        else
          rp.deliver(epoch);
      };
      for (auto& shard : st.shards)
        self
          ->request(shard, timeouts::ask, caf::put_atom::value,
                    st.deps.where.map)
          .then([settle](uint64_t) mutable { settle(); },
                [settle, failed](caf::error& err) mutable {
                  if (!*failed)
                    *failed = std::move(err);
                  settle();
                });
      return rp;
    },
    [self](caf::put_atom, node_id n, caf::actor& reg) {
      auto& st = self->state;
      // Ahead of any later slice in each shard's mailbox (one sender).
      for (auto& shard : st.shards)
        self->send(shard, caf::put_atom::value, n, reg);
      auto known = set_registry(st.deps, n, std::move(reg));
      spdlog::info("fanout: registry of node={} {}", n,
                   st.deps.registries.count(n) > 0 ? "set" : "forgotten");
      return known;
    },
  };
}

} // namespace parley
