// The conversation actor's membership: joining a direct conversation, and
// the group rules (who may change a group's membership and what each
// change does to the member records). The send path orders a group change
// with the sends around it and writes it as a MEMBERSHIP message with its
// own sequence (conversation_send::handle_change).

#include "actors/conversation_groups.hpp"

#include <algorithm>
#include <set>

#include "actors/conversation.hpp"
#include "actors/conversation_memberships.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/store/conversation_store.hpp"

namespace parley::conversation_groups {

namespace {

constexpr size_t max_name_bytes = 256;
constexpr size_t max_description_bytes = 2048;

bool is_current(const conversation_state& st, user_id u) {
  auto i = st.groups.members.find(u);
  return i != st.groups.members.end() && i->second.left_at_sequence == 0;
}

bool is_admin(const conversation_state& st, user_id u) {
  auto i = st.groups.members.find(u);
  return i != st.groups.members.end() && i->second.left_at_sequence == 0
         && i->second.role == role_admin;
}

size_t count_now(const conversation_state& st) {
  auto& ms = st.groups.members;
  return static_cast<size_t>(
    std::count_if(ms.begin(), ms.end(), [](auto& kv) {
      return kv.second.left_at_sequence == 0;
    }));
}

size_t admin_count(const conversation_state& st) {
  auto& ms = st.groups.members;
  return static_cast<size_t>(
    std::count_if(ms.begin(), ms.end(), [](auto& kv) {
      return kv.second.left_at_sequence == 0 && kv.second.role == role_admin;
    }));
}

caf::error refuse(errc code, std::string why) {
  return caf::make_error(code, std::move(why));
}

} // namespace

void load(conversation_state& st, const conversation_snapshot& snap) {
  auto& g = st.groups;
  g.name = snap.name;
  g.description = snap.description;
  g.created_at_ms = snap.created_at_ms;
  g.creator = snap.creator;
  g.create_request_id = snap.create_request_id;
  for (auto& m : snap.members)
    g.members[m.user] = m;
  g.current_members = count_now(st);
}

const member* find_member(const conversation_state& st, user_id user) {
  auto i = st.groups.members.find(user);
  return i != st.groups.members.end() ? &i->second : nullptr;
}

bool is_current_member(const conversation_state& st, user_id user) {
  return is_current(st, user);
}

size_t current_count(const conversation_state& st) {
  return st.groups.current_members;
}

size_t member_count(const conversation_state& st) {
  return st.groups.members.size();
}

bool is_large(const conversation_state& st) {
  return st.kind == conversation_group
         && st.groups.current_members > st.deps.limits.large_group_members;
}

std::vector<user_id> members_at(const conversation_state& st, sequence seq) {
  std::vector<user_id> to;
  for (auto& [id, m] : st.groups.members)
    if (m.joined_at_sequence <= seq
        && (m.left_at_sequence == 0 || seq < m.left_at_sequence))
      to.push_back(id);
  return to;
}

std::vector<user_id> current_members(const conversation_state& st) {
  std::vector<user_id> to;
  for (auto& [user, m] : st.groups.members)
    if (m.left_at_sequence == 0)
      to.push_back(user);
  return to;
}

bool creating(const conversation_state& st) {
  return st.groups.creating > 0;
}

std::optional<int64_t> retried_create(const conversation_state& st,
                                      const group_change& c) {
  if (c.change == membership_change::created && st.exists
      && st.kind == conversation_group && !c.request_id.empty()
      && c.actor == st.groups.creator
      && c.request_id == st.groups.create_request_id)
    return st.groups.created_at_ms;
  return std::nullopt;
}

void write_create(write_batch& batch, const conversation_state& st,
                  const group_change& c, int64_t at_ms) {
  if (c.change == membership_change::created)
    store::add_conversation(batch, st.id, conversation_group, at_ms, c.name,
                            c.description, c.actor, c.request_id);
}

void write_members(write_batch& batch, const conversation_state& st,
                   const std::vector<member>& changed, sequence seq) {
  for (auto& m : changed)
    conversation_memberships::write(batch, st, m, seq);
}

void apply_change(conversation_state& st, const group_change& c,
                  const std::vector<member>& changed, int64_t at_ms) {
  auto& g = st.groups;
  if (c.change == membership_change::created) {
    st.exists = true;
    st.kind = conversation_group;
    g.description = c.description;
    g.created_at_ms = at_ms;
    g.creator = c.actor;
    g.create_request_id = c.request_id;
  }
  if (c.change == membership_change::created
      || c.change == membership_change::renamed)
    g.name = c.name;
  for (auto& m : changed)
    g.members[m.user] = m;
  g.current_members = count_now(st);
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
      if (count_now(st) + changed.size() > st.deps.limits.max_group_size)
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
        auto m = st.groups.members.at(u);
        m.left_at_sequence = seq + 1; // they see their removal, nothing after
        changed.push_back(m);
      }
      return {};
    }
    case mc::left: {
      auto m = st.groups.members.at(c.actor);
      if (m.role == role_admin && admin_count(st) == 1
          && count_now(st) > 1)
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
        auto m = st.groups.members.at(u);
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
      if (c.name == st.groups.name) // e.g. a retry: no second event
        return refuse(errc::bad_request, "nothing changes");
      return {};
    default:
      return refuse(errc::bad_request, "unknown membership change");
  }
}

void handle_join(conversation_self self, user_id user,
                 caf::typed_response_promise<sequence> rp) {
  auto& st = self->state;
  if (auto i = st.groups.members.find(user);
      i != st.groups.members.end() && i->second.left_at_sequence == 0) {
    // A repeated join: answered once the member's index has it (the
    // first join's answer may have timed out waiting for that).
    auto joined = i->second.joined_at_sequence;
    conversation_memberships::when_acked(
      self, joined, [rp, joined](const caf::error& err) mutable {
        if (err)
          rp.deliver(err);
        else
          rp.deliver(joined);
      });
    return;
  }
  if (st.exists && st.kind == conversation_group) {
    rp.deliver(caf::make_error(errc::forbidden,
                               "groups are joined by an admin's add"));
    return;
  }
  member m{user, role_member, conversation_send::next_sequence(st), 0};
  write_batch batch;
  if (!st.exists)
    store::add_conversation(batch, st.id, conversation_direct,
                            st.deps.clock());
  // A direct member joins once: its joined_at_sequence orders its event.
  conversation_memberships::write(batch, st, m, m.joined_at_sequence);
  ++st.groups.creating; // also for a join of an existing one: harmless
  conversation_send::commit(
    self, std::move(batch),
    [self, m, rp]() mutable {
      auto& st = self->state;
      --st.groups.creating;
      st.exists = true;
      st.kind = conversation_direct;
      st.groups.members[m.user] = m;
      conversation_memberships::relay(self, {m}, m.joined_at_sequence);
      // Answered once the member's index lists the conversation, so that
      // a sync right after the answer does.
      conversation_memberships::when_acked(
        self, m.joined_at_sequence, [rp, m](const caf::error& err) mutable {
          if (err)
            rp.deliver(err);
          else
            rp.deliver(m.joined_at_sequence);
        });
    },
    [self, rp](const caf::error& err) mutable {
      --self->state.groups.creating;
      rp.deliver(err);
    });
}

caf::expected<group_info> group_page(const conversation_state& st,
                                     user_id requester, user_id after,
                                     uint32_t limit) {
  if (!st.exists || st.kind != conversation_group)
    return caf::make_error(errc::not_found, "no such group");
  if (!is_current(st, requester))
    return caf::make_error(errc::not_member, "not a member");
  group_info g{st.id, st.groups.name, st.groups.description,
               conversation_send::head(st),
               {}, 0, static_cast<uint32_t>(st.groups.current_members)};
  auto& members = st.groups.members;
  for (auto i = members.upper_bound(after); i != members.end(); ++i) {
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

} // namespace parley::conversation_groups
