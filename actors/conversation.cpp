// The conversation actor's behaviour: message dispatch and load. Each
// concern is a part with its own state and header: the send path
// (conversation_send.hpp), groups (conversation_groups.hpp), receipts
// (conversation_receipts.hpp) and upkeep (conversation_upkeep.hpp).

#include "actors/conversation.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <caf/event_based_actor.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"

namespace parley {

namespace {

using self_ptr = conversation_self;

/// Runs `f` now, or once the conversation has loaded; `rp` (a promise or
/// send_asker) gets the error if the actor ends before that.
template <class F, class Promise>
void when_ready(self_ptr self, F f, Promise rp) {
  if (self->state.ready)
    f();
  else
    self->state.stash.push_back(
      {std::move(f),
       [rp](const caf::error& err) mutable { rp.deliver(err); }});
}

void become_ready(self_ptr self) {
  auto& st = self->state;
  st.ready = true;
  if (!st.exists)
    conversation_upkeep::schedule_retire(self);
  // Persist what the relay re-emitted before new sends.
  conversation_upkeep::flush_watermark(self);
  auto stash = std::move(st.stash);
  for (auto& s : stash)
    s.run();
  conversation_upkeep::maybe_sweep(self);
}

} // namespace

conversation_actor::behavior_type
conversation_impl(self_ptr self, conversation_id id, conversation_deps deps) {
  auto& st = self->state;
  st.id = id;
  st.deps = std::move(deps);
  conversation_send::init(st);
  // Ordered after every commit of an earlier incarnation (see commit).
  self->request(st.deps.writer, timeouts::commit, load_atom::value, id)
    .then(
      [self](conversation_snapshot& snap) {
        auto& st = self->state;
        st.exists = snap.exists;
        st.kind = snap.kind;
        conversation_send::load(st, snap);
        conversation_upkeep::load(st, snap);
        conversation_groups::load(st, snap);
        conversation_memberships::load(self, snap);
        conversation_receipts::load(st, snap.receipts);
        conversation_receipts::emit_loaded(self);
        conversation_upkeep::relay(self, [self] { become_ready(self); });
      },
      [self](caf::error& err) {
        spdlog::error("conversation load failed conversation={} error=\"{}\"",
                      self->state.id, to_string(err));
        conversation_upkeep::end_with(self, err); // the directory respawns it
      });
  return {
    [self](retire_atom) { conversation_upkeep::on_retire(self); },
    [self](send_atom, send_request& req) -> caf::result<send_result> {
      send_asker to{self->make_response_promise<send_result>()};
      auto rp = to.rp;
      when_ready(
        self, [self, req = std::move(req), to]() mutable {
          conversation_send::handle_send(self, req, to);
        },
        to);
      return rp;
    },
    [self](send_atom, tagged_send& t) {
      send_asker to;
      to.tagged = true;
      to.to = caf::actor_cast<send_answer_actor>(self->current_sender());
      to.tag = t.tag;
      to.from = self;
      when_ready(
        self, [self, req = std::move(t.req), to]() mutable {
          conversation_send::handle_send(self, req, to);
        },
        to);
    },
    [self](caf::join_atom, user_id user) -> caf::result<sequence> {
      auto rp = self->make_response_promise<sequence>();
      when_ready(
        self,
        [self, user, rp] { conversation_groups::handle_join(self, user, rp); },
        rp);
      return rp;
    },
    [self](group_atom, group_change& c) -> caf::result<send_result> {
      auto rp = self->make_response_promise<send_result>();
      when_ready(
        self, [self, c = std::move(c), rp]() mutable {
          conversation_send::handle_change(self, c, rp);
        },
        rp);
      return rp;
    },
    [self](group_atom, user_id requester, user_id after,
           uint32_t limit) -> caf::result<group_info> {
      auto rp = self->make_response_promise<group_info>();
      auto report = [self, requester, after, limit, rp]() mutable {
        auto g = conversation_groups::group_page(self->state, requester, after,
                                                 limit);
        if (g)
          rp.deliver(std::move(*g));
        else
          rp.deliver(std::move(g.error()));
      };
      when_ready(self, report, rp);
      return rp;
    },
    [self](caf::get_atom) -> caf::result<conversation_status> {
      auto rp = self->make_response_promise<conversation_status>();
      auto report = [self, rp]() mutable {
        auto& st = self->state;
        rp.deliver(conversation_status{
          conversation_send::head(st), conversation_upkeep::dispatched(st),
          conversation_send::in_flight(st) + conversation_send::queued(st),
          conversation_groups::member_count(st)});
      };
      when_ready(self, report, rp);
      return rp;
    },
    [self](receipt_atom, user_id user, device_id dev, int32_t kind,
           sequence seq, bool shared) -> caf::result<sequence> {
      if (!self->state.ready) {
        auto rp = self->make_response_promise<sequence>();
        when_ready(
          self, [self, user, dev, kind, seq, shared, rp]() mutable {
            auto r = conversation_receipts::handle_receipt(self, user, dev,
                                                           kind, seq, shared);
            if (r)
              rp.deliver(*r);
            else
              rp.deliver(r.error());
          },
          rp);
        return rp;
      }
      auto r = conversation_receipts::handle_receipt(self, user, dev, kind,
                                                     seq, shared);
      if (!r)
        return std::move(r.error());
      return *r;
    },
    [self](receipt_atom, tagged_receipt& t) {
      auto to = caf::actor_cast<receipt_answer_actor>(self->current_sender());
      auto answer = [self, to, tag = t.tag](caf::expected<sequence> r) {
        if (!to)
          return;
        if (r)
          self->send(to, receipt_atom::value,
                     receipt_answer{tag, *r, caf::error{}});
        else
          self->send(to, receipt_atom::value,
                     receipt_answer{tag, 0, std::move(r.error())});
      };
      auto run = [self, t, answer] {
        answer(conversation_receipts::handle_receipt(self, t.user, t.device,
                                                     t.kind, t.seq, t.shared));
      };
      if (self->state.ready)
        run();
      else
        self->state.stash.push_back(
          {run, [answer](const caf::error& err) { answer(err); }});
    },
    [self](load_atom) -> caf::result<conversation_snapshot> {
      auto rp = self->make_response_promise<conversation_snapshot>();
      auto report = [self, rp]() mutable {
        auto& st = self->state;
        if (!st.exists) {
          rp.deliver(caf::make_error(errc::not_found,
                                     "no conversation "
                                       + std::to_string(st.id)));
          return;
        }
        conversation_snapshot s;
        s.exists = true;
        s.kind = st.kind;
        s.head = conversation_send::head(st);
        s.dispatched = conversation_upkeep::dispatched(st);
        for (auto& [user, m] : st.groups.members)
          s.members.push_back(m);
        s.receipts = conversation_receipts::cursors(st);
        s.name = st.groups.name;
        s.description = st.groups.description;
        s.created_at_ms = st.groups.created_at_ms;
        s.creator = st.groups.creator;
        rp.deliver(std::move(s));
      };
      when_ready(self, report, rp);
      return rp;
    },
    [self](receipt_atom) -> std::vector<receipt_cursor> {
      return conversation_receipts::cursors(self->state);
    },
    [self](caf::flush_atom) { conversation_receipts::flush(self); },
    [self](caf::tick_atom) { conversation_upkeep::on_tick(self); },
    [self](commit_atom, commit_answer& a) {
      conversation_send::on_commit_answer(self, a);
    },
    [self](expire_atom) { conversation_send::on_expire(self); },
    [self](caf::update_atom) { conversation_memberships::pass(self); },
  };
}

} // namespace parley
