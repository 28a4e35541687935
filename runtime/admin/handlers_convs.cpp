// The conversation commands of the admin port (issue 23): conv show, conv
// tail (handlers.hpp has the reply contract). Both ask by conversation id
// through the node's directory, which hands the request to the node owning
// the conversation's partition; a request that does not come back in time
// (an owner away, a partition moving) answers 503 with a retry hint.
// inbox rebuild runs as a job (jobs.hpp), one user at a time through the
// node's inbox (rebuild_atom), while the node serves.

#include "runtime/admin/handlers.hpp"

#include <algorithm>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "runtime/admin/jobs.hpp"
#include "runtime/admin/json_text.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/node.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/meta_store.hpp"

namespace parley::admin {

namespace {

/// How long a question to another actor (maybe on another node) may take
/// before the operator is told to retry.
constexpr auto admin_ask = timeouts::client;

/// Bytes of messages one conv tail read carries (payloads included; the
/// store reader stops there and the next read goes on after the last).
constexpr uint64_t tail_read_bytes = 4 << 20;

uint64_t number_arg(const call& c, const std::string& name) {
  auto i = c.args.find(name);
  return i == c.args.end() ? 0 : std::stoull(i->second);
}

result failure(const std::string& what, const caf::error& err) {
  std::string said;
  auto& ctx = err.context();
  if (ctx.size() >= 1 && ctx.match_element<std::string>(0))
    said = ctx.get_as<std::string>(0);
  if (is(err, errc::not_found))
    return {404, what + ": not found"};
  if (err == caf::sec::request_timeout)
    return {503, what + ": the node owning it did not answer in time; try "
                          "again in a moment"};
  if (err.category() == caf::atom("parley")
      && retryable(static_cast<errc>(err.code())))
    return {503, what + ": unavailable" + (said.empty() ? "" : " (" + said + ")")
                   + "; try again in a moment"};
  return {500, what + ": " + (said.empty() ? to_string(err) : said)};
}

const char* kind_name(int32_t kind) {
  return kind == conversation_direct  ? "direct"
         : kind == conversation_group ? "group"
                                      : "unknown";
}

const char* role_name(int32_t role) {
  return role == 2 ? "admin" : role == 1 ? "member" : "none";
}

const char* message_kind_name(int32_t kind) {
  switch (kind) {
    case 1:
      return "text";
    case 2:
      return "media";
    case 3:
      return "system";
    case 4:
      return "membership";
    default:
      return "unspecified";
  }
}

std::string show_json(conversation_id conv, const route& r,
                      const conversation_snapshot& s) {
  auto n = [](uint64_t x) { return std::to_string(x); };
  std::string out = "{\"conversation\":" + n(conv) + ",\"kind\":\""
                    + kind_name(s.kind) + "\"";
  if (s.kind == conversation_group)
    out += ",\"name\":" + json_quote(s.name);
  out += ",\"head\":" + n(s.head) + ",\"dispatched\":" + n(s.dispatched)
         + ",\"partition\":" + n(r.partition) + ",\"owner\":" + n(r.owner)
         + ",\"map_epoch\":" + n(r.map_epoch);
  uint64_t current = 0;
  std::string members;
  for (auto& m : s.members) {
    sequence delivered = 0, read = 0;
    for (auto& c : s.receipts)
      if (c.user == m.user)
        (c.kind == 2 ? read : delivered) = c.seq;
    if (m.left_at_sequence == 0)
      ++current;
    if (!members.empty())
      members += ',';
    members += "{\"user\":" + n(m.user) + ",\"role\":\"" + role_name(m.role)
               + "\",\"joined_at\":" + n(m.joined_at_sequence)
               + ",\"left_at\":" + n(m.left_at_sequence)
               + ",\"delivered\":" + n(delivered) + ",\"read\":" + n(read)
               + "}";
  }
  out += ",\"member_count\":" + n(current) + ",\"members\":[" + members
         + "]}";
  return out;
}

std::string message_json(const stored_message& m) {
  auto n = [](uint64_t x) { return std::to_string(x); };
  return "{\"seq\":" + n(m.seq) + ",\"sender\":" + n(m.sender_user)
         + ",\"device\":" + n(m.sender_device)
         + ",\"sent_ms\":" + std::to_string(m.sent_at_ms) + ",\"kind\":\""
         + message_kind_name(m.kind) + "\",\"payload_bytes\":"
         + n(m.payload.size()) + ",\"reply_to\":" + n(m.reply_to)
         + ",\"client_message_id\":" + json_quote(m.client_message_id) + "}";
}

/// What a conv tail has gathered so far.
struct tail_run {
  conversation_id conv = 0;
  uint32_t partition = 0;
  sequence last = 0; ///< the head when it started
  uint64_t want = 0;
  std::vector<std::string> rows; ///< message_json, in sequence order
};

/// Reads the messages of `t` after `after` (up to t->last), page by page
/// as the store reader's byte budget allows, then replies.
void read_tail(caf::event_based_actor* self, directory_actor dir,
               std::shared_ptr<tail_run> t, sequence after, reply_fn reply) {
  if (after >= t->last) {
    std::string out = "{\"conversation\":" + std::to_string(t->conv)
                      + ",\"messages\":[";
    for (size_t i = 0; i < t->rows.size(); ++i)
      out += (i ? "," : "") + t->rows[i];
    return reply({200, out + "]}"});
  }
  conv_query q;
  q.conv = t->conv;
  q.kind = conv_read_messages;
  q.start = conv_start_resume;
  q.after = after;
  conv_reads r;
  r.partition = t->partition;
  r.queries.push_back(q);
  r.budget = t->last - after;
  r.room = tail_read_bytes;
  self->request(dir, admin_ask, fetch_atom::value, std::move(r))
    .then(
      [self, dir, t, after, reply](conv_answers& a) {
        if (a.answers.empty())
          return reply({500, "conversation " + std::to_string(t->conv)
                               + ": the store reader answered nothing"});
        auto next = after;
        for (auto& m : a.answers.front().messages) {
          if (m.seq <= next || m.seq > t->last)
            continue;
          t->rows.push_back(message_json(m));
          next = m.seq;
        }
        if (next == after) // nothing more (the log ends before the head)
          next = t->last;
        read_tail(self, dir, t, next, reply);
      },
      [t, reply](const caf::error& err) {
        reply(failure("conversation " + std::to_string(t->conv), err));
      });
}

/// Asks the directory where `conv` lives, then its actor for the
/// conversation as it stands; `then` gets both.
template <class Then>
void ask_conversation(env& e, conversation_id conv, reply_fn reply,
                      Then then) {
  if (!e.node || !e.sys)
    return reply({503, "the node is not running"});
  auto dir = e.node->directory();
  e.sys->spawn([dir, conv, reply, then](caf::event_based_actor* self) {
    auto what = "conversation " + std::to_string(conv);
    self
      ->request(dir, admin_ask, caf::get_atom::value,
                placement_key::conversation(conv))
      .then(
        [self, dir, conv, reply, then, what](const route& r) {
          self->request(dir, admin_ask, load_atom::value, conv)
            .then(
              [self, dir, r, then](conversation_snapshot& s) {
                then(self, dir, r, s);
              },
              [reply, what](const caf::error& err) {
                reply(failure(what, err));
              });
        },
        [reply, what](const caf::error& err) { reply(failure(what, err)); });
  });
}

void conv_show(env& e, const call& c, reply_fn reply) {
  auto conv = number_arg(c, "conversation");
  ask_conversation(e, conv, reply,
                   [conv, reply](caf::event_based_actor*, directory_actor,
                                 const route& r,
                                 const conversation_snapshot& s) {
                     reply({200, show_json(conv, r, s)});
                   });
}

void conv_tail(env& e, const call& c, reply_fn reply) {
  auto conv = number_arg(c, "conversation");
  auto count = number_arg(c, "count");
  ask_conversation(
    e, conv, reply,
    [conv, count, reply](caf::event_based_actor* self, directory_actor dir,
                         const route& r, const conversation_snapshot& s) {
      auto t = std::make_shared<tail_run>();
      t->conv = conv;
      t->partition = r.partition;
      t->last = s.head;
      t->want = count;
      read_tail(self, dir, t, s.head > count ? s.head - count : 0, reply);
    });
}

// -- inbox rebuild ------------------------------------------------------------

/// An inbox rebuild under way: its users, rebuilt one at a time.
struct rebuild_run {
  std::shared_ptr<job> j;
  inbox_supervisor_actor inbox;
  std::vector<user_id> users;
  size_t next = 0;
  uint64_t failed = 0;
  std::string first_error;
};

/// Rebuilds the next user of `r` (every entry recomputed from the log:
/// rebuild_atom with `all`), then the one after, and ends the job.
void rebuild_next(caf::event_based_actor* self, std::shared_ptr<rebuild_run> r) {
  auto total = r->users.size();
  if (r->next == total) {
    if (r->failed == 0) {
      r->j->finish();
    } else {
      r->j->finish(std::to_string(r->failed) + " of " + std::to_string(total)
                   + " users not rebuilt; first: " + r->first_error);
    }
    self->quit();
    return;
  }
  auto user = r->users[r->next++];
  self->request(r->inbox, timeouts::scan, rebuild_atom::value, user, true)
    .then(
      [self, r, total](uint64_t) {
        r->j->set_progress(r->next, total);
        rebuild_next(self, r);
      },
      [self, r, total, user](const caf::error& err) {
        if (r->failed++ == 0)
          r->first_error = "user " + std::to_string(user) + ": "
                           + failure("inbox", err).body;
        r->j->set_progress(r->next, total);
        rebuild_next(self, r);
      });
}

/// The users with a membership record in the partitions this node owns
/// (the directory says which), in partition order. Blocking store scans:
/// runs in a detached actor.
void rebuild_all(caf::event_based_actor* self, kv_backend* kv,
                 directory_actor dir, std::shared_ptr<rebuild_run> r) {
  r->j->set_phase("listing users");
  auto parts = store::stored_partitions(*kv);
  if (!parts || *parts == 0) {
    r->j->finish("the store keeps no partition count");
    return self->quit();
  }
  // Each partition's users, then which partitions are this node's.
  auto found = std::make_shared<std::vector<std::vector<user_id>>>();
  for (uint32_t p = 0; p < *parts; ++p) {
    auto users = store::users_in_partition(*kv, p, *parts);
    if (!users) {
      r->j->finish("listing users: " + to_string(users.error()));
      return self->quit();
    }
    if (!users->empty())
      found->push_back(std::move(*users));
  }
  auto left = std::make_shared<size_t>(found->size());
  auto mine = std::make_shared<std::vector<bool>>(found->size(), false);
  auto all_known = [self, r, found, mine] {
    for (size_t i = 0; i < found->size(); ++i)
      if ((*mine)[i])
        r->users.insert(r->users.end(), (*found)[i].begin(),
                        (*found)[i].end());
    r->j->set_phase("rebuilding");
    r->j->set_progress(0, r->users.size());
    rebuild_next(self, r);
  };
  if (found->empty())
    return all_known();
  for (size_t i = 0; i < found->size(); ++i)
    self
      ->request(dir, admin_ask, caf::get_atom::value,
                placement_key::user((*found)[i].front()))
      .then(
        [i, left, mine, all_known](const route& rt) {
          (*mine)[i] = rt.local;
          if (--*left == 0)
            all_known();
        },
        [self, r](const caf::error& err) {
          r->j->finish(failure("the partition map", err).body);
          self->quit();
        });
}

/// Finds the user named `text` (a name, else a numeric id of an account),
/// checks that this node owns the user's partition, and calls `then`.
void resolve_user(caf::event_based_actor* self, env& e, std::string text,
                  reply_fn reply, std::function<void(user_id)> then) {
  auto accounts = e.node->accounts();
  auto dir = e.node->directory();
  auto owned = [self, dir, text, reply, then](user_id id) {
    self
      ->request(dir, admin_ask, caf::get_atom::value, placement_key::user(id))
      .then(
        [text, id, reply, then](const route& rt) {
          if (rt.local)
            return then(id);
          reply({409, "user " + text + " is on partition "
                        + std::to_string(rt.partition) + " of node "
                        + std::to_string(rt.owner)
                        + ": run the rebuild on that node"});
        },
        [reply, text](const caf::error& err) {
          reply(failure("user " + text, err));
        });
  };
  self->request(accounts, admin_ask, caf::resolve_atom::value, text)
    .then(owned, [self, accounts, text, reply, owned](const caf::error& err) {
      auto digits = !text.empty()
                    && std::all_of(text.begin(), text.end(),
                                   [](char ch) { return ch >= '0' && ch <= '9'; });
      if (!is(err, errc::not_found) || !digits || text.size() > 19)
        return reply(failure("user " + text, err));
      // Not a name: a user id, if an account has it.
      auto id = std::stoull(text);
      self
        ->request(accounts, admin_ask, caf::resolve_atom::value,
                  std::vector<std::string>{}, std::vector<uint64_t>{id})
        .then([owned, id](const std::vector<uint64_t>&) { owned(id); },
              [reply, text](const caf::error& err) {
                reply(failure("user " + text, err));
              });
    });
}

void inbox_rebuild(env& e, const call& c, reply_fn reply) {
  if (!e.node || !e.sys || !e.jobs || !e.kv)
    return reply({503, "the node is not running"});
  auto text = c.args.at("user");
  auto r = std::make_shared<rebuild_run>();
  r->inbox = e.node->inbox();
  if (text == "all") {
    r->j = e.jobs->create("inbox rebuild", "all users", "users");
    reply({202, r->j->to_json()});
    e.sys->spawn<caf::detached>(rebuild_all, e.kv, e.node->directory(), r);
    return;
  }
  auto* ep = &e;
  e.sys->spawn([ep, text, reply, r](caf::event_based_actor* self) {
    resolve_user(self, *ep, text, reply, [self, ep, text, reply, r](user_id id) {
      r->j = ep->jobs->create("inbox rebuild", "user " + text, "users");
      r->users = {id};
      r->j->set_phase("rebuilding");
      r->j->set_progress(0, 1);
      reply({202, r->j->to_json()});
      rebuild_next(self, r);
    });
  });
}

} // namespace

void add_conversation_handlers(handler_table& t, env& e) {
  auto* ep = &e;
  t.add("conv show",
        [ep](const call& c, reply_fn reply) { conv_show(*ep, c, reply); });
  t.add("conv tail",
        [ep](const call& c, reply_fn reply) { conv_tail(*ep, c, reply); });
  t.add("inbox rebuild",
        [ep](const call& c, reply_fn reply) { inbox_rebuild(*ep, c, reply); });
}

} // namespace parley::admin
