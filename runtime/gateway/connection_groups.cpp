// The connection actor's group frames: GroupCreate, GroupChange and
// GetGroup. Names and ids of members are checked with the accounts actor;
// the conversation actor decides whether the change is allowed (admins,
// membership, size) and writes it to the log.

#include <algorithm>
#include <random>

#include <caf/event_based_actor.hpp>

#include "actors/accounts.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/gateway/connection_detail.hpp"

namespace parley::gateway::connection_detail {

namespace {

using namespace std::chrono_literals;

/// A fresh group id: random, below 2^62 (direct conversations have bit 63
/// set), never 0. Collisions are caught by the conversation (conflict).
conversation_id new_group_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  conversation_id id = 0;
  while (id == 0)
    id = rng() & ((uint64_t{1} << 62) - 1);
  return id;
}

/// The group id of a create the client named: the same for every retry by
/// the same user (FNV-1a of the user id and the request id, below 2^62,
/// never 0). Another group holding it is caught by the conversation.
conversation_id group_id_for(user_id user, const std::string& request_id) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](unsigned char byte) {
    h ^= byte;
    h *= 1099511628211ull;
  };
  for (int i = 0; i < 8; ++i)
    mix(static_cast<unsigned char>(user >> (8 * i)));
  for (unsigned char byte : request_id)
    mix(byte);
  auto id = h & ((uint64_t{1} << 62) - 1);
  return id == 0 ? 1 : id;
}

std::vector<uint64_t> ids_of(const google::protobuf::RepeatedField<uint64_t>& r) {
  return {r.begin(), r.end()};
}

std::vector<std::string>
names_of(const google::protobuf::RepeatedPtrField<std::string>& r) {
  return {r.begin(), r.end()};
}

void reply_accepted(self_ptr self, uint32_t rid, frame_format fmt,
                    conversation_id conv, const send_result& r) {
  reply(self, accepted_frame(rid, conv, {}, r), fmt);
}

/// Resolves the frame's members, then runs `fn` with their ids.
void with_users(self_ptr self, uint32_t rid, frame_format fmt,
                std::vector<std::string> names, std::vector<uint64_t> ids,
                std::function<void(std::vector<uint64_t>)> fn) {
  if (names.empty() && ids.empty()) {
    fn({});
    return;
  }
  self
    ->request(self->state.deps.accounts, 30s, caf::resolve_atom::value,
              std::move(names), std::move(ids))
    .then([fn](std::vector<uint64_t>& users) { fn(std::move(users)); },
          [self, rid, fmt](caf::error& err) {
            reply_error(self, rid, fmt, err);
          });
}

void create_group(self_ptr self, uint32_t rid, frame_format fmt,
                  group_change c, int attempts_left) {
  auto id = c.request_id.empty() ? new_group_id()
                                 : group_id_for(c.actor, c.request_id);
  self
    ->request(self->state.deps.directory, timeouts::commit, group_atom::value,
              id, c)
    .then([=](send_result& r) { reply_accepted(self, rid, fmt, id, r); },
          [=](caf::error& err) {
            if (is(err, errc::conflict) && attempts_left > 0
                && c.request_id.empty())
              create_group(self, rid, fmt, c, attempts_left - 1);
            else
              reply_error(self, rid, fmt, err);
          });
}

/// Refuses a create or change naming more members than one MEMBERSHIP
/// event may hold (it must fit any frame the server sends: see
/// max_change_targets). True if refused.
bool too_many_targets(self_ptr self, uint32_t rid, frame_format fmt,
                      int targets) {
  if (targets <= static_cast<int>(max_change_targets))
    return false;
  reply_error(self, rid, fmt, v1::Error::CODE_TOO_LARGE,
              std::to_string(targets) + " members in one change; at most "
                + std::to_string(max_change_targets)
                + ": split it over several changes");
  return true;
}

} // namespace

uint32_t group_page_limit(uint32_t requested, size_t max_server_frame_bytes) {
  // At most ~96 bytes a member in JSON, after the name and description
  // (escaped, up to 6 bytes a byte: 16 KiB).
  auto room = max_server_frame_bytes > 16384 ? max_server_frame_bytes - 16384
                                             : 0;
  auto fits = static_cast<uint32_t>(std::clamp<size_t>(room / 96, 1, 5000));
  return std::min(requested == 0 ? 1000u : requested, fits);
}

void on_group_create(self_ptr self, const v1::ClientFrame& frame,
                     frame_format fmt) {
  auto rid = frame.request_id();
  auto& g = frame.group_create();
  if (g.name().empty()) {
    reply_error(self, rid, fmt, v1::Error::CODE_BAD_FRAME,
                "group_create needs a name");
    return;
  }
  if (too_many_targets(self, rid, fmt,
                       g.usernames_size() + g.user_ids_size()))
    return;
  auto& who = self->state.who;
  if (auto& lim = self->state.deps.limiter;
      lim
      && (!within_limit(self, rid, fmt,
                        "group/create/" + std::to_string(who.user),
                        lim->limits().group_create)
          || !within_limit(self, rid, fmt,
                           "group/add/" + std::to_string(who.user),
                           lim->limits().member_add,
                           g.usernames_size() + g.user_ids_size())))
    return;
  if (g.client_request_id().size() > 128) {
    reply_error(self, rid, fmt, v1::Error::CODE_BAD_FRAME,
                "client_request_id must have at most 128 bytes");
    return;
  }
  group_change c{membership_change::created, who.user, who.device, {},
                 g.name(), g.description(), g.client_request_id()};
  with_users(self, rid, fmt, names_of(g.usernames()), ids_of(g.user_ids()),
             [self, rid, fmt, c](std::vector<uint64_t> users) mutable {
               c.targets = std::move(users);
               create_group(self, rid, fmt, std::move(c), 3);
             });
}

void on_group_change(self_ptr self, const v1::ClientFrame& frame,
                     frame_format fmt) {
  auto rid = frame.request_id();
  auto& g = frame.group_change();
  if (g.conversation_id() == 0) {
    reply_error(self, rid, fmt, v1::Error::CODE_BAD_FRAME,
                "group_change needs conversation_id");
    return;
  }
  auto change = static_cast<int32_t>(g.change());
  if (change < membership_change::added
      || change > membership_change::renamed) {
    reply_error(self, rid, fmt, v1::Error::CODE_BAD_FRAME,
                "group_change needs a change: ADDED, REMOVED, LEFT, "
                "PROMOTED, DEMOTED or RENAMED");
    return;
  }
  if (too_many_targets(self, rid, fmt,
                       g.usernames_size() + g.user_ids_size()))
    return;
  auto& who = self->state.who;
  if (auto& lim = self->state.deps.limiter;
      lim && change == membership_change::added
      && !within_limit(self, rid, fmt, "group/add/" + std::to_string(who.user),
                       lim->limits().member_add,
                       g.usernames_size() + g.user_ids_size()))
    return;
  if (g.client_request_id().size() > 128) {
    reply_error(self, rid, fmt, v1::Error::CODE_BAD_FRAME,
                "client_request_id must have at most 128 bytes");
    return;
  }
  auto conv_id = g.conversation_id();
  group_change c{change,   who.user, who.device, {},
                 g.name(), {},       g.client_request_id()};
  with_users(
    self, rid, fmt, names_of(g.usernames()), ids_of(g.user_ids()),
    [self, rid, fmt, c, conv_id](std::vector<uint64_t> users) mutable {
      c.targets = std::move(users);
      self
        ->request(self->state.deps.directory, timeouts::commit,
                  group_atom::value, conv_id, c)
        .then(
          [=](send_result& r) { reply_accepted(self, rid, fmt, conv_id, r); },
          [=](caf::error& err) { reply_error(self, rid, fmt, err); });
    });
}

void on_get_group(self_ptr self, const v1::ClientFrame& frame,
                  frame_format fmt) {
  auto rid = frame.request_id();
  auto& req = frame.get_group();
  auto conv_id = req.conversation_id();
  auto me = self->state.who.user;
  user_id after = req.after_user_id();
  auto limit = group_page_limit(req.limit(),
                                self->state.deps.max_server_frame_bytes);
  self
    ->request(self->state.deps.directory, timeouts::ask, group_atom::value,
              conv_id, me, after, limit)
    .then(
      [=](group_info& g) {
        v1::ServerFrame f;
        f.set_request_id(rid);
        auto* out = f.mutable_group_info();
        out->set_conversation_id(g.conversation);
        out->set_name(g.name);
        out->set_description(g.description);
        out->set_head_sequence(g.head);
        out->set_next_after_user_id(g.next_after);
        out->set_member_count(g.member_count);
        for (auto& m : g.members) {
          auto* gm = out->add_members();
          gm->set_user_id(m.user);
          gm->set_admin(m.role == role_admin);
          gm->set_joined_at_sequence(m.joined_at_sequence);
        }
        reply(self, f, fmt);
      },
      [=](caf::error& err) { reply_error(self, rid, fmt, err); });
}

} // namespace parley::gateway::connection_detail
