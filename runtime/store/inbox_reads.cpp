#include "runtime/store/inbox_reads.hpp"

#include <map>
#include <set>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/sync_reads.hpp"

namespace parley::store {

namespace {

/// Asks each conversation's partition for the probes of `qs` (one request
/// per partition); answers by conversation.
caf::expected<std::map<conversation_id, conv_answer>>
probe_all(const partition_reads& reads, std::vector<conv_query> qs) {
  std::map<uint32_t, conv_reads> by;
  for (auto& q : qs) {
    auto p = partition_of(placement_key::conversation(q.conv),
                          reads.partitions);
    by[p].partition = p;
    by[p].queries.push_back(std::move(q));
  }
  std::map<conversation_id, conv_answer> out;
  for (auto& [p, r] : by) {
    auto a = reads.convs(r);
    if (!a)
      return a.error();
    for (auto& x : a->answers)
      out[x.conv] = std::move(x);
  }
  return out;
}

/// The user's rows of `convs`: (stored?, entry with flags) by conversation.
caf::expected<std::map<conversation_id, std::pair<bool, inbox_entry>>>
rows_of(const partition_reads& reads, user_id user,
        std::vector<conversation_id> convs) {
  user_reads r;
  r.partition = partition_of(placement_key::user(user), reads.partitions);
  r.kind = user_read_inbox;
  r.user = user;
  r.convs = std::move(convs);
  auto a = reads.users(r);
  if (!a)
    return a.error();
  std::set<conversation_id> stored(a->stored.begin(), a->stored.end());
  std::map<conversation_id, std::pair<bool, inbox_entry>> out;
  for (auto& e : a->entries)
    out[e.conversation] = {stored.count(e.conversation) > 0, e};
  return out;
}

caf::expected<std::vector<std::pair<conversation_id, member>>>
memberships_of(const partition_reads& reads, user_id user) {
  user_reads r;
  r.partition = partition_of(placement_key::user(user), reads.partitions);
  r.kind = user_read_memberships;
  r.user = user;
  auto a = reads.users(r);
  if (!a)
    return a.error();
  std::vector<std::pair<conversation_id, member>> out;
  for (size_t i = 0; i < a->convs.size() && i < a->members.size(); ++i)
    out.emplace_back(a->convs[i], a->members[i]);
  return out;
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

caf::expected<std::vector<inbox_entry>>
list_inbox_by_id(const partition_reads& reads, user_id user,
                 std::vector<inbox_entry>* stale, bool recount) {
  auto convs = memberships_of(reads, user);
  if (!convs)
    return convs.error();
  std::vector<conversation_id> ids;
  for (auto& c : *convs)
    ids.push_back(c.first);
  auto rows = rows_of(reads, user, ids);
  if (!rows)
    return rows.error();
  std::vector<conv_query> qs;
  for (auto& [conv, m] : *convs) {
    qs.push_back(probe_query(user, conv, m, (*rows)[conv]));
    if (recount)
      qs.back().stored = false; // counted from the log
  }
  auto probes = probe_all(reads, std::move(qs));
  if (!probes)
    return probes.error();
  std::vector<inbox_entry> out;
  for (auto conv : ids) {
    auto& a = (*probes)[conv];
    if (a.stale && stale)
      stale->push_back(a.entry);
    out.push_back(a.entry);
  }
  sort_inbox(out);
  return out;
}

caf::expected<inbox_entry>
compute_inbox_entry_by_id(const partition_reads& reads, user_id user,
                          conversation_id conv) {
  auto convs = memberships_of(reads, user);
  if (!convs)
    return convs.error();
  const member* m = nullptr;
  for (auto& c : *convs)
    if (c.first == conv)
      m = &c.second;
  if (!m)
    return caf::make_error(errc::forbidden, "not a member");
  auto rows = rows_of(reads, user, {conv});
  if (!rows)
    return rows.error();
  auto row = (*rows)[conv];
  row.first = false; // not compared: counted from the log
  auto probes = probe_all(reads, {probe_query(user, conv, *m, row)});
  if (!probes)
    return probes.error();
  return (*probes)[conv].entry;
}

} // namespace parley::store
