#include "actors/conversation_memberships.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "actors/conversation.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/membership_store.hpp"

namespace parley::conversation_memberships {

namespace {

using self_ptr = conversation_self;
using owed_key = std::pair<user_id, uint64_t>;

void schedule_pass(self_ptr self) {
  auto& m = self->state.memberships;
  if (m.pass_scheduled || (m.owed.empty() && m.waiters.empty()))
    return;
  m.pass_scheduled = true;
  self->delayed_send(self, membership_timeouts::retry,
                     caf::update_atom::value);
}

/// Answers the waiters whose events are all acked.
void settle_waiters(self_ptr self) {
  auto& st = self->state;
  auto& ws = st.memberships.waiters;
  std::vector<std::function<void(const caf::error&)>> ready;
  for (auto i = ws.begin(); i != ws.end();) {
    if (!owes(st, i->upto)) {
      ready.push_back(std::move(i->done));
      i = ws.erase(i);
    } else {
      ++i;
    }
  }
  for (auto& f : ready)
    f(caf::error{});
}

/// Erases acked events from the store, one commit at a time.
void erase_acked(self_ptr self) {
  auto& st = self->state;
  auto& m = st.memberships;
  if (m.erasing || m.acked.empty())
    return;
  write_batch batch;
  for (auto& ev : m.acked)
    store::erase_member_event(batch, ev);
  m.acked.clear();
  m.erasing = true;
  auto epoch = m.erase_epoch;
  self
    ->request(st.deps.writer, timeouts::commit, commit_atom::value,
              writer_ids::memberships(st.id), epoch, std::move(batch))
    .then(
      [self](uint64_t) {
        self->state.memberships.erasing = false;
        erase_acked(self);
      },
      [self, epoch](caf::error& err) {
        // The events stay on disk: re-sent (and acked again, harmlessly)
        // when the conversation is next activated.
        auto& m = self->state.memberships;
        m.erasing = false;
        m.erase_epoch = std::max(m.erase_epoch, next_epoch(err, epoch));
        spdlog::warn("membership events not erased conversation={} "
                     "error=\"{}\"",
                     self->state.id, to_string(err));
        erase_acked(self);
      });
}

void on_ack(self_ptr self, const owed_key& key) {
  auto& m = self->state.memberships;
  ++m.acks;
  auto i = m.owed.find(key);
  if (i == m.owed.end())
    return; // a repeated ack
  m.acked.push_back(i->second.ev);
  m.owed.erase(i);
  erase_acked(self);
  settle_waiters(self);
}

void send_one(self_ptr self, const owed_key& key) {
  auto& st = self->state;
  auto i = st.memberships.owed.find(key);
  if (i == st.memberships.owed.end() || i->second.asking)
    return;
  i->second.asking = true;
  ++st.memberships.sent;
  self
    ->request(st.deps.memberships, membership_timeouts::event,
              caf::put_atom::value, i->second.ev)
    .then([self, key](uint64_t) { on_ack(self, key); },
          [self, key](caf::error& err) {
            auto& m = self->state.memberships;
            if (auto j = m.owed.find(key); j != m.owed.end())
              j->second.asking = false; // the next pass re-sends it
            spdlog::debug("membership event not acked conversation={} "
                          "user={} version={} error=\"{}\"",
                          self->state.id, key.first, key.second,
                          to_string(err));
            schedule_pass(self);
          });
}

void owe(self_ptr self, const membership_event& ev) {
  auto key = owed_key{ev.user, ev.version};
  self->state.memberships.owed.emplace(
    key, conversation_memberships_state::owed_event{ev, false});
  send_one(self, key);
}

} // namespace

void write(write_batch& batch, const conversation_state& st, const member& m,
           uint64_t version) {
  if (!st.deps.memberships) {
    store::add_member(batch, st.id, m);
    return;
  }
  store::add_member_record(batch, st.id, m);
  store::add_member_event(batch, store::member_event_of(st.id, m, version));
}

void relay(self_ptr self, const std::vector<member>& changed,
           uint64_t version) {
  auto& st = self->state;
  if (!st.deps.memberships)
    return;
  for (auto& m : changed)
    owe(self, store::member_event_of(st.id, m, version));
  schedule_pass(self);
}

void load(self_ptr self, const conversation_snapshot& snap) {
  if (!self->state.deps.memberships || snap.pending_memberships.empty())
    return;
  spdlog::info("membership events owed conversation={} events={}",
               self->state.id, snap.pending_memberships.size());
  for (auto& ev : snap.pending_memberships)
    owe(self, ev);
  schedule_pass(self);
}

bool owes(const conversation_state& st, uint64_t upto) {
  for (auto& [key, o] : st.memberships.owed)
    if (key.second <= upto)
      return true;
  return false;
}

void when_acked(self_ptr self, uint64_t upto,
                std::function<void(const caf::error&)> done) {
  if (!owes(self->state, upto)) {
    done(caf::error{});
    return;
  }
  self->state.memberships.waiters.push_back(
    {upto, membership_timeouts::answer_passes, std::move(done)});
  schedule_pass(self);
}

void pass(self_ptr self) {
  auto& st = self->state;
  auto& m = st.memberships;
  m.pass_scheduled = false;
  std::vector<owed_key> resend;
  for (auto& [key, o] : m.owed)
    if (!o.asking)
      resend.push_back(key);
  for (auto& key : resend)
    send_one(self, key);
  std::vector<std::function<void(const caf::error&)>> late;
  for (auto i = m.waiters.begin(); i != m.waiters.end();) {
    if (--i->passes_left <= 0) {
      late.push_back(std::move(i->done));
      i = m.waiters.erase(i);
    } else {
      ++i;
    }
  }
  for (auto& f : late)
    f(caf::make_error(errc::unavailable,
                      "the change is committed, but the members' "
                      "conversation lists are not updated yet; retry "
                      "with the same request id"));
  schedule_pass(self);
}

} // namespace parley::conversation_memberships
