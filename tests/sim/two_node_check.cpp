// The two-node swarm's invariants (two_node_world.hpp): the one-node
// swarm's over both stores, the link's, and the unread counts members are
// shown against a recount from the log.

#include "two_node_world.hpp"

#include <algorithm>

#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/sync_reads.hpp"

namespace parley::sim {

std::string two_node_world::check() const {
  if (net_ && !net_->violations.empty())
    return "link: " + net_->violations.front();
  std::set<std::string> expected;
  for (int c = 0; c < k.clients; ++c)
    for (int i = 0; i < k.messages; ++i)
      expected.insert("c" + std::to_string(c) + "-m" + std::to_string(i));
  std::map<conversation_id, kv_backend*> disks;
  for (auto conv : convs)
    disks[conv] = at(owner_of(conv)).disk.get();
  if (auto why = check_send_log(expected, disks, outcomes, fresh_answers,
                                deliveries);
      !why.empty())
    return why;
  if (auto why = check_unread(); !why.empty())
    return why;
  if (auto why = check_leases(); !why.empty())
    return why;
  return check_syncs();
}

std::string two_node_world::check_syncs() const {
  auto& t = two_node_grand_totals();
  for (auto& [c, s] : syncs) {
    auto conv = convs[c % convs.size()];
    auto user = user_id(100 + c);
    auto where = "user " + std::to_string(user) + "'s sync through node "
                 + std::to_string(homes[c]) + ": ";
    // Every user's sync is checked: the membership index ('y') is written
    // on the user's partition owner from the conversation's membership
    // events (runtime/core/membership_events.hpp), also when the user and
    // the conversation are placed on different nodes.
    auto user_node = map.owner(
      partition_of(placement_key::user(user), map.partitions()));
    if (!s.error.empty())
      return where + s.error;
    if (!s.done)
      return where + "never finished";
    ++t.synced_devices;
    if (user_node != owner_of(conv))
      ++t.synced_apart;
    if (homes[c] != user_node)
      ++t.synced_across;
    auto& disk = *at(owner_of(conv)).disk;
    auto log = store::fetch_messages(disk, conv, 0, 1u << 30);
    if (!log)
      return where + "cannot read the log";
    std::vector<sequence> got;
    for (auto& m : s.messages)
      if (m.conversation == conv)
        got.push_back(m.seq);
    if (got.size() != log->size())
      return where + std::to_string(got.size()) + " messages of conversation "
             + std::to_string(conv) + ", the log has "
             + std::to_string(log->size());
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != (*log)[i].seq)
        return where + "message " + std::to_string(i) + " is seq "
               + std::to_string(got[i]) + ", the log's is "
               + std::to_string((*log)[i].seq);
  }
  return {};
}

std::string two_node_world::check_unread() const {
  for (auto conv : convs) {
    auto& disk = *at(owner_of(conv)).disk;
    auto msgs = store::fetch_messages(disk, conv, 0, 1u << 30);
    if (!msgs)
      return "cannot read conversation " + std::to_string(conv);
    for (int c = 0; c < k.clients; ++c) {
      if (convs[c % convs.size()] != conv)
        continue;
      auto user = user_id(100 + c);
      auto where = "user " + std::to_string(user) + " in conversation "
                   + std::to_string(conv) + ": ";
      // The row as the user's partition owner stores it (issue 21: rows
      // live with the user), against the log on the conversation's owner:
      // the member's window from the conversation's member record, the
      // read cursor, and a recount of others' messages after it.
      auto user_node = map.owner(
        partition_of(placement_key::user(user), map.partitions()));
      auto row = store::load_inbox_entry(*at(user_node).disk, user, conv);
      conv_query q;
      q.conv = conv;
      q.kind = conv_read_member_probe;
      q.user = user;
      conv_reads r;
      r.queries.push_back(q);
      auto fresh = store::answer_conv_reads(disk, r, 50);
      if (!row || !fresh || fresh->answers.size() != 1)
        return where + "cannot read the row or the log";
      auto& e = fresh->answers.front().entry;
      // Others' messages after the read cursor, within the membership.
      auto snap = store::load_conversation(disk, conv);
      if (!snap)
        return where + "cannot load the conversation";
      sequence joined = 1;
      for (auto& m : snap->members)
        if (m.user == user)
          joined = std::max<sequence>(m.joined_at_sequence, 1);
      uint64_t recount = 0;
      for (auto& m : *msgs)
        if (m.seq > e.read && m.seq >= joined && m.sender_user != user)
          ++recount;
      // What the user is shown: the row, or (a row that disagrees with
      // the log: behind after a lost event) the log's view, as the listing
      // recounts it.
      bool stale = !*row || (*row)->head != e.head || (*row)->read != e.read
                   || (*row)->unread != e.unread
                   || (*row)->latest_sender != e.latest_sender
                   || (*row)->latest_at_ms != e.latest_at_ms;
      if (stale && (*row || !msgs->empty())) {
        ++two_node_grand_totals().stale_inbox_rows;
        // No row stays behind after heal: every event reaches the row's
        // owner (sent until acked, recomputed after a gap, reconciled when
        // a node boots), and a conversation that crashed between a
        // receipt's commit and its emission tells the projection its
        // committed read cursors when it loads again.
        return where + "an inbox row behind the log after heal: head "
                 + std::to_string(*row ? (*row)->head : 0) + " read "
                 + std::to_string(*row ? (*row)->read : 0) + " unread "
                 + std::to_string(*row ? (*row)->unread : 0) + "; the log: "
                 + std::to_string(e.head) + "/" + std::to_string(e.read)
                 + "/" + std::to_string(e.unread);
      }
      auto& x = stale ? e : **row;
      if (msgs->empty())
        continue;
      if (x.unread != recount || x.head != msgs->size())
        return where + "inbox shows head " + std::to_string(x.head)
               + " read " + std::to_string(x.read) + " unread "
               + std::to_string(x.unread) + "; the log: head "
               + std::to_string(msgs->size()) + ", read cursor "
               + std::to_string(e.read) + ", " + std::to_string(recount)
               + " from others after it";
    }
  }
  return {};
}

} // namespace parley::sim
