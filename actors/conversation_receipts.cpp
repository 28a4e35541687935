// The conversation actor's receipt cursors: per member, "some device has
// everything up to N" (delivered) and "read up to N". Cursors only move
// forward; a burst of receipts becomes one write and one event per cursor
// that moved: receipts queue a flush behind what is already in the
// mailbox, and a flush waits for the previous write.

#include "actors/conversation_receipts.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "actors/conversation.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/conversation_store.hpp"

namespace parley::conversation_receipts {

namespace {

/// Keeps the groups' cursor counts: a member's cursor of `kind` moved from
/// `from` (0: none) to `to`.
void move_count(conversation_state& st, int32_t kind, sequence from,
                sequence to) {
  auto& counts = st.receipts.counts[kind];
  if (from > 0)
    if (auto i = counts.find(from); i != counts.end() && --i->second == 0)
      counts.erase(i);
  ++counts[to];
}

/// Members whose cursor of `kind` is at `seq` or beyond.
uint32_t count_at_least(const conversation_state& st, int32_t kind,
                        sequence seq) {
  uint32_t n = 0;
  auto& counts = st.receipts.counts[kind];
  for (auto i = counts.rbegin(); i != counts.rend() && i->first >= seq; ++i)
    n += i->second;
  return n;
}

/// Groups: pushes to each recent sender how many of the other members have
/// their latest message delivered and read, when that changed. One event
/// per sender per flush, however many members moved.
void push_aggregates(conversation_self self) {
  auto& st = self->state;
  auto others = static_cast<uint32_t>(
    conversation_groups::current_count(st) > 0
      ? conversation_groups::current_count(st) - 1
      : 0);
  for (auto& [sender, seq] : st.receipts.latest_by_sender) {
    auto own = [&](int32_t kind) -> uint32_t {
      auto i = st.receipts.cursors.find({sender, kind});
      return i != st.receipts.cursors.end() && i->second >= seq ? 1 : 0;
    };
    auto delivered = count_at_least(st, 1, seq) - own(1);
    auto read = count_at_least(st, 2, seq) - own(2);
    auto& sent = st.receipts.aggregate_sent[sender];
    if (sent == std::make_pair(delivered, read))
      continue;
    sent = {delivered, read};
    receipt_event ev{st.id, 0, 1, seq, st.deps.clock(), true, 0,
                     delivered, read, others};
    self->send(st.deps.delivery, receipt_atom::value, ev,
               std::vector<user_id>{sender});
  }
}

} // namespace

void load(conversation_state& st, const std::vector<receipt_cursor>& cursors) {
  for (auto& r : cursors) {
    st.receipts.cursors[{r.user, r.kind}] = r.seq;
    if (r.kind == 1 || r.kind == 2)
      move_count(st, r.kind, 0, r.seq);
  }
}

void emit_loaded(conversation_self self) {
  auto& st = self->state;
  if (!st.deps.projection || !st.exists)
    return;
  // Only read cursors change a row (the projection ignores delivered ones);
  // each goes to its own user's row, as a group's flush sends it.
  for (auto& [k, seq] : st.receipts.cursors)
    if (k.second == 2 && seq > 0)
      self->send(st.deps.projection, receipt_atom::value,
                 receipt_event{st.id, k.first, 2, seq, st.deps.clock(), true,
                               0},
                 std::vector<user_id>{k.first});
}

std::vector<receipt_cursor> cursors(const conversation_state& st) {
  std::vector<receipt_cursor> out;
  for (auto& [k, seq] : st.receipts.cursors)
    out.push_back(receipt_cursor{k.first, k.second, seq});
  return out;
}

void note_sender(conversation_state& st, user_id sender, sequence seq) {
  auto& latest = st.receipts.latest_by_sender;
  latest[sender] = seq;
  if (latest.size() > 64) {
    auto oldest = std::min_element(
      latest.begin(), latest.end(),
      [](auto& a, auto& b) { return a.second < b.second; });
    st.receipts.aggregate_sent.erase(oldest->first);
    latest.erase(oldest);
  }
}

void hand_over(conversation_self self) {
  auto& st = self->state;
  if (!st.receipts.moved.empty()) {
    // Its answer never comes back (the actor is gone), but the writer
    // still writes it, before the next incarnation's load.
    st.receipts.writing = false;
    flush(self);
  }
}

caf::expected<sequence> handle_receipt(conversation_self self, user_id user,
                                       device_id dev, int32_t kind,
                                       sequence seq, bool shared) {
  auto& st = self->state;
  if (kind != 1 && kind != 2)
    return caf::make_error(errc::bad_request, "unknown receipt kind");
  if (seq == 0)
    return caf::make_error(errc::bad_request, "receipt needs a sequence");
  auto m = conversation_groups::find_member(st, user);
  if (!st.exists || !m)
    return caf::make_error(errc::not_member, "not a member");
  // A member sees [joined_at, left_at): nothing later can be received.
  auto limit = m->left_at_sequence ? m->left_at_sequence - 1
                                   : conversation_send::head(st);
  if (seq > limit)
    return caf::make_error(errc::cursor_ahead,
                           "receipt for sequence " + std::to_string(seq)
                             + " past " + std::to_string(limit));
  // Nothing before the member joined can be received or read: such a
  // receipt moves nothing (and projections may count from the cursor).
  if (seq + 1 < m->joined_at_sequence) {
    auto i = st.receipts.cursors.find({user, kind});
    return i == st.receipts.cursors.end() ? sequence{0} : i->second;
  }
  // Nothing can be read before it arrived: a read moves the member's
  // delivered cursor too (a client showing messages at once sends Read
  // alone). Delivered state is shown whatever the read-receipt setting.
  bool moved = false;
  auto advance = [&](int32_t k, bool share) {
    auto& cur = st.receipts.cursors[{user, k}];
    if (seq <= cur)
      return cur;
    move_count(st, k, cur, seq);
    cur = seq;
    st.receipts.moved[{user, k}]
      = receipt_event{st.id, user, k, cur, st.deps.clock(), share, dev};
    moved = true;
    return cur;
  };
  if (kind == 2)
    advance(1, true);
  auto cur = advance(kind, shared);
  if (!moved)
    return cur;
  if (!st.receipts.flush_queued && !st.receipts.writing) {
    st.receipts.flush_queued = true;
    if (st.deps.limits.receipt_delay.count() == 0)
      self->send(self, caf::flush_atom::value); // after what is queued now
    else
      self->delayed_send(self, st.deps.limits.receipt_delay,
                         caf::flush_atom::value);
  }
  return cur;
}

void flush(conversation_self self) {
  auto& st = self->state;
  st.receipts.flush_queued = false;
  if (st.receipts.writing || st.receipts.moved.empty())
    return;
  std::vector<receipt_event> moved;
  write_batch batch;
  for (auto& [k, ev] : st.receipts.moved) {
    store::add_receipt(batch, st.id, receipt_cursor{ev.user, ev.kind, ev.seq});
    moved.push_back(ev);
  }
  st.receipts.moved.clear();
  st.receipts.writing = true;
  // Cursors are max-merged, so these writes need no ordering with the send
  // path: a fence id of their own, stable for the conversation.
  auto writer_id = writer_ids::receipts(st.id);
  auto epoch = st.receipts.epoch;
  auto on_ok = [self, moved] {
    auto& st = self->state;
    st.receipts.writing = false;
    if (st.kind == conversation_group) {
      // Groups: a member's cursors go to their own devices only (to
      // clear unread counts there); senders get aggregates.
      for (auto& ev : moved) {
        std::vector<user_id> own{ev.user};
        self->send(st.deps.delivery, receipt_atom::value, ev, own);
        if (st.deps.projection)
          self->send(st.deps.projection, receipt_atom::value, ev, own);
      }
      push_aggregates(self);
      flush(self);
      return;
    }
    auto to = conversation_groups::current_members(st);
    for (auto& ev : moved) {
      // A shared read at or past a delivered cursor of the same flush
      // says it too (nothing is read unseen): one push, not two.
      bool implied = ev.kind == 1
                     && std::any_of(moved.begin(), moved.end(),
                                    [&](const receipt_event& r) {
                                      return r.kind == 2 && r.shared
                                             && r.user == ev.user
                                             && r.seq >= ev.seq;
                                    });
      if (!implied)
        self->send(st.deps.delivery, receipt_atom::value, ev, to);
      if (st.deps.projection && ev.kind == 2)
        self->send(st.deps.projection, receipt_atom::value, ev, to);
    }
    flush(self);
  };
  auto on_fail = [self, moved, epoch](const caf::error& err) {
    auto& st = self->state;
    spdlog::warn("receipt write failed conversation={} error=\"{}\"",
                 st.id, to_string(err));
    // A timeout is handled as a failure although the batch may still
    // land: receipt cursors are max-merged (a late write never moves a
    // cursor back, and writing one again is harmless), and they never
    // share a batch or a fence with the send path's sequences.
    st.receipts.writing = false;
    st.receipts.epoch = std::max(st.receipts.epoch,
                                 next_epoch(err, epoch));
    // Put them back (unless newer ones moved meanwhile) and write them
    // again shortly: the in-memory cursors are already ahead.
    for (auto& ev : moved)
      st.receipts.moved.emplace(std::make_pair(ev.user, ev.kind), ev);
    if (!st.receipts.flush_queued) {
      st.receipts.flush_queued = true;
      self->delayed_send(self, timeouts::retry,
                         caf::flush_atom::value);
    }
  };
  // A tagged commit (no CAF clock entry per write); a timeout comes as
  // caf::sec::request_timeout after timeouts::commit, as for a request.
  conversation_send::commit_as(self, writer_id, epoch, std::move(batch),
                               [on_ok, on_fail](const caf::error& err) {
                                 if (err)
                                   on_fail(err);
                                 else
                                   on_ok();
                               });
}

} // namespace parley::conversation_receipts
