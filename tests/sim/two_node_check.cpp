// The two-node swarm's invariants (two_node_world.hpp): the one-node
// swarm's over both stores, the link's, and the unread counts members are
// shown against a recount from the log.

#include "two_node_world.hpp"

#include <algorithm>

#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"

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
      // What the user is shown (a stale projection row is computed from
      // the log for the answer), against a recount from the log.
      std::vector<inbox_entry> stale;
      auto shown = store::list_inbox(disk, user, {conv}, &stale);
      auto fresh = store::compute_inbox_entry(disk, user, conv);
      if (!shown || !fresh)
        return "cannot read the inbox of user " + std::to_string(user);
      two_node_grand_totals().stale_inbox_rows += stale.size();
      uint64_t recount = 0;
      for (auto& m : *msgs)
        if (m.seq > fresh->read && m.sender_user != user)
          ++recount;
      auto where = "user " + std::to_string(user) + " in conversation "
                   + std::to_string(conv) + ": ";
      auto e = std::find_if(shown->begin(), shown->end(),
                            [conv](auto& x) { return x.conversation == conv; });
      if (e == shown->end()) {
        if (!msgs->empty())
          return where + "no inbox entry for " + std::to_string(msgs->size())
                 + " messages";
        continue;
      }
      if (e->unread != recount || e->head != msgs->size())
        return where + "inbox shows head " + std::to_string(e->head)
               + " read " + std::to_string(e->read) + " unread "
               + std::to_string(e->unread) + "; the log: head "
               + std::to_string(msgs->size()) + ", read cursor "
               + std::to_string(fresh->read) + ", "
               + std::to_string(recount) + " from others after it";
    }
  }
  return {};
}

} // namespace parley::sim
