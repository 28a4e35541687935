#include "actors/device.hpp"

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "actors/disconnect.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/account_store.hpp"

namespace parley {

namespace {

using self_ptr = device_actor::stateful_pointer<device_state>;

void add_unacked(device_state& st, int64_t delta) {
  st.unacked_total = static_cast<uint64_t>(
    static_cast<int64_t>(st.unacked_total) + delta);
  if (st.deps.metrics)
    st.deps.metrics->deliveries_unacked += delta;
}

void flush_acks(self_ptr self);

/// Records that the device is seen now (a connection attached or went):
/// written with the next cursor write, at once if none is under way.
void mark_seen(self_ptr self) {
  auto& st = self->state;
  if (!st.deps.opts.wall_clock)
    return;
  st.seen_pending = std::max(st.seen_pending, st.deps.opts.wall_clock());
  flush_acks(self);
}

/// Forgets the connection (closed, replaced or expired). What it had not
/// acknowledged stays recoverable by sync from the device's cursors.
void detach(self_ptr self, const char* why) {
  auto& st = self->state;
  if (!st.conn)
    return;
  if (st.unacked_total > 0)
    spdlog::debug("device detached user={} device={} reason=\"{}\" unacked={}",
                  st.user, st.device, why, st.unacked_total);
  self->demonitor(st.conn);
  st.conn = nullptr;
  mark_seen(self);
  st.bulk_pushed.clear();
  add_unacked(st, -static_cast<int64_t>(st.unacked_total));
  st.unacked.clear();
  if (st.deps.metrics)
    st.deps.metrics->devices_online--;
}

/// Writes the coalesced delivered cursors; one write at a time.
void flush_acks(self_ptr self) {
  auto& st = self->state;
  if (st.writing || (st.acks_pending.empty() && st.seen_pending == 0))
    return;
  write_batch batch;
  for (auto& [conv, seq] : st.acks_pending)
    store::add_delivered_cursor(batch, st.user, st.device, conv, seq);
  auto seen = std::exchange(st.seen_pending, 0);
  if (seen != 0)
    store::add_last_seen(batch, st.user, st.device, seen);
  auto sent = std::move(st.acks_pending);
  st.acks_pending.clear();
  bool cursors = !sent.empty();
  st.writing = true;
  // The device's own fence id in the store writer (stable: a later device
  // actor of the same device moves past a fence it left, see next_epoch).
  auto writer_id = writer_ids::device(st.user, st.device);
  auto epoch = st.write_epoch;
  self
    ->request(st.deps.writer, timeouts::commit, commit_atom::value, writer_id,
              epoch, std::move(batch))
    .then(
      [self, cursors](uint64_t) {
        auto& st = self->state;
        st.writing = false;
        if (cursors)
          ++st.cursor_writes;
        flush_acks(self);
      },
      [self, epoch, sent, seen](caf::error& err) {
        // A timeout is handled as a failure although the batch may still
        // land: delivered cursors are max-merged (max_u64), so a late
        // write never moves a cursor back and writing one again is
        // harmless. The cursors go back into the next write, shortly.
        auto& st = self->state;
        spdlog::warn("delivered cursor write failed user={} device={} "
                     "error=\"{}\"",
                     st.user, st.device, to_string(err));
        st.writing = false;
        st.write_epoch = std::max(st.write_epoch, next_epoch(err, epoch));
        st.seen_pending = std::max(st.seen_pending, seen); // max-merged too
        for (auto& [conv, seq] : sent) {
          auto& slot = st.acks_pending[conv];
          slot = std::max(slot, seq);
        }
        if (!st.flush_scheduled) {
          st.flush_scheduled = true;
          self->delayed_send(self, timeouts::retry,
                             caf::flush_atom::value);
        }
      });
}

/// Records an acknowledgement already known to be valid.
void accept_ack(self_ptr self, conversation_id conv, sequence seq) {
  auto& st = self->state;
  if (auto i = st.unacked.find(conv); i != st.unacked.end()) {
    auto& q = i->second;
    int64_t n = 0;
    while (!q.empty() && q.front() <= seq) {
      q.pop_front();
      ++n;
    }
    add_unacked(st, -n);
    if (q.empty())
      st.unacked.erase(i);
  }
  auto& slot = st.acks_pending[conv];
  slot = std::max(slot, seq);
  if (st.deps.opts.ack_delay.count() == 0) {
    flush_acks(self);
  } else if (!st.flush_scheduled && !st.writing) {
    st.flush_scheduled = true;
    self->delayed_send(self, st.deps.opts.ack_delay,
                       caf::flush_atom::value);
  }
}

/// Counts a delivery to be passed on to the connection; false when no
/// connection holds the device (it catches up by sync). A connection
/// whose outbound queue overflows closes itself (slow consumer), and its
/// end detaches it here.
bool track_push(self_ptr self, const stored_message& msg) {
  auto& st = self->state;
  auto& limit = st.ack_limit[msg.conversation];
  limit = std::max(limit, msg.seq); // a push implies membership
  if (!st.conn)
    return false;
  // Counted before the push: the client may answer before this
  // handler returns.
  auto& q = st.unacked[msg.conversation];
  q.push_back(msg.seq);
  add_unacked(st, 1);
  if (q.size() > st.deps.opts.max_unacked_per_conversation) {
    q.pop_front();
    add_unacked(st, -1);
  }
  ++st.pushed;
  if (st.deps.metrics)
    st.deps.metrics->messages_delivered++;
  return true;
}

void schedule_tick(self_ptr self) {
  self->delayed_send(self, self->state.deps.opts.ttl / 3,
                     caf::tick_atom::value);
}

} // namespace

device_state::~device_state() {
  if (!deps.metrics)
    return;
  deps.metrics->deliveries_unacked -= static_cast<int64_t>(unacked_total);
  if (conn)
    deps.metrics->devices_online--;
}

device_actor::behavior_type device_impl(self_ptr self, device_deps deps,
                                        user_id user, device_id device) {
  auto& st = self->state;
  st.deps = std::move(deps);
  st.user = user;
  st.device = device;
  self->set_down_handler([self](caf::down_msg& dm) {
    if (self->state.conn && dm.source == self->state.conn.address())
      detach(self, "connection closed");
  });
  schedule_tick(self);
  return {
    [self](deliver_atom, const stored_message& msg) {
      if (track_push(self, msg))
        caf::anon_send(self->state.conn, deliver_atom::value, msg);
    },
    [self](fanout_atom, const stored_message& msg) {
      auto& st = self->state;
      if (!st.conn)
        return;
      auto& last = st.bulk_pushed[msg.conversation];
      if (msg.seq <= last)
        return; // passed on before (a repeated slice)
      last = msg.seq;
      if (track_push(self, msg))
        caf::anon_send(st.conn, fanout_atom::value, msg);
    },
    [self](receipt_atom, const receipt_event& ev) {
      auto& st = self->state;
      if (!st.conn)
        return;
      if (ev.kind == 1 && ev.user == st.user)
        return; // its own delivered state is of no use to the user
      if (ev.user == st.user && ev.origin == st.device)
        return; // this device moved the cursor: it knows
      if (ev.kind == 2 && ev.user != st.user
          && (!ev.shared || (!st.read_receipts && is_direct(ev.conversation))))
        return; // read receipts off (the reader's or this user's, in 1:1)
      caf::anon_send(st.conn, receipt_atom::value, ev);
    },
    [self](caf::join_atom, caf::actor conn) {
      auto& st = self->state;
      if (st.conn && st.conn != conn) {
        caf::anon_send(st.conn, caf::close_atom::value,
                       code_of(disconnect_cause::replaced),
                       std::string{"replaced by a newer connection"});
        detach(self, "replaced");
      }
      if (!st.conn) {
        st.conn = conn;
        self->monitor(conn);
        if (st.deps.metrics)
          st.deps.metrics->devices_online++;
        mark_seen(self);
      }
      st.refreshed = self->clock().now();
      return true;
    },
    [self](caf::update_atom, bool read_receipts) {
      self->state.read_receipts = read_receipts;
    },
    [self](caf::update_atom, const inbox_entry& e) {
      auto& st = self->state;
      if (st.conn)
        caf::anon_send(st.conn, caf::update_atom::value, e);
    },
    [self](ack_atom, conversation_id conv,
           sequence seq) -> caf::result<sequence> {
      auto& st = self->state;
      if (conv == 0 || seq == 0)
        return caf::make_error(errc::bad_request,
                               "ack needs a conversation and a sequence");
      if (auto i = st.ack_limit.find(conv);
          i != st.ack_limit.end() && seq <= i->second) {
        accept_ack(self, conv, seq);
        return seq;
      }
      // Not covered by what was pushed: the conversation's partition knows
      // membership and head (through the directory, maybe on another node).
      if (!st.deps.limits)
        return caf::make_error(errc::unavailable,
                               "no route for delivered-cursor limits yet");
      auto rp = self->make_response_promise<sequence>();
      self
        ->request(st.deps.limits, timeouts::ask, ack_atom::value, st.user,
                  conv)
        .then(
          [self, rp, conv, seq](sequence limit) mutable {
            auto& slot = self->state.ack_limit[conv];
            slot = std::max(slot, limit);
            if (seq > slot) {
              rp.deliver(caf::make_error(
                errc::cursor_ahead, "acknowledged sequence "
                                      + std::to_string(seq) + " is past "
                                      + std::to_string(slot)));
              return;
            }
            accept_ack(self, conv, seq);
            rp.deliver(seq);
          },
          // A timeout too: nothing was accepted; the client acks again.
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](caf::put_atom, ack_limit_actor& limits) {
      self->state.deps.limits = std::move(limits);
    },
    [self](refresh_atom) {
      auto& st = self->state;
      auto from = caf::actor_cast<caf::actor_addr>(self->current_sender());
      if (st.conn && from == st.conn.address())
        st.refreshed = self->clock().now();
    },
    [self](stats_atom) {
      auto& st = self->state;
      return device_status{static_cast<bool>(st.conn), st.pushed,
                           st.unacked_total, st.cursor_writes};
    },
    [self](caf::flush_atom) {
      self->state.flush_scheduled = false;
      flush_acks(self);
    },
    [self](caf::tick_atom) {
      auto& st = self->state;
      if (st.conn && self->clock().now() - st.refreshed > st.deps.opts.ttl) {
        spdlog::info("device connection expired user={} device={}", st.user,
                     st.device);
        caf::anon_send(st.conn, caf::close_atom::value,
                       code_of(disconnect_cause::connection_stale),
                       std::string{"connection expired"});
        detach(self, "expired");
      }
      schedule_tick(self);
    },
  };
}

} // namespace parley
