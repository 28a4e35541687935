#include "runtime/store/inbox_reads.hpp"

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/inbox_store.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/records.hpp"
#include "runtime/store/sync_reads.hpp"

namespace parley::store {

namespace {

namespace pb = parley::store::v1;

using probes = std::map<conversation_id, conv_answer>;
using rows = std::map<conversation_id, std::pair<bool, inbox_entry>>;
using memberships = std::vector<std::pair<conversation_id, member>>;

/// Asks each conversation's partition for the probes of `qs` (one request
/// per partition, all sent before any answer); answers by conversation.
void probe_all(const async_reads& reads, std::vector<conv_query> qs,
               then_fn<probes> done) {
  std::map<uint32_t, conv_reads> by;
  for (auto& q : qs) {
    auto p = partition_of(placement_key::conversation(q.conv),
                          reads.partitions);
    by[p].partition = p;
    by[p].queries.push_back(std::move(q));
  }
  if (by.empty()) {
    done(probes{});
    return;
  }
  struct join {
    size_t left = 0;
    probes out;
    caf::error err;
    then_fn<probes> done;
  };
  auto j = std::make_shared<join>();
  j->left = by.size();
  j->done = std::move(done);
  for (auto& [p, r] : by)
    reads.convs(std::move(r), [j](caf::expected<conv_answers> a) {
      if (!a && !j->err)
        j->err = a.error();
      else if (a)
        for (auto& x : a->answers)
          j->out[x.conv] = std::move(x);
      if (--j->left == 0) {
        if (j->err)
          j->done(j->err);
        else
          j->done(std::move(j->out));
      }
    });
}

/// The user's rows of `convs`: (stored?, entry with flags) by conversation.
void rows_of(const async_reads& reads, user_id user,
             std::vector<conversation_id> convs, then_fn<rows> done) {
  user_reads r;
  r.partition = partition_of(placement_key::user(user), reads.partitions);
  r.kind = user_read_inbox;
  r.user = user;
  r.convs = std::move(convs);
  reads.users(std::move(r), [done](caf::expected<user_answers> a) {
    if (!a) {
      done(a.error());
      return;
    }
    std::set<conversation_id> stored(a->stored.begin(), a->stored.end());
    rows out;
    for (auto& e : a->entries)
      out[e.conversation] = {stored.count(e.conversation) > 0, e};
    done(std::move(out));
  });
}

void memberships_of(const async_reads& reads, user_id user,
                    then_fn<memberships> done) {
  user_reads r;
  r.partition = partition_of(placement_key::user(user), reads.partitions);
  r.kind = user_read_memberships;
  r.user = user;
  reads.users(std::move(r), [done](caf::expected<user_answers> a) {
    if (!a) {
      done(a.error());
      return;
    }
    memberships out;
    for (size_t i = 0; i < a->convs.size() && i < a->members.size(); ++i)
      out.emplace_back(a->convs[i], a->members[i]);
    done(std::move(out));
  });
}

conv_query probe_query(user_id user, conversation_id conv, const member& m,
                       const std::pair<bool, inbox_entry>& row) {
  conv_query q;
  q.conv = conv;
  q.kind = conv_read_probe;
  q.user = user;
  q.joined_at = m.joined_at_sequence;
  q.left_at = m.left_at_sequence;
  q.stored = row.first;
  q.entry = row.second;
  q.entry.conversation = conv;
  return q;
}

/// Runs an asynchronous read whose continuations `reads` calls at once;
/// returns its result.
template <class T, class F>
caf::expected<T> at_once(F&& start) {
  caf::expected<T> out{caf::make_error(errc::unavailable, "not answered")};
  start([&out](caf::expected<T> x) { out = std::move(x); });
  return out;
}

} // namespace

partition_reads partition_reads::local(kv_backend& kv, uint32_t partitions,
                                       uint64_t recent) {
  partition_reads r;
  r.partitions = partitions;
  r.convs = [&kv, recent](const conv_reads& x) {
    return answer_conv_reads(kv, x, recent);
  };
  r.users = [&kv](const user_reads& x) { return answer_user_reads(kv, x); };
  return r;
}

async_reads async_reads::of(partition_reads sync) {
  async_reads r;
  r.partitions = sync.partitions;
  r.convs = [f = sync.convs](conv_reads x, then_fn<conv_answers> k) {
    k(f(x));
  };
  r.users = [f = sync.users](user_reads x, then_fn<user_answers> k) {
    k(f(x));
  };
  return r;
}

void list_inbox_async(const async_reads& reads, user_id user, bool recount,
                      then_fn<listed_inbox> done) {
  memberships_of(reads, user, [=](caf::expected<memberships> convs) {
    if (!convs) {
      done(convs.error());
      return;
    }
    std::vector<conversation_id> ids;
    for (auto& c : *convs)
      ids.push_back(c.first);
    rows_of(reads, user, ids, [=](caf::expected<rows> rs) {
      if (!rs) {
        done(rs.error());
        return;
      }
      std::vector<conv_query> qs;
      for (auto& [conv, m] : *convs) {
        qs.push_back(probe_query(user, conv, m, (*rs)[conv]));
        if (recount)
          qs.back().stored = false; // counted from the log
      }
      probe_all(reads, std::move(qs), [=](caf::expected<probes> ps) {
        if (!ps) {
          done(ps.error());
          return;
        }
        listed_inbox out;
        for (auto conv : ids) {
          auto& a = (*ps)[conv];
          if (a.stale)
            out.stale.push_back(a.entry);
          out.entries.push_back(a.entry);
        }
        sort_inbox(out.entries);
        done(std::move(out));
      });
    });
  });
}

void compute_inbox_entry_async(const async_reads& reads, user_id user,
                               conversation_id conv,
                               then_fn<inbox_entry> done) {
  memberships_of(reads, user, [=](caf::expected<memberships> convs) {
    if (!convs) {
      done(convs.error());
      return;
    }
    std::optional<member> m;
    for (auto& c : *convs)
      if (c.first == conv)
        m = c.second;
    if (!m) {
      done(caf::make_error(errc::forbidden, "not a member"));
      return;
    }
    rows_of(reads, user, {conv}, [=](caf::expected<rows> rs) {
      if (!rs) {
        done(rs.error());
        return;
      }
      auto row = (*rs)[conv];
      row.first = false; // not compared: counted from the log
      probe_all(reads, {probe_query(user, conv, *m, row)},
                [=](caf::expected<probes> ps) {
                  if (!ps)
                    done(ps.error());
                  else
                    done((*ps)[conv].entry);
                });
    });
  });
}

caf::error member_probe(kv_backend& kv, const conv_query& q, uint64_t recent,
                        conv_answer& a) {
  auto rec = read_record<pb::MemberRecord>(kv, keys::member(q.conv, q.user));
  if (!rec)
    return rec.error();
  if (!*rec)
    return caf::make_error(errc::forbidden, "not a member");
  conv_reads r;
  r.partition = 0; // not checked here
  conv_query p = q;
  p.kind = conv_read_probe;
  p.joined_at = (*rec)->joined_at_sequence();
  p.left_at = (*rec)->left_at_sequence();
  p.stored = false;
  r.queries.push_back(std::move(p));
  auto ans = answer_conv_reads(kv, r, recent);
  if (!ans)
    return ans.error();
  if (ans->answers.empty())
    return caf::make_error(errc::storage_corrupt, "probe not answered");
  a = std::move(ans->answers.front());
  return {};
}

namespace {

/// Visits the keys of table `tag` in the slots of partition `p`: one
/// skip scan (layout.hpp's scan_table seeks only to slots that hold keys),
/// not a seek per slot: a partition has 65536 / P slots, most of them
/// empty, and a LevelDB iterator per slot cost ~3,000 instructions each
/// (the reconciler's start-up scan of 64 partitions took 28 % of an
/// accept bench's instructions).
caf::error scan_partition_table(kv_backend& kv, uint32_t p,
                                uint32_t partitions, char tag,
                                const kv_backend::visitor& f) {
  if (partitions == 0 || p >= partitions)
    return caf::make_error(errc::bad_request, "no such partition");
  auto span = slot_range(p, partitions);
  if (span.first >= span.end)
    return {};
  return scan_table(kv, tag, keys::table_start(span.first, tag),
                    [&](std::string_view k, std::string_view v) {
                      auto slot = keys::slot_of_key(k);
                      if (!slot || *slot >= span.end)
                        return false;
                      return f(k, v);
                    });
}

} // namespace

caf::expected<std::vector<user_id>>
users_in_partition(kv_backend& kv, uint32_t p, uint32_t partitions) {
  std::vector<user_id> out;
  // A user's 'y' keys share the user's slot, so they come together.
  auto err = scan_partition_table(
    kv, p, partitions, keys::memberships_tag,
    [&](std::string_view k, std::string_view) {
      auto ids = keys::decode_membership(k);
      if (ids && (out.empty() || out.back() != ids->first))
        out.push_back(ids->first);
      return true;
    });
  if (err)
    return err;
  return out;
}

caf::expected<std::vector<std::pair<conversation_id, user_id>>>
members_in_partition(kv_backend& kv, uint32_t p, uint32_t partitions) {
  std::vector<std::pair<conversation_id, user_id>> out;
  auto err = scan_partition_table(kv, p, partitions, keys::members_tag,
                                  [&](std::string_view k, std::string_view) {
                                    if (auto ids = keys::decode_member(k))
                                      out.push_back(*ids);
                                    return true;
                                  });
  if (err)
    return err;
  return out;
}

caf::expected<std::vector<inbox_entry>>
list_inbox_by_id(const partition_reads& reads, user_id user,
                 std::vector<inbox_entry>* stale, bool recount) {
  auto r = at_once<listed_inbox>([&](then_fn<listed_inbox> k) {
    list_inbox_async(async_reads::of(reads), user, recount, std::move(k));
  });
  if (!r)
    return r.error();
  if (stale)
    stale->insert(stale->end(), r->stale.begin(), r->stale.end());
  return std::move(r->entries);
}

caf::expected<inbox_entry>
compute_inbox_entry_by_id(const partition_reads& reads, user_id user,
                          conversation_id conv) {
  return at_once<inbox_entry>([&](then_fn<inbox_entry> k) {
    compute_inbox_entry_async(async_reads::of(reads), user, conv,
                              std::move(k));
  });
}

} // namespace parley::store
