#include "sim_actors.hpp"

#include <chrono>
#include <map>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "sim_world.hpp"

namespace parley::sim {

using namespace std::chrono_literals;
using retry_atom = caf::atom_constant<caf::atom("retry")>;

namespace {

// -- delivery recorder ---------------------------------------------------------

delivery_actor::behavior_type recorder(delivery_actor::pointer self,
                                       world* w) {
  return {
    [=](deliver_atom, const stored_message& msg, const std::vector<user_id>&) {
      auto from = self->current_sender() ? self->current_sender()->id() : 0;
      w->deliveries.push_back({w->incarnation, from, msg.conversation,
                               msg.seq});
    },
    [=](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

// -- clients -----------------------------------------------------------------------

struct client_state {
  client_plan plan;
  world* w = nullptr;
  size_t next = 0;                   ///< next index not yet started
  std::map<size_t, int> attempts;    ///< index -> sends in flight
  std::set<size_t> acked;
};

void launch(caf::stateful_actor<client_state>* self, size_t idx);

void settle(caf::stateful_actor<client_state>* self, size_t idx) {
  auto& st = self->state;
  if (--st.attempts[idx] > 0)
    return;
  st.attempts.erase(idx);
  if (st.acked.count(idx) == 0) {
    auto backoff = std::chrono::milliseconds(static_cast<int64_t>(10 + st.w->uniform() * 200));
    self->delayed_send(self, backoff, retry_atom::value, idx);
    st.attempts[idx] = 1; // the slot stays taken until the retry
    return;
  }
  while (st.attempts.size() < st.w->k.window && st.next < st.plan.cmids.size())
    launch(self, st.next++);
  if (st.attempts.empty() && st.next == st.plan.cmids.size())
    self->quit();
}

void launch(caf::stateful_actor<client_state>* self, size_t idx) {
  auto& st = self->state;
  auto w = st.w;
  int copies = w->k.copies;
  if (w->uniform() < w->k.p_duplicate)
    ++copies;
  st.attempts[idx] += copies;
  send_request req;
  req.conversation = st.plan.conv;
  req.sender_user = st.plan.user;
  req.sender_device = st.plan.device;
  req.client_message_id = st.plan.cmids[idx];
  req.kind = 1;
  req.payload = "payload of " + req.client_message_id;
  for (int i = 0; i < copies; ++i) {
    self->request(w->directory(), 30s, caf::get_atom::value, st.plan.conv)
      .then(
        [=](conversation_actor& conv) {
          self->request(conv, 30s, send_atom::value, req)
            .then(
              [=](send_result& res) {
                self->state.w->record(req.client_message_id, res);
                self->state.acked.insert(idx);
                settle(self, idx);
              },
              [=](caf::error& err) {
                self->state.w->record(req.client_message_id, err);
                settle(self, idx);
              });
        },
        [=](caf::error&) { settle(self, idx); });
  }
}

caf::behavior client(caf::stateful_actor<client_state>* self, world* w,
                     client_plan plan) {
  self->state.w = w;
  self->state.plan = std::move(plan);
  self->send(self, retry_atom::value, size_t{SIZE_MAX}); // start
  return {
    [=](retry_atom, size_t idx) {
      auto& st = self->state;
      if (idx == SIZE_MAX) {
        while (st.attempts.size() < st.w->k.window
               && st.next < st.plan.cmids.size())
          launch(self, st.next++);
        if (st.plan.cmids.empty())
          self->quit();
        return;
      }
      st.attempts.erase(idx);
      launch(self, idx);
    },
  };
}

/// Joins every planned user to their conversation; retries on failure.
void joiner(caf::event_based_actor* self, world* w, conversation_id conv,
            user_id user) {
  self->request(w->directory(), 30s, caf::get_atom::value, conv)
    .then([=](conversation_actor& c) {
      self->request(c, 30s, caf::join_atom::value, user)
        .then([](sequence) {},
              [=](caf::error&) {
                self->spawn(joiner, w, conv, user); // retry
              });
    });
}

} // namespace

caf::actor spawn_client(caf::actor_system& sys, world* w, client_plan plan) {
  return sys.spawn(client, w, std::move(plan));
}

caf::actor spawn_joiner(caf::actor_system& sys, world* w, conversation_id conv,
                        user_id user) {
  return sys.spawn(joiner, w, conv, user);
}

delivery_actor spawn_recorder(caf::actor_system& sys, world* w) {
  return sys.spawn(recorder, w);
}

} // namespace parley::sim
