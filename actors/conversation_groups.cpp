// The conversation actor's group rules: who may change a group's
// membership and what each change does to the member records. The send
// path (conversation.cpp) orders a change with the sends around it and
// writes it as a MEMBERSHIP message with its own sequence.

#include <algorithm>
#include <set>

#include "actors/conversation_detail.hpp"
#include "actors/errors.hpp"
#include "parley/v1/wire.pb.h"

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
      return {};
    default:
      return refuse(errc::bad_request, "unknown membership change");
  }
}

std::string membership_payload(const group_change& c) {
  v1::Membership m;
  m.set_change(static_cast<v1::Membership::Change>(c.change));
  m.set_actor_user_id(c.actor);
  if (c.change == membership_change::left) {
    m.add_target_user_ids(c.actor);
  } else {
    std::set<user_id> targets(c.targets.begin(), c.targets.end());
    targets.erase(0);
    if (c.change == membership_change::created)
      targets.erase(c.actor);
    for (auto u : targets)
      m.add_target_user_ids(u);
  }
  if (c.change == membership_change::created
      || c.change == membership_change::renamed)
    m.set_name(c.name);
  return m.SerializeAsString();
}

} // namespace parley::conversation_detail
