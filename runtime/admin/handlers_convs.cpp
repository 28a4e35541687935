// The conversation commands of the admin port (issue 23): conv show, conv
// tail (handlers.hpp has the reply contract). Both ask by conversation id
// through the node's directory, which hands the request to the node owning
// the conversation's partition; a request that does not come back in time
// (an owner away, a partition moving) answers 503 with a retry hint.
// inbox rebuild: handlers_inbox.cpp.

#include "runtime/admin/handlers.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "runtime/admin/handlers_convs.hpp"
#include "runtime/admin/json_text.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/node.hpp"

namespace parley::admin {

namespace {

/// Bytes of messages one conv tail read carries (payloads included; the
/// store reader stops there and the next read goes on after the last).
constexpr uint64_t tail_read_bytes = 4 << 20;

/// conv show lists at most this many members (who ever joined, in user
/// order; members_listed says how many), so a large group's answer stays
/// a screenful of kilobytes, not megabytes.
constexpr uint64_t max_listed_members = 1000;

/// conv show names the members of conversations up to this size.
constexpr size_t max_named_members = 64;

/// How long conv show waits for a member's name.
constexpr caf::timespan name_lookup = std::chrono::seconds(2);

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
                      const conversation_snapshot& s,
                      const std::map<user_id, std::string>& names) {
  auto n = [](uint64_t x) { return std::to_string(x); };
  std::string out = "{\"conversation\":" + n(conv) + ",\"kind\":\""
                    + kind_name(s.kind) + "\"";
  if (s.kind == conversation_group)
    out += ",\"name\":" + json_quote(s.name);
  out += ",\"head\":" + n(s.head) + ",\"dispatched\":" + n(s.dispatched)
         + ",\"partition\":" + n(r.partition) + ",\"owner\":" + n(r.owner)
         + ",\"map_epoch\":" + n(r.map_epoch);
  // Receipts and members are both in user order; a map keeps it simple.
  std::map<user_id, std::pair<sequence, sequence>> cursors;
  for (auto& c : s.receipts)
    (c.kind == 2 ? cursors[c.user].second : cursors[c.user].first) = c.seq;
  uint64_t current = 0, listed = 0;
  std::string members;
  for (auto& m : s.members) {
    if (m.left_at_sequence == 0)
      ++current;
    if (listed == max_listed_members)
      continue;
    ++listed;
    auto cur = cursors[m.user];
    if (!members.empty())
      members += ',';
    auto name = names.find(m.user);
    members += "{\"user\":" + n(m.user) + ",\"name\":"
               + json_quote(name == names.end() ? "" : name->second)
               + ",\"role\":\"" + role_name(m.role)
               + "\",\"joined_at\":" + n(m.joined_at_sequence)
               + ",\"left_at\":" + n(m.left_at_sequence)
               + ",\"delivered\":" + n(cur.first) + ",\"read\":"
               + n(cur.second) + "}";
  }
  out += ",\"member_count\":" + n(current) + ",\"members_listed\":"
         + n(listed) + ",\"members\":[" + members + "]}";
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
  deadline until;
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
  auto within = ask_within(t->until);
  if (within.count() == 0)
    return reply(failure("conversation " + std::to_string(t->conv),
                         caf::sec::request_timeout));
  self->request(dir, within, fetch_atom::value, std::move(r))
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
/// conversation as it stands; `then` gets both (and the answer's deadline).
template <class Then>
void ask_conversation(env& e, conversation_id conv, reply_fn reply,
                      Then then) {
  if (!e.node || !e.sys)
    return reply({503, "the node is not running"});
  auto dir = e.node->directory();
  auto until = std::chrono::steady_clock::now() + answer_within;
  e.sys->spawn([dir, conv, reply, then, until](caf::event_based_actor* self) {
    auto what = "conversation " + std::to_string(conv);
    self
      ->request(dir, ask_within(until), caf::get_atom::value,
                placement_key::conversation(conv))
      .then(
        [self, dir, conv, reply, then, what, until](const route& r) {
          self->request(dir, ask_within(until), load_atom::value, conv)
            .then(
              [self, dir, r, then, until](conversation_snapshot& s) {
                then(self, dir, r, s, until);
              },
              [reply, what](const caf::error& err) {
                reply(failure(what, err));
              });
        },
        [reply, what](const caf::error& err) { reply(failure(what, err)); });
  });
}

/// Asks the accounts for the names of the members of `s` (each at the
/// owner of the user's partition; at most max_named_members of them, else
/// none), then calls `done`. A name not known within name_lookup stays
/// empty: names are a courtesy, the cursors are the answer.
void with_names(caf::event_based_actor* self, accounts_actor accounts,
                const conversation_snapshot& s, deadline until,
                std::function<void(const std::map<user_id, std::string>&)>
                  done) {
  auto names = std::make_shared<std::map<user_id, std::string>>();
  if (!accounts || s.members.empty()
      || s.members.size() > max_named_members)
    return done(*names);
  auto within = std::min<caf::timespan>(ask_within(until), name_lookup);
  auto left = std::make_shared<size_t>(s.members.size());
  for (auto& m : s.members) {
    auto user = m.user;
    auto one = [names, left, done] {
      if (--*left == 0)
        done(*names);
    };
    self->request(accounts, within, account_show_step{user, false})
      .then([names, user, one](const account_view& v) {
              (*names)[user] = v.name;
              one();
            },
            [one](const caf::error&) { one(); });
  }
}

void conv_show(env& e, const call& c, reply_fn reply) {
  auto conv = number_arg(c, "conversation");
  auto accounts = e.node ? e.node->accounts() : accounts_actor{};
  ask_conversation(
    e, conv, reply,
    [conv, reply, accounts](caf::event_based_actor* self, directory_actor,
                            const route& r, const conversation_snapshot& s,
                            deadline until) {
      with_names(self, accounts, s, until,
                 [conv, reply, r, s](const std::map<user_id, std::string>& ns) {
                   reply({200, show_json(conv, r, s, ns)});
                 });
    });
}

void conv_tail(env& e, const call& c, reply_fn reply) {
  auto conv = number_arg(c, "conversation");
  auto count = number_arg(c, "count");
  ask_conversation(
    e, conv, reply,
    [conv, count, reply](caf::event_based_actor* self, directory_actor dir,
                         const route& r, const conversation_snapshot& s,
                         deadline until) {
      auto t = std::make_shared<tail_run>();
      t->until = until;
      t->conv = conv;
      t->partition = r.partition;
      t->last = s.head;
      read_tail(self, dir, t, s.head > count ? s.head - count : 0, reply);
    });
}

} // namespace

caf::timespan ask_within(deadline d) {
  auto left = d - std::chrono::steady_clock::now();
  if (left <= left.zero())
    return caf::timespan{0};
  return std::min<caf::timespan>(
    std::chrono::duration_cast<caf::timespan>(left), admin_ask);
}

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

void add_conversation_handlers(handler_table& t, env& e) {
  auto* ep = &e;
  t.add("conv show",
        [ep](const call& c, reply_fn reply) { conv_show(*ep, c, reply); });
  t.add("conv tail",
        [ep](const call& c, reply_fn reply) { conv_tail(*ep, c, reply); });
  add_inbox_handlers(t, e);
}

} // namespace parley::admin
