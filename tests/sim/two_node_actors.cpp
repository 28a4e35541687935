#include "two_node_actors.hpp"

#include <chrono>
#include <map>
#include <set>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "runtime/core/tagged_messages.hpp"
#include "two_node_world.hpp"

namespace parley::sim {

using namespace std::chrono_literals;

namespace {

using retry_atom = caf::atom_constant<caf::atom("retry")>;

delivery_actor::behavior_type recorder(delivery_actor::pointer self,
                                       two_node_world* w, node_id n) {
  return {
    [=](deliver_atom, const stored_message& msg, const std::vector<user_id>&) {
      auto from = self->current_sender() ? self->current_sender()->id() : 0;
      w->deliveries.push_back({w->at(n).incarnation, from, msg.conversation,
                               msg.seq});
    },
    [=](receipt_atom, const receipt_event&, const std::vector<user_id>&) {},
  };
}

struct client_state {
  routed_plan plan;
  two_node_world* w = nullptr;
  size_t next = 0;                ///< next index not yet started
  std::map<size_t, int> attempts; ///< index -> sends in flight
  std::set<size_t> acked;
  /// Tagged sends waiting for an answer: tag -> index (a tag leaves the
  /// table with its answer or its deadline, whichever comes first).
  std::map<uint64_t, size_t> tags;
  uint64_t last_tag = 0;
};

using client_self = caf::stateful_actor<client_state>*;

void launch(client_self self, size_t idx);

void settle(client_self self, size_t idx) {
  auto& st = self->state;
  if (--st.attempts[idx] > 0)
    return;
  st.attempts.erase(idx);
  if (st.acked.count(idx) == 0) {
    auto backoff = std::chrono::milliseconds(
      static_cast<int64_t>(10 + st.w->uniform() * 200));
    self->delayed_send(self, backoff, retry_atom::value, idx);
    st.attempts[idx] = 1; // the slot stays taken until the retry
    return;
  }
  while (st.attempts.size() < st.w->k.window && st.next < st.plan.cmids.size())
    launch(self, st.next++);
  if (st.attempts.empty() && st.next == st.plan.cmids.size())
    self->quit();
}

/// The outcome of a send of `cmid` (index `idx`): an answer or an error.
void outcome(client_self self, size_t idx, const std::string& cmid,
             const send_request& req, caf::expected<send_result> res) {
  auto w = self->state.w;
  if (!res) {
    w->record(cmid, res.error());
    settle(self, idx);
    return;
  }
  w->record(cmid, *res);
  self->state.acked.insert(idx);
  if (w->uniform() < w->k.p_read) { // read up to it, across the link too
    auto dir = w->at(self->state.plan.home).directory;
    auto seq = res->server_sequence;
    if (self->state.plan.tagged)
      self->send(dir, receipt_atom::value,
                 tagged_receipt{++self->state.last_tag, req.conversation,
                                req.sender_user, req.sender_device, 2, seq,
                                true});
    else
      self->request(dir, 30s, receipt_atom::value, req.conversation,
                    req.sender_user, req.sender_device, int32_t{2}, seq, true)
        .then([](sequence) {}, [](caf::error&) {});
  }
  settle(self, idx);
}

void launch(client_self self, size_t idx) {
  auto& st = self->state;
  auto w = st.w;
  int copies = w->uniform() < w->k.p_duplicate ? 2 : 1;
  st.attempts[idx] += copies;
  send_request req;
  req.conversation = st.plan.conv;
  req.sender_user = st.plan.user;
  req.sender_device = device_id(1);
  req.client_message_id = st.plan.cmids[idx];
  req.kind = 1;
  req.payload = "payload of " + req.client_message_id;
  auto dir = w->at(st.plan.home).directory;
  for (int i = 0; i < copies; ++i) {
    if (st.plan.tagged) {
      // As the gateway's connection sends: an ordinary message answered
      // with the tag, and a deadline of the client's own.
      auto tag = ++st.last_tag;
      st.tags.emplace(tag, idx);
      self->send(dir, send_atom::value, tagged_send{tag, req});
      self->delayed_send(self, 30s, expire_atom::value, tag);
      continue;
    }
    self->request(dir, 30s, send_atom::value, req)
      .then(
        [=](send_result& res) {
          outcome(self, idx, req.client_message_id, req, std::move(res));
        },
        [=](caf::error& err) {
          outcome(self, idx, req.client_message_id, req, std::move(err));
        });
  }
}

/// The request of index `idx` again (for a tagged answer).
send_request request_of(client_self self, size_t idx) {
  auto& st = self->state;
  send_request req;
  req.conversation = st.plan.conv;
  req.sender_user = st.plan.user;
  req.sender_device = device_id(1);
  req.client_message_id = st.plan.cmids[idx];
  return req;
}

caf::behavior client(client_self self, two_node_world* w, routed_plan plan) {
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
    [=](send_atom, send_answer& a) {
      auto i = self->state.tags.find(a.tag);
      if (i == self->state.tags.end())
        return; // past its deadline: counted as a timeout already
      auto idx = i->second;
      self->state.tags.erase(i);
      auto req = request_of(self, idx);
      if (!a.err)
        ++two_node_grand_totals().tagged_answers;
      if (a.err)
        outcome(self, idx, req.client_message_id, req, std::move(a.err));
      else
        outcome(self, idx, req.client_message_id, req, std::move(a.result));
    },
    [=](expire_atom, uint64_t tag) {
      auto i = self->state.tags.find(tag);
      if (i == self->state.tags.end())
        return;
      auto idx = i->second;
      self->state.tags.erase(i);
      auto req = request_of(self, idx);
      outcome(self, idx, req.client_message_id, req,
              caf::make_error(caf::sec::request_timeout));
    },
    [=](receipt_atom, const receipt_answer&) {},
  };
}

void joiner(caf::event_based_actor* self, two_node_world* w, node_id home,
            conversation_id conv, user_id user) {
  self->request(w->at(home).directory, 30s, caf::join_atom::value, conv, user)
    .then([](sequence) {},
          [=](caf::error&) {
            self->spawn(joiner, w, home, conv, user); // retry
          });
}

void syncer(caf::event_based_actor* self, two_node_world* w, node_id home,
            user_id user, conversation_id conv, synced* out,
            std::string continuation) {
  sync_request req;
  req.cursor_conversations = {conv};
  req.cursor_sequences = {0};
  req.page_size = 50;
  req.continuation = std::move(continuation);
  self->request(w->at(home).directory, 30s, sync_atom::value, user, req)
    .then(
      [=](sync_page& page) {
        for (auto& m : page.messages)
          out->messages.push_back(std::move(m));
        for (auto& e : page.inbox)
          out->inbox.push_back(e);
        if (page.continuation.empty())
          out->done = true;
        else
          self->spawn(syncer, w, home, user, conv, out,
                      std::move(page.continuation));
      },
      [=](caf::error& err) { out->error = caf::to_string(err); });
}

} // namespace

caf::actor spawn_syncer(caf::actor_system& sys, two_node_world* w,
                        node_id home, user_id user, conversation_id conv,
                        synced* out) {
  return sys.spawn(syncer, w, home, user, conv, out, std::string{});
}

caf::actor spawn_routed_client(caf::actor_system& sys, two_node_world* w,
                               routed_plan plan) {
  return sys.spawn(client, w, std::move(plan));
}

caf::actor spawn_routed_joiner(caf::actor_system& sys, two_node_world* w,
                               node_id home, conversation_id conv,
                               user_id user) {
  return sys.spawn(joiner, w, home, conv, user);
}

delivery_actor spawn_node_recorder(caf::actor_system& sys, two_node_world* w,
                                   node_id n) {
  return sys.spawn(recorder, w, n);
}

} // namespace parley::sim
