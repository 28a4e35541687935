// The conversation actor's membership: joining a direct conversation, and
// the group rules (who may change a group's membership and what each
// change does to the member records). The send path (conversation.cpp)
// orders a group change with the sends around it and writes it as a
// MEMBERSHIP message with its own sequence.

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "actors/conversation_detail.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"

namespace parley::conversation_detail {

namespace {

constexpr size_t max_name_bytes = 256;
constexpr size_t max_description_bytes = 2048;

bool is_current(const conversation_state& st, user_id u) {
  auto i = st.members.find(u);
  return i != st.members.end() && i->second.left_at_sequence == 0;
}

bool is_admin(const conversation_state& st, user_id u) {
  auto i = st.members.find(u);
  return i != st.members.end() && i->second.left_at_sequence == 0
         && i->second.role == role_admin;
}

size_t current_count(const conversation_state& st) {
  return static_cast<size_t>(
    std::count_if(st.members.begin(), st.members.end(), [](auto& kv) {
      return kv.second.left_at_sequence == 0;
    }));
}

size_t admin_count(const conversation_state& st) {
  return static_cast<size_t>(
    std::count_if(st.members.begin(), st.members.end(), [](auto& kv) {
      return kv.second.left_at_sequence == 0 && kv.second.role == role_admin;
    }));
}

caf::error refuse(errc code, std::string why) {
  return caf::make_error(code, std::move(why));
}

} // namespace

bool is_current_member(const conversation_state& st, user_id user) {
  return is_current(st, user);
}

caf::error plan_change(const conversation_state& st, const group_change& c,
                       sequence seq, std::vector<member>& changed) {
  namespace mc = membership_change;
  std::set<user_id> targets(c.targets.begin(), c.targets.end());
  targets.erase(0);
  if (c.actor == 0)
    return refuse(errc::bad_request, "a change needs its author");
  if (targets.size() > max_change_targets)
    return refuse(errc::too_large,
                  "at most " + std::to_string(max_change_targets)
                    + " members in one change");
  if (c.name.size() > max_name_bytes)
    return refuse(errc::bad_request, "group name longer than 256 bytes");
  if (c.description.size() > max_description_bytes)
    return refuse(errc::bad_request,
                  "group description longer than 2048 bytes");
  if (c.change == mc::created) {
    if (st.exists)
      return refuse(errc::conflict, "conversation exists");
    if (c.name.empty())
      return refuse(errc::bad_request, "a group needs a name");
    targets.erase(c.actor);
    if (targets.size() + 1 > st.deps.limits.max_group_size)
      return refuse(errc::too_large, "more members than the group limit of "
                                       + std::to_string(
                                         st.deps.limits.max_group_size));
    changed.push_back(member{c.actor, role_admin, seq, 0});
    for (auto u : targets)
      changed.push_back(member{u, role_member, seq, 0});
    return {};
  }
  if (!st.exists)
    return refuse(errc::not_found, "no such group");
  if (st.kind != conversation_group)
    return refuse(errc::forbidden, "not a group");
  if (!is_current(st, c.actor))
    return refuse(errc::not_member, "not a member of the group");
  auto need_admin = [&]() -> caf::error {
    if (!is_admin(st, c.actor))
      return refuse(errc::forbidden, "only admins manage the group");
    return {};
  };
  auto need_targets = [&]() -> caf::error {
    if (targets.empty())
      return refuse(errc::bad_request, "the change names no members");
    return {};
  };
  switch (c.change) {
    case mc::added: {
      if (auto err = need_admin())
        return err;
      if (auto err = need_targets())
        return err;
      for (auto u : targets)
        if (!is_current(st, u))
          // A member removed earlier starts a new window: nothing from
          // before this event.
          changed.push_back(member{u, role_member, seq, 0});
      if (changed.empty())
        return refuse(errc::bad_request, "already members");
      if (current_count(st) + changed.size() > st.deps.limits.max_group_size)
        return refuse(errc::too_large, "more members than the group limit of "
                                         + std::to_string(
                                           st.deps.limits.max_group_size));
      return {};
    }
    case mc::removed: {
      if (auto err = need_admin())
        return err;
      if (auto err = need_targets())
        return err;
      if (targets.count(c.actor))
        return refuse(errc::bad_request, "leave the group instead");
      for (auto u : targets) {
        if (!is_current(st, u))
          return refuse(errc::not_member,
                        "user " + std::to_string(u) + " is not a member");
        auto m = st.members.at(u);
        m.left_at_sequence = seq + 1; // they see their removal, nothing after
        changed.push_back(m);
      }
      return {};
    }
    case mc::left: {
      auto m = st.members.at(c.actor);
      if (m.role == role_admin && admin_count(st) == 1
          && current_count(st) > 1)
        return refuse(errc::forbidden,
                      "the last admin cannot leave others behind; promote "
                      "someone first");
      m.left_at_sequence = seq + 1;
      changed.push_back(m);
      return {};
    }
    case mc::promoted:
    case mc::demoted: {
      if (auto err = need_admin())
        return err;
      if (auto err = need_targets())
        return err;
      auto role = c.change == mc::promoted ? role_admin : role_member;
      size_t admins = admin_count(st);
      for (auto u : targets) {
        if (!is_current(st, u))
          return refuse(errc::not_member,
                        "user " + std::to_string(u) + " is not a member");
        auto m = st.members.at(u);
        if (m.role == role)
          continue;
        if (role == role_member)
          --admins;
        m.role = role;
        changed.push_back(m);
      }
      if (admins == 0)
        return refuse(errc::forbidden, "a group keeps at least one admin");
      if (changed.empty())
        return refuse(errc::bad_request, "nothing changes");
      return {};
    }
    case mc::renamed:
      if (auto err = need_admin())
        return err;
      if (c.name.empty())
        return refuse(errc::bad_request, "a group needs a name");
      if (c.name == st.group_name) // e.g. a retry: no second event
        return refuse(errc::bad_request, "nothing changes");
      return {};
    default:
      return refuse(errc::bad_request, "unknown membership change");
  }
}

void handle_join(self_ptr self, user_id user,
                 caf::typed_response_promise<sequence> rp) {
  auto& st = self->state;
  if (auto i = st.members.find(user);
      i != st.members.end() && i->second.left_at_sequence == 0) {
    rp.deliver(i->second.joined_at_sequence);
    return;
  }
  if (st.exists && st.kind == conversation_group) {
    rp.deliver(caf::make_error(errc::forbidden,
                               "groups are joined by an admin's add"));
    return;
  }
  member m{user, role_member, st.seqs.next(), 0};
  write_batch batch;
  if (!st.exists)
    store::add_conversation(batch, st.id, conversation_direct,
                            st.deps.clock());
  store::add_member(batch, st.id, m);
  ++st.creating; // also for a join of an existing one: harmless
  commit(
    self, std::move(batch),
    [self, m, rp]() mutable {
      --self->state.creating;
      self->state.exists = true;
      self->state.kind = conversation_direct;
      self->state.members[m.user] = m;
      rp.deliver(m.joined_at_sequence);
    },
    [self, rp](const caf::error& err) mutable {
      --self->state.creating;
      rp.deliver(err);
    });
}

size_t count_current(const conversation_state& st) {
  size_t n = 0;
  for (auto& [u, m] : st.members)
    n += m.left_at_sequence == 0 ? 1 : 0;
  return n;
}

void handle_change(self_ptr self, group_change& c,
                   caf::typed_response_promise<send_result> rp) {
  auto p = std::make_shared<pending>();
  // A change with the client's request id is deduplicated as a send is,
  // under the author's key (device 0: the user's, as for a create).
  bool keyed = c.change != membership_change::created && !c.request_id.empty();
  if (keyed) {
    p->req.sender_user = c.actor;
    p->req.client_message_id = change_key_prefix + c.request_id;
  }
  p->change = std::move(c);
  if (keyed) {
    admit(self, p, send_asker{rp});
    return;
  }
  p->ph = pending::phase::fresh;
  p->promises.push_back(send_asker{rp});
  self->state.queue.push_back(p);
  drain(self);
}

/// Commits a membership change as a MEMBERSHIP message (sender device 0:
/// no client send key can collide with it) with the member records it
/// changes, in one batch. Sends behind it wait until it is applied.
void commit_change(self_ptr self, const pending_ptr& p) {
  auto& st = self->state;
  auto& c = *p->change;
  // A retried create: its creator with its request id gets the first
  // answer (the group's first event), and nothing is written.
  if (c.change == membership_change::created && st.exists
      && st.kind == conversation_group && !c.request_id.empty()
      && c.actor == st.creator && c.request_id == st.create_request_id) {
    answer(self, *p, result_of(st.id, 1, st.created_at_ms, true));
    return;
  }
  std::vector<member> changed;
  if (auto err = plan_change(st, c, st.seqs.next(), changed)) {
    fail(self, *p, err);
    return;
  }
  auto& m = p->msg;
  m.conversation = st.id;
  m.seq = st.seqs.assign();
  m.sender_user = c.actor;
  m.sender_device = 0;
  // Keyed by the client's request id, if it gave one (its idempotency
  // record answers a retry); else by the sequence.
  bool keyed = !p->req.client_message_id.empty();
  m.client_message_id = keyed ? p->req.client_message_id
                              : "membership:" + std::to_string(m.seq);
  m.sent_at_ms = st.deps.clock();
  m.kind = message_kind_membership;
  m.payload = store::membership_payload(c);
  st.inflight.emplace(m.seq, p);
  st.changing = true;
  write_batch batch;
  if (c.change == membership_change::created)
    store::add_conversation(batch, st.id, conversation_group, m.sent_at_ms,
                            c.name, c.description, c.actor, c.request_id);
  store::add_message(batch, m);
  for (auto& mm : changed)
    store::add_member(batch, st.id, mm);
  commit(
    self, std::move(batch),
    [self, p, changed, keyed] {
      auto& st = self->state;
      auto& c = *p->change;
      st.inflight.erase(p->msg.seq);
      advance_head(self, p->msg.seq);
      if (c.change == membership_change::created) {
        st.exists = true;
        st.kind = conversation_group;
        st.group_description = c.description;
        st.created_at_ms = p->msg.sent_at_ms;
        st.creator = c.actor;
        st.create_request_id = c.request_id;
      }
      if (c.change == membership_change::created
          || c.change == membership_change::renamed)
        st.group_name = c.name;
      for (auto& mm : changed)
        st.members[mm.user] = mm;
      st.current_members = count_current(st);
      spdlog::info("group changed conversation={} change={} actor={} "
                   "members_changed={} seq={}",
                   st.id, c.change, c.actor, changed.size(), p->msg.seq);
      emit(self, p->msg);
      auto res = result_of(st.id, p->msg.seq, p->msg.sent_at_ms, false);
      if (keyed) {
        remember(self, key_of(p->req), res);
        note_committed(self, key_of(p->req), p->msg.sent_at_ms);
      }
      answer(self, *p, res);
      st.changing = false;
      schedule_watermark(self);
      drain(self);
    },
    [self](const caf::error&) {
      self->state.changing = false; // roll_back failed `p`
      drain(self);
    });
}

caf::expected<group_info> group_page(const conversation_state& st,
                                     user_id requester, user_id after,
                                     uint32_t limit) {
  if (!st.exists || st.kind != conversation_group)
    return caf::make_error(errc::not_found, "no such group");
  if (!is_current(st, requester))
    return caf::make_error(errc::not_member, "not a member");
  group_info g{st.id, st.group_name, st.group_description, st.head,
               {}, 0, static_cast<uint32_t>(st.current_members)};
  for (auto i = st.members.upper_bound(after); i != st.members.end(); ++i) {
    if (i->second.left_at_sequence != 0)
      continue;
    if (g.members.size() == limit) {
      g.next_after = g.members.back().user;
      break;
    }
    g.members.push_back(i->second);
  }
  return g;
}

} // namespace parley::conversation_detail
