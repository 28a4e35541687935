// The inbox's user side (inbox.hpp): the list and the flags of a user of
// this node's partitions, and the reconciliation of what this node owns.
// Reads go by message (inbox_detail::reads).

#include <memory>

#include <spdlog/spdlog.h>

#include "actors/inbox_detail.hpp"
#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/core/writer_ids.hpp"
#include "runtime/store/inbox_store.hpp"

namespace parley::inbox_detail {

namespace {

using entries = std::vector<inbox_entry>;

std::vector<inbox_row> rows_of(user_id user, const entries& es) {
  std::vector<inbox_row> out;
  for (auto& e : es)
    out.push_back(inbox_row{user, e});
  return out;
}

caf::result<entries> list(self_ptr self, user_id user) {
  auto rp = self->make_response_promise<entries>();
  store::list_inbox_async(
    reads(self), user, false,
    [self, rp, user](caf::expected<store::listed_inbox> l) mutable {
      if (!l) {
        rp.deliver(l.error());
        return;
      }
      if (!l->stale.empty()) // repaired in passing
        accept(self, rows_of(user, l->stale), true,
               [](caf::expected<uint64_t>) {});
      rp.deliver(std::move(l->entries));
    });
  return rp;
}

void write_flags(self_ptr self, inbox_query q, inbox_entry e,
                 caf::response_promise rp) {
  auto& st = self->state;
  e.archived = q.archived;
  e.pinned = q.pinned;
  e.muted = q.muted;
  write_batch batch;
  store::add_inbox_flags(batch, q.user, q.conv, q.archived, q.pinned,
                         q.muted);
  auto epoch = st.epoch;
  self
    ->request(st.writer, timeouts::commit, commit_atom::value,
              writer_ids::inbox(0), epoch, std::move(batch))
    .then([rp, e](uint64_t) mutable { rp.deliver(entries{e}); },
          // A timeout too (retryable): the flags are a whole value, so
          // a late landing and the client's retry write the same.
          [self, rp, epoch](caf::error& err) mutable {
            auto& cur = self->state.epoch;
            cur = std::max(cur, next_epoch(err, epoch));
            rp.deliver(std::move(err));
          });
}

caf::result<entries> flags(self_ptr self, const inbox_query& q) {
  // A stored row: the user is (or was) a member; else from the log.
  auto stored = store::load_inbox_entry(*self->state.kv, q.user, q.conv);
  if (!stored)
    return stored.error();
  auto rp = self->make_response_promise<entries>();
  if (*stored) {
    write_flags(self, q, **stored, rp);
    return rp;
  }
  store::compute_inbox_entry_async(
    reads(self), q.user, q.conv,
    [self, rp, q](caf::expected<inbox_entry> e) mutable {
      if (!e)
        rp.deliver(e.error());
      else
        write_flags(self, q, *e, rp);
    });
  return rp;
}

/// Recomputes from the log every row of `user` that this node's
/// conversation side holds in its cache, then calls `done` (once all are
/// known or failed). A rebuild does this first: a cached row with a wrong
/// count would otherwise be carried forward by the next event (+1 on the
/// wrong value) and, reaching the user side with a newer head than the
/// repair, undo it. Events arriving meanwhile are applied to the
/// recomputed rows (recompute). Rows cached by other nodes' inboxes (the
/// side of conversations they run) are not reached here.
void recompute_cached(self_ptr self, user_id user,
                      std::function<void()> done) {
  std::vector<entry_key> keys;
  auto& cache = self->state.cache;
  for (auto i = cache.lower_bound({user, 0});
       i != cache.end() && i->first.first == user; ++i)
    keys.push_back(i->first);
  auto left = std::make_shared<size_t>(keys.size() + 1);
  auto one_done = [left, done] {
    if (--*left == 0)
      done();
  };
  for (auto& k : keys)
    recompute(self, k, one_done);
  one_done();
}

/// Recomputes `user`'s rows: the conversation side's cached ones first,
/// then the user side's from the log (each written unless the stored one
/// is newer: a live event's row, which then counts from the recomputed
/// cache, wins; so nothing is lost or counted twice).
void rebuild_user(self_ptr self, user_id user, bool all, done_fn done) {
  recompute_cached(self, user, [self, user, all, done] {
    store::list_inbox_async(
      reads(self), user, all,
      [self, user, done](caf::expected<store::listed_inbox> l) {
        if (!l) {
          done(l.error());
          return;
        }
        auto n = uint64_t{l->stale.size()};
        accept(self, rows_of(user, l->stale), true,
               [done, n](caf::expected<uint64_t> w) {
                 if (!w)
                   done(w.error());
                 else
                   done(n);
               });
      });
  });
}

/// Reconciles what this node owns, one step at a time: per partition
/// (those of this node: asked of the directory), its users' rows (user
/// side), then the rows of its conversations' members (conversation side,
/// sent to their owners).
struct sweep {
  bool all = false;
  done_fn done;
  uint32_t partition = 0;
  std::vector<user_id> users;
  std::vector<std::pair<conversation_id, user_id>> members;
  size_t next = 0; ///< into users, then members
  uint64_t count = 0;
  int tries = 0; ///< of the current step
};

constexpr int max_tries = 100;

void next_partition(self_ptr self, std::shared_ptr<sweep> s);

void next_item(self_ptr self, std::shared_ptr<sweep> s);

/// A step that failed: taken again at the next retry (true), unless it
/// failed for good or too often (false: the sweep goes on without it).
bool again(self_ptr self, std::shared_ptr<sweep> s, const caf::error& err,
           std::function<void()> step) {
  if (!worth_retrying(err) || ++s->tries > max_tries) {
    s->tries = 0;
    return false;
  }
  self->state.deferred.push_back(std::move(step));
  queue_retry(self);
  return true;
}

void next_item(self_ptr self, std::shared_ptr<sweep> s) {
  if (s->next < s->users.size()) {
    auto user = s->users[s->next++];
    rebuild_user(self, user, s->all,
                 [self, s, user](caf::expected<uint64_t> n) {
                   if (n) {
                     s->count += *n;
                     s->tries = 0;
                   } else if (again(self, s, n.error(),
                                    [self, s] { next_item(self, s); })) {
                     --s->next; // this user again, at the next retry
                     return;
                   } else {
                     spdlog::warn("inbox not reconciled user={} error=\"{}\"",
                                  user, to_string(n.error()));
                   }
                   next_item(self, s);
                 });
    return;
  }
  auto m = s->next - s->users.size();
  if (m < s->members.size()) {
    ++s->next;
    auto [conv, user] = s->members[m];
    ++s->count;
    recompute(self, {user, conv}, [self, s] { next_item(self, s); });
    return;
  }
  ++s->partition;
  next_partition(self, s);
}

void next_partition(self_ptr self, std::shared_ptr<sweep> s) {
  auto& st = self->state;
  for (; s->partition < st.partitions; ++s->partition) {
    auto users = store::users_in_partition(*st.kv, s->partition,
                                           st.partitions);
    auto members = store::members_in_partition(*st.kv, s->partition,
                                               st.partitions);
    if (!users || !members) {
      s->done(!users ? users.error() : members.error());
      return;
    }
    if (users->empty() && members->empty())
      continue;
    s->users = std::move(*users);
    s->members = std::move(*members);
    s->next = 0;
    if (!st.router) {
      next_item(self, s);
      return;
    }
    // Only partitions this node owns (another's data here is a copy).
    auto key = s->users.empty()
                 ? placement_key::conversation(s->members.front().first)
                 : placement_key::user(s->users.front());
    self->request(st.router, timeouts::ask, caf::get_atom::value, key)
      .then(
        [self, s](const route& r) {
          s->tries = 0;
          if (r.local) {
            next_item(self, s);
            return;
          }
          ++s->partition;
          next_partition(self, s);
        },
        [self, s](caf::error& err) {
          if (again(self, s, err, [self, s] { next_partition(self, s); }))
            return; // this partition again, at the next retry
          spdlog::warn("inbox not reconciled partition={} error=\"{}\"",
                       s->partition, to_string(err));
          ++s->partition;
          next_partition(self, s);
        });
    return;
  }
  s->done(s->count);
}

} // namespace

caf::result<std::vector<inbox_entry>> answer(self_ptr self,
                                             const inbox_query& q) {
  switch (q.kind) {
    case inbox_query_list:
      return list(self, q.user);
    case inbox_query_flags:
      return flags(self, q);
    default:
      return caf::make_error(errc::bad_request, "unknown inbox query");
  }
}

void rebuild(self_ptr self, user_id user, bool all, done_fn done) {
  if (user != 0) {
    rebuild_user(self, user, all, std::move(done));
    return;
  }
  auto s = std::make_shared<sweep>();
  s->all = all;
  s->done = std::move(done);
  next_partition(self, s);
}

} // namespace parley::inbox_detail
