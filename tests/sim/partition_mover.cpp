#include "partition_mover.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/outbox_relay.hpp"
#include "actors/store_writer.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/layout.hpp"
#include "two_node_actors.hpp"

namespace parley::sim {

records read_range(kv_backend& kv, uint32_t p, uint32_t partitions) {
  records out;
  auto err = store::read_partition(kv, p, partitions,
                                   [&](std::string_view k, std::string_view v) {
                                     out.emplace(std::string(k),
                                                 std::string(v));
                                     return true;
                                   });
  REQUIRE(!err);
  return out;
}

namespace {

/// One chunk of the current pass into the new owner's store (a failed
/// write is tried again on the next turn). True once the pass is done.
bool mirror_once(two_node_world& w, const move_plan& m, move_log& log,
                 bool tail) {
  auto chunk = store::mirror_chunk(*w.at(m.from).disk, *w.at(m.to).disk,
                                   log.cur, m.chunk);
  if (!chunk) {
    log.error = "mirror_chunk: " + caf::to_string(chunk.error());
    return true;
  }
  if (!chunk->batch.empty()) {
    if (auto err = w.at(m.to).disk->write(chunk->batch, true)) {
      ++log.failed_writes;
      return false;
    }
  }
  ++log.chunks;
  if (tail) {
    log.tail_puts += chunk->puts;
    log.tail_erases += chunk->erases;
  }
  log.cur = chunk->after;
  return log.cur.done;
}

/// Hands node `n` the map `m.after` through its map keeper (the writer
/// fences, then the directory routes; a retryable failure is asked again,
/// as the call is idempotent), or, the planted bug without the writer
/// fence, to its directory alone; `then` runs once it is answered.
void hand_map(caf::event_based_actor* self, two_node_world* w,
              const move_plan& m, std::shared_ptr<move_log> log, node_id n,
              bool writer, std::function<void()> then) {
  log->pending = 1;
  auto done = [log, then](uint64_t) {
    log->pending = 0;
    then();
  };
  if (!writer) {
    self->request(w->at(n).directory, caf::infinite, caf::put_atom::value,
                  m.after)
      .then(done, [log](caf::error& err) {
        log->error = "map refused: " + caf::to_string(err);
      });
    return;
  }
  self->request(w->at(n).keeper, caf::infinite, caf::put_atom::value, m.after)
    .then(done, [=](caf::error& err) {
      if (is(err, errc::unavailable)) {
        hand_map(self, w, m, log, n, writer, then);
        return;
      }
      log->error = "map refused: " + caf::to_string(err);
    });
}

/// The mover: one action per turn (a message to itself), so the random
/// schedule interleaves the move with the traffic.
caf::behavior mover(caf::event_based_actor* self, two_node_world* w,
                    move_plan m, std::shared_ptr<move_log> log) {
  auto again = [self] { self->send(self, caf::tick_atom::value); };
  self->send(self, caf::tick_atom::value);
  return {
    [=](caf::tick_atom) mutable {
      auto parts = w->map.partitions();
      switch (log->at) {
        case phase::waiting:
          if (m.delay > 0) {
            --m.delay;
            break;
          }
          // The old owner's writer learnt what it owns from its keeper at
          // boot (the first map fences nothing); the stream starts.
          log->cur = store::start_pass(m.partition, parts);
          log->at = phase::streaming;
          break;
        case phase::streaming:
          if (!mirror_once(*w, m, *log, false))
            break;
          log->at = phase::fencing;
          hand_map(self, w, m, log, m.from, m.writer_fence, [=] {
            log->fenced = true;
            log->frozen = read_range(*w->at(m.from).disk, m.partition, parts);
            log->cur = store::start_pass(m.partition, parts);
            log->at = m.tail ? phase::tailing : phase::switching;
            self->send(self, caf::tick_atom::value);
          });
          return; // the answers go on
        case phase::tailing:
          if (!mirror_once(*w, m, *log, true))
            break;
          log->at = phase::switching;
          break;
        case phase::switching: {
          w->map = m.after;
          for (auto& [cmid, o] : w->outcomes)
            if (partition_of(placement_key::conversation(o.conv), parts)
                  == m.partition
                && !o.answers.empty())
              log->answers_at_switch[cmid] = o.answers.size();
          hand_map(self, w, m, log, m.to, true, [=] {
            log->at = phase::done;
            // Sends accepted before the move, retried after it from
            // either node with the same clientMessageId.
            std::map<std::pair<conversation_id, user_id>, routed_plan> late;
            for (auto& [cmid, n] : log->answers_at_switch) {
              auto& o = w->outcomes[cmid];
              auto& plan = late[{o.conv, o.user}];
              plan.home = 1 + (o.user + cmid.size()) % 2;
              plan.conv = o.conv;
              plan.user = o.user;
              plan.cmids.push_back(cmid);
            }
            for (auto& [key, plan] : late)
              spawn_routed_client(self->system(), w, plan);
            // The new owner activates the partition's conversations whose
            // outbox is not drained (as at a node's start).
            self->system().spawn(outbox_relay_impl, w->at(m.to).reader,
                                 w->at(m.to).directory);
            self->quit();
          });
          return;
        }
        case phase::fencing:
        case phase::done:
          return;
      }
      if (!log->error.empty())
        return;
      again();
    },
  };
}

} // namespace

caf::actor spawn_mover(caf::actor_system& sys, two_node_world* w,
                       move_plan m, std::shared_ptr<move_log> log) {
  return sys.spawn(mover, w, std::move(m), std::move(log));
}

} // namespace parley::sim
