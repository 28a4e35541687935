// inbox rebuild USER|all on the admin port (issue 23): a job (jobs.hpp,
// unit "users") that rebuilds the users of this node's partitions one at a
// time through the node's inbox (rebuild_atom with `all`: every entry
// recomputed from the log), while the node serves; progress per user. The
// inbox recomputes the rows it caches for the user first, so that the next
// live event counts from the rebuilt row (actors/inbox_user.cpp); rows are
// whole values ordered by (head, read), so an event's row and a rebuilt
// one never add up twice.

#include "runtime/admin/handlers.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include "runtime/admin/handlers_convs.hpp"
#include "runtime/admin/jobs.hpp"
#include "runtime/admin/resolve_user.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/node.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/meta_store.hpp"

namespace parley::admin {

namespace {

/// An inbox rebuild under way: its users, rebuilt one at a time.
struct rebuild_run {
  std::shared_ptr<job> j;
  std::string token_name; ///< who asked (for the log)
  std::string what;       ///< "all users", "user alice"
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
    // Logged before the job shows its end (a follower that saw it ended
    // finds the line).
    spdlog::info("admin job ended job={} token={} command=\"inbox rebuild\" "
                 "what=\"{}\" users={} failed={}",
                 r->j->id(), r->token_name, r->what, total, r->failed);
    if (r->failed == 0)
      r->j->finish();
    else
      r->j->finish(std::to_string(r->failed) + " of " + std::to_string(total)
                   + " users not rebuilt; first: " + r->first_error);
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

/// Finds the user `text` names (resolve_user.hpp: a numeric id first,
/// as every user command reads it), checks that this node owns the user's
/// partition, and calls `then`; else answers (before answer_within). Takes
/// actor handles, never the env: it runs in an actor that may start after
/// the node began to stop.
void owned_user(caf::event_based_actor* self, accounts_actor accounts,
                directory_actor dir, std::string text, reply_fn reply,
                std::function<void(user_id)> then) {
  auto until = std::chrono::steady_clock::now() + answer_within;
  auto owned = [self, dir, text, reply, then, until](user_id id) {
    self
      ->request(dir, ask_within(until), caf::get_atom::value,
                placement_key::user(id))
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
  resolve_user(self, accounts, text, ask_within(until),
               [owned](const account_view& v) { owned(v.user); },
               [reply, text](const caf::error& err) {
                 reply(failure("user " + text, err));
               });
}

void inbox_rebuild(env& e, const call& c, reply_fn reply) {
  if (!e.node || !e.sys || !e.jobs || !e.kv)
    return reply({503, "the node is not running"});
  auto text = c.args.at("user");
  auto r = std::make_shared<rebuild_run>();
  r->inbox = e.node->inbox();
  r->token_name = c.token_name;
  r->what = text == "all" ? "all users" : "user " + text;
  if (text == "all") {
    r->j = e.jobs->create("inbox rebuild", r->what, "users");
    reply({202, r->j->to_json()});
    e.sys->spawn<caf::detached>(rebuild_all, e.kv, e.node->directory(), r);
    return;
  }
  // Everything the actor needs, taken now (env.node may be gone by the
  // time it runs; the job board outlives the actor system).
  auto accounts = e.node->accounts();
  auto dir = e.node->directory();
  auto* jobs = e.jobs;
  e.sys->spawn([accounts, dir, jobs, text, reply,
                r](caf::event_based_actor* self) {
    owned_user(self, accounts, dir, text, reply,
               [self, jobs, reply, r](user_id id) {
                 r->j = jobs->create("inbox rebuild", r->what, "users");
                 r->users = {id};
                 r->j->set_phase("rebuilding");
                 r->j->set_progress(0, 1);
                 reply({202, r->j->to_json()});
                 rebuild_next(self, r);
               });
  });
}

} // namespace

void add_inbox_handlers(handler_table& t, env& e) {
  auto* ep = &e;
  t.add("inbox rebuild",
        [ep](const call& c, reply_fn reply) { inbox_rebuild(*ep, c, reply); });
}

} // namespace parley::admin
