#include "actors/map_keeper.hpp"

#include <memory>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "runtime/core/errors.hpp"

namespace parley {

namespace {

using self_ptr = map_keeper_actor::stateful_pointer<map_keeper_state>;
using call_ptr = std::shared_ptr<map_keeper_state::call>;

void next_call(self_ptr self);

/// Ends the call being served with `result` and serves the next one.
void finish(self_ptr self, const call_ptr& c, caf::expected<uint64_t> result) {
  auto& st = self->state;
  if (c->rp) {
    if (result)
      c->rp->deliver(*result);
    else
      c->rp->deliver(std::move(result.error()));
  } else if (!result) {
    // The hand-out at spawn: the next call repeats it.
    spdlog::warn("map keeper: the map at start was not handed out "
                 "map_epoch={} error=\"{}\"",
                 st.where.map.map_epoch, to_string(result.error()));
  }
  st.busy = false;
  next_call(self);
}

/// Hands the current map to subscriber `i` (or the first one after it not
/// known to hold it), then to the next, in order; finishes `c` when all
/// hold it or one fails.
void hand(self_ptr self, size_t i, call_ptr c) {
  auto& st = self->state;
  auto epoch = st.where.map.map_epoch;
  auto& subs = st.deps.subscribers;
  while (i < subs.size() && subs[i].taken >= epoch)
    ++i;
  if (i == subs.size()) {
    spdlog::info("partition map handed out map_epoch={} subscribers={}",
                 epoch, subs.size());
    finish(self, c, epoch);
    return;
  }
  auto taken = [self, i, c, epoch] {
    auto& sub = self->state.deps.subscribers[i];
    sub.taken = std::max(sub.taken, epoch);
    ++self->state.handed;
    hand(self, i + 1, c);
  };
  auto ok = [self, i, c, epoch, taken](uint64_t held) {
    if (held >= epoch) {
      taken();
      return;
    }
    finish(self, c,
           caf::make_error(errc::unavailable,
                           self->state.deps.subscribers[i].name
                             + " holds map epoch " + std::to_string(held)
                             + ", not " + std::to_string(epoch)));
  };
  auto failed = [self, i, c, epoch, taken](caf::error& err) {
    // Conflict: it holds this epoch (an earlier hand-out that timed out
    // here but landed) or a newer one.
    if (is(err, errc::conflict)) {
      taken();
      return;
    }
    auto& sub = self->state.deps.subscribers[i];
    spdlog::warn("map keeper: {} did not take map_epoch={} error=\"{}\"",
                 sub.name, epoch, to_string(err));
    finish(self, c,
           caf::make_error(errc::unavailable,
                           sub.name + " did not take map epoch "
                             + std::to_string(epoch) + ": " + to_string(err)));
  };
  auto& sub = subs[i];
  if (sub.writer)
    self
      ->request(sub.writer, st.deps.timeout, caf::put_atom::value,
                st.where.self, st.where.map)
      .then(ok, failed);
  else
    self
      ->request(sub.taker, st.deps.timeout, caf::put_atom::value,
                st.where.map)
      .then(ok, failed);
}

/// Serves waiting calls, one at a time.
void next_call(self_ptr self) {
  auto& st = self->state;
  while (!st.busy && !st.calls.empty()) {
    auto c = std::make_shared<map_keeper_state::call>(
      std::move(st.calls.front()));
    st.calls.pop_front();
    auto current = st.where.map.map_epoch;
    if (c->next.map_epoch < current) {
      if (c->rp)
        c->rp->deliver(current); // older: nothing changes
      continue;
    }
    if (c->next.map_epoch > current) {
      if (auto err = st.where.replace(std::move(c->next))) {
        if (c->rp)
          c->rp->deliver(std::move(err));
        continue;
      }
      spdlog::info("partition map accepted map_epoch={} node={}",
                   st.where.map.map_epoch, st.where.self);
    }
    // Newer, or the same again: hand it to whoever does not hold it yet.
    st.busy = true;
    hand(self, 0, std::move(c));
  }
}

} // namespace

map_keeper_actor::behavior_type
map_keeper_impl(self_ptr self, placement where, map_keeper_deps deps) {
  auto& st = self->state;
  st.where = std::move(where);
  st.deps = std::move(deps);
  // Subscribers spawned without this map (the store writer) get it now.
  st.calls.push_back({st.where.map, std::nullopt});
  next_call(self);
  return {
    [self](caf::put_atom,
           partition_map& next) -> caf::result<uint64_t> {
      auto rp = self->make_response_promise<uint64_t>();
      self->state.calls.push_back({std::move(next), rp});
      next_call(self);
      return rp;
    },
    [self](caf::get_atom) { return self->state.where.map; },
  };
}

} // namespace parley
