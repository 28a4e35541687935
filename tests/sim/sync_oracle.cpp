// The model of a complete sync (sync_oracle.hpp) and the checks of a
// sync's pages against it.

#include "sync_oracle.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "runtime/core/errors.hpp"
#include "runtime/store/sync_paging.hpp"

namespace parley::sim {

namespace {

/// What the whole sync must list, from the seed's data.
struct model {
  std::vector<inbox_entry> inbox; ///< in conversation-id order
  /// The unread counts of stored rows that are current (they may stand
  /// for the count from the log, which `inbox` holds).
  std::map<conversation_id, uint64_t> row_unread;
  std::vector<receipt_event> receipts; ///< by conversation, then user, kind
  std::vector<stored_message> messages;
  std::set<uint8_t> errors; ///< the codes a bad request may fail with
};

sequence first_of(const member& m) {
  return m.joined_at_sequence ? m.joined_at_sequence : 1;
}

/// The last sequence the member may see (below first_of: none).
sequence last_of(const member& m, sequence head) {
  return m.left_at_sequence ? std::min(head, m.left_at_sequence - 1) : head;
}

inbox_entry entry_of(const sync_data& d, user_id user, conversation_id c,
                     const member& m, model& out) {
  static const std::vector<stored_message> none;
  auto it = d.log.find(c);
  auto& log = it != d.log.end() ? it->second : none;
  inbox_entry e;
  e.conversation = c;
  auto first = first_of(m);
  auto last = last_of(m, d.heads.at(c));
  if (last >= first) {
    e.head = last;
    e.latest_sender = log[last - 1].sender_user;
    e.latest_at_ms = log[last - 1].sent_at_ms;
  }
  if (auto rs = d.receipts.find(c); rs != d.receipts.end())
    for (auto& rc : rs->second)
      if (rc.user == user && rc.kind == 2)
        e.read = rc.seq;
  if (auto f = d.flags.find({user, c}); f != d.flags.end()) {
    e.archived = f->second.archived;
    e.pinned = f->second.pinned;
    e.muted = f->second.muted;
  }
  auto row = d.stored_rows.find({user, c});
  if (row != d.stored_rows.end() && row->second.head == e.head
      && row->second.read == e.read
      && row->second.latest_sender == e.latest_sender
      && row->second.latest_at_ms == e.latest_at_ms)
    out.row_unread[c] = row->second.unread;
  for (auto s = std::max(e.read, first - 1) + 1; s <= e.head; ++s)
    e.unread += log[s - 1].sender_user != user;
  return e;
}

model model_of(const sync_data& d, user_id user, const sync_request& req,
               uint64_t recent) {
  model out;
  std::map<conversation_id, sequence> cursors;
  for (size_t i = 0; i < req.cursor_conversations.size(); ++i)
    cursors[req.cursor_conversations[i]] = req.cursor_sequences[i];
  std::map<conversation_id, member> mine;
  for (auto& [c, ms] : d.convs)
    for (auto& m : ms)
      if (m.user == user)
        mine[c] = m;
  for (auto& [c, after] : cursors) {
    if (!mine.count(c))
      out.errors.insert(static_cast<uint8_t>(errc::forbidden));
    else if (after > d.heads.at(c))
      out.errors.insert(static_cast<uint8_t>(errc::cursor_ahead));
  }
  for (auto& [c, m] : mine) {
    if (!req.cursors_only) {
      out.inbox.push_back(entry_of(d, user, c, m, out));
      if (is_direct(c) && d.receipts.count(c))
        for (auto& rc : d.receipts.at(c))
          if (rc.user != user
              && (rc.kind == 1
                  || (req.read_receipts && !d.reads_off.count(rc.user))))
            out.receipts.push_back(
              receipt_event{c, rc.user, rc.kind, rc.seq, 0, true});
    }
    auto cursor = cursors.find(c);
    if (req.cursors_only && cursor == cursors.end())
      continue;
    auto last = last_of(m, d.heads.at(c));
    sequence after = cursor != cursors.end() ? cursor->second
                     : last > recent         ? last - recent
                                             : 0;
    after = std::max(after, first_of(m) - 1);
    for (auto s = after + 1; s <= last; ++s)
      out.messages.push_back(d.log.at(c)[s - 1]);
  }
  std::stable_sort(out.receipts.begin(), out.receipts.end(),
                   [](auto& a, auto& b) {
                     return std::tie(a.conversation, a.user, a.kind)
                            < std::tie(b.conversation, b.user, b.kind);
                   });
  return out;
}

bool same_receipt(const receipt_event& a, const receipt_event& b) {
  return a.conversation == b.conversation && a.user == b.user
         && a.kind == b.kind && a.seq == b.seq && a.shared == b.shared;
}

bool same_message(const stored_message& a, const stored_message& b) {
  return a.conversation == b.conversation && a.seq == b.seq
         && a.sender_user == b.sender_user
         && a.sender_device == b.sender_device
         && a.client_message_id == b.client_message_id
         && a.sent_at_ms == b.sent_at_ms && a.kind == b.kind
         && a.payload == b.payload && a.reply_to == b.reply_to;
}

/// The checks of one page on its own (`i`-th of `n`).
std::string check_page(const sync_page& p, size_t i, size_t n,
                       const sync_request& req) {
  std::ostringstream os;
  uint32_t page_size = std::clamp<uint32_t>(
    req.page_size ? req.page_size : store::default_sync_page_size, 1,
    store::max_sync_page_size);
  size_t items = p.inbox.size() + p.receipts.size() + p.messages.size();
  if ((i + 1 < n) == p.continuation.empty())
    os << "page " << i << " of " << n << ": continuation "
       << (p.continuation.empty() ? "missing" : "on the last page");
  else if (!p.continuation.empty() && items == 0)
    os << "page " << i << ": no item, and a continuation";
  else if (p.messages.size() > page_size)
    os << "page " << i << ": " << p.messages.size() << " messages, page size "
       << page_size;
  else if (i > 0 && p.total_unread != 0)
    os << "page " << i << ": totalUnread " << p.total_unread;
  if (!os.str().empty())
    return os.str();
  size_t bytes = store::sync_frame_overhead + p.continuation.size();
  for (auto& e : p.inbox)
    bytes += store::wire_size_bound(e);
  for (auto& r : p.receipts)
    bytes += store::wire_size_bound(r);
  for (auto& m : p.messages)
    bytes += store::wire_size_bound(m);
  if (items > 1 && bytes > req.max_frame_bytes)
    os << "page " << i << ": " << bytes << " bytes bound, limit "
       << req.max_frame_bytes;
  for (size_t k = 1; k < p.inbox.size() && os.str().empty(); ++k) {
    auto& a = p.inbox[k - 1];
    auto& b = p.inbox[k];
    if (b.pinned > a.pinned
        || (a.pinned == b.pinned && b.latest_at_ms > a.latest_at_ms))
      os << "page " << i << ": inbox entry " << k << " out of order";
  }
  return os.str();
}

} // namespace

std::string check_sync(const sync_data& data, user_id user,
                       const sync_request& first,
                       const std::vector<sync_outcome>& got,
                       uint64_t recent) {
  auto want = model_of(data, user, first, recent);
  std::ostringstream os;
  if (got.empty())
    return "no outcome";
  if (!want.errors.empty()) {
    if (got.size() != 1 || got[0].page || !want.errors.count(got[0].code))
      os << "a bad request: " << got.size() << " outcomes, the first "
         << (got[0].page ? "a page" : got[0].error);
    return os.str();
  }
  std::vector<inbox_entry> inbox;
  std::vector<receipt_event> receipts;
  std::vector<stored_message> messages;
  std::vector<std::vector<conversation_id>> receipt_pages;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!got[i].page)
      return "page " + std::to_string(i) + " failed: " + got[i].error;
    auto& p = *got[i].page;
    if (auto why = check_page(p, i, got.size(), first); !why.empty())
      return why;
    // Inbox, then receipts, then messages, across pages.
    if (!p.inbox.empty() && (!receipts.empty() || !messages.empty()))
      return "page " + std::to_string(i) + ": inbox after receipts/messages";
    if (!p.receipts.empty() && !messages.empty())
      return "page " + std::to_string(i) + ": receipts after messages";
    // The inbox in id order from page to page.
    auto ids = p.inbox;
    std::sort(ids.begin(), ids.end(), [](auto& a, auto& b) {
      return a.conversation < b.conversation;
    });
    if (!ids.empty() && !inbox.empty()
        && ids.front().conversation <= inbox.back().conversation)
      return "page " + std::to_string(i) + ": inbox not in id order";
    inbox.insert(inbox.end(), ids.begin(), ids.end());
    receipt_pages.emplace_back();
    for (auto& r : p.receipts) {
      receipts.push_back(r);
      receipt_pages.back().push_back(r.conversation);
    }
    messages.insert(messages.end(), p.messages.begin(), p.messages.end());
  }
  // Each entry as written; its unread count from the log, or a current
  // stored row's.
  auto same_entry = [&want](const inbox_entry& a, const inbox_entry& b) {
    auto row = want.row_unread.find(b.conversation);
    bool counted = a.unread == b.unread
                   || (row != want.row_unread.end() && a.unread == row->second);
    auto x = a;
    x.unread = b.unread;
    return counted && x == b;
  };
  uint64_t total = 0;
  for (auto& e : inbox)
    total += e.unread;
  if (!std::equal(inbox.begin(), inbox.end(), want.inbox.begin(),
                  want.inbox.end(), same_entry))
    os << "inbox: " << inbox.size() << " entries, want " << want.inbox.size()
       << " (or an entry differs)";
  else if (got[0].page->total_unread != total)
    os << "totalUnread " << got[0].page->total_unread << ", the entries sum "
       << total;
  if (!os.str().empty())
    return os.str();
  // Receipts: a conversation's together on one page, conversations in id
  // order (within one, any order).
  std::set<conversation_id> paged;
  for (auto& page : receipt_pages) {
    std::set<conversation_id> here(page.begin(), page.end());
    for (auto c : here)
      if (!paged.insert(c).second)
        return "receipts of " + std::to_string(c) + " on two pages";
  }
  auto sorted = receipts;
  std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) {
    return std::tie(a.conversation, a.user, a.kind)
           < std::tie(b.conversation, b.user, b.kind);
  });
  for (size_t k = 1; k < receipts.size(); ++k)
    if (receipts[k].conversation < receipts[k - 1].conversation)
      return "receipts not in conversation order";
  if (!std::equal(sorted.begin(), sorted.end(), want.receipts.begin(),
                  want.receipts.end(), same_receipt))
    return "receipts: " + std::to_string(receipts.size()) + ", want "
           + std::to_string(want.receipts.size()) + " (or one differs)";
  // Messages: every one exactly once, in order, as written.
  for (size_t k = 0; k < std::min(messages.size(), want.messages.size()); ++k)
    if (!same_message(messages[k], want.messages[k])) {
      os << "message " << k << ": " << messages[k].conversation << "/"
         << messages[k].seq << ", want " << want.messages[k].conversation
         << "/" << want.messages[k].seq;
      return os.str();
    }
  if (messages.size() != want.messages.size())
    os << messages.size() << " messages, want " << want.messages.size();
  return os.str();
}

} // namespace parley::sim
