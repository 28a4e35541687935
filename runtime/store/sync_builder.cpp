// The phases of one sync page (sync_builder.hpp): inbox, receipts,
// messages, each resuming at the position a continuation holds.

#include "runtime/store/sync_builder.hpp"

#include <algorithm>
#include <map>
#include <string>

#include "runtime/core/errors.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/records.hpp"
#include "runtime/store/store_detail.hpp"

namespace parley::store {

namespace {

namespace pb = parley::store::v1;

/// Whether `user` shares read receipts (cached in `cache`).
caf::expected<bool> shares_reads(kv_backend& kv, user_id user,
                                 std::map<user_id, bool>& cache) {
  if (auto i = cache.find(user); i != cache.end())
    return i->second;
  // The user's account record ('a', key layout 3), in the user's partition.
  auto acct = read_record<pb::AccountRecord>(kv, keys::user_account(user));
  if (!acct)
    return acct.error();
  bool shares = !*acct || !(*acct)->read_receipts_off();
  cache[user] = shares;
  return shares;
}

} // namespace

caf::expected<membership_list> memberships(kv_backend& kv, user_id user) {
  membership_list convs;
  caf::error err;
  auto scan_err = kv.scan(
    keys::membership(user, 0),
    keys::prefix_end(keys::user_records(keys::memberships_tag, user)),
    [&](std::string_view k, std::string_view v) {
      auto ids = keys::decode_membership(k);
      auto conv = ids ? std::optional<conversation_id>{ids->second}
                      : std::nullopt;
      pb::MemberRecord rec;
      if (!conv || !rec.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
        err = caf::make_error(errc::storage_corrupt, "bad membership record");
        return false;
      }
      convs.emplace_back(*conv, member{user, static_cast<int32_t>(rec.role()),
                                       rec.joined_at_sequence(),
                                       rec.left_at_sequence()});
      return true;
    });
  if (scan_err)
    return scan_err;
  if (err)
    return err;
  return convs;
}

sync_position page_builder::at(
  sync_phase phase, bool started, conversation_id conv, sequence after,
  std::vector<std::pair<conversation_id, sequence>> cursors) const {
  sync_position p;
  p.phase = phase;
  p.started = started;
  p.cursors_only = pos.cursors_only;
  p.page_size = pos.page_size;
  p.conv = conv;
  p.after = after;
  p.cursors = std::move(cursors);
  return p;
}

void page_builder::stop(const sync_position& next) {
  page.continuation = encode_continuation(next);
  full = true;
}

caf::expected<sequence> page_builder::head(conversation_id conv) {
  if (auto i = heads.find(conv); i != heads.end())
    return i->second;
  auto h = head_of(kv, conv);
  if (h)
    heads.emplace(conv, *h);
  return h;
}

const sequence* page_builder::cursor_of(conversation_id conv) const {
  auto i = std::lower_bound(pos.cursors.begin(), pos.cursors.end(),
                            std::make_pair(conv, sequence{0}));
  return i != pos.cursors.end() && i->first == conv ? &i->second : nullptr;
}

caf::error page_builder::inbox() {
  // Conversation-id order from page to page (a stable key: each
  // conversation exactly once, whatever changes meanwhile); each page's
  // entries most recent first, as list_inbox orders them.
  std::vector<conversation_id> rest;
  for (auto& c : convs)
    if (!pos.started || c.first > pos.conv)
      rest.push_back(c.first);
  size_t bound = wire_size_bound(inbox_entry{});
  size_t n = std::max<size_t>(1, left() / bound);
  n = std::min(n, rest.size());
  std::vector<conversation_id> ids(rest.begin(), rest.begin() + n);
  if (req.continuation.empty()) {
    // The first page sums the unread counts of the whole inbox.
    std::vector<conversation_id> all;
    for (auto& c : convs)
      all.push_back(c.first);
    auto entries = list_inbox(kv, user, all);
    if (!entries)
      return entries.error();
    for (auto& e : *entries) {
      page.total_unread += e.unread;
      if (std::binary_search(ids.begin(), ids.end(), e.conversation))
        page.inbox.push_back(e);
    }
  } else {
    auto entries = list_inbox(kv, user, ids);
    if (!entries)
      return entries.error();
    page.inbox = std::move(*entries);
  }
  for (size_t i = 0; i < page.inbox.size(); ++i)
    take(bound);
  if (n < rest.size()) {
    stop(at(sync_phase::inbox, true, ids.back(), 0, pos.cursors));
    return {};
  }
  pos = at(sync_phase::receipts, false, 0, 0, pos.cursors);
  return {};
}

caf::error page_builder::receipts() {
  // Groups show their senders aggregates, pushed live; other members'
  // cursors there are not listed (a large group has thousands).
  std::map<user_id, bool> sharing; // users' read-receipt settings
  auto done = at(sync_phase::receipts, pos.started, pos.conv, 0, pos.cursors);
  for (auto& [conv, m] : convs) {
    if ((pos.started && conv <= pos.conv) || !is_direct(conv))
      continue;
    std::vector<receipt_cursor> rcs;
    if (auto e = read_receipts(kv, conv, rcs))
      return e;
    std::vector<receipt_event> evs;
    for (auto& rc : rcs) {
      if (rc.user == user)
        continue;
      if (rc.kind == keys::receipt_read) {
        // Read state is shown only if the reader shares it, and in 1:1
        // only to users who share their own.
        if (!req.read_receipts)
          continue;
        auto shares = shares_reads(kv, rc.user, sharing);
        if (!shares)
          return shares.error();
        if (!*shares)
          continue;
      }
      evs.push_back(receipt_event{conv, rc.user, rc.kind, rc.seq, 0, true});
    }
    size_t need = 0;
    for (auto& ev : evs)
      need += wire_size_bound(ev);
    if (!evs.empty() && !fits(need)) {
      stop(done);
      return {};
    }
    if (!evs.empty())
      take(need);
    for (auto& ev : evs)
      page.receipts.push_back(ev);
    done.started = true;
    done.conv = conv;
  }
  pos = at(sync_phase::messages, false, 0, 0, pos.cursors);
  return {};
}

caf::error page_builder::messages() {
  uint64_t budget = pos.page_size;
  // Resumes in `conv` after `after`; the cursors of later ones go along.
  auto stop_in = [this](conversation_id conv, sequence after) {
    std::vector<std::pair<conversation_id, sequence>> later;
    for (auto& c : pos.cursors)
      if (c.first > conv)
        later.push_back(c);
    stop(at(sync_phase::messages, true, conv, after, std::move(later)));
  };
  for (auto& [conv, m] : convs) {
    if (pos.started && conv < pos.conv)
      continue;
    bool resumed = pos.started && conv == pos.conv;
    auto cursor = resumed ? nullptr : cursor_of(conv);
    if (pos.cursors_only && !resumed && !cursor)
      continue;
    auto head = this->head(conv);
    if (!head)
      return head.error();
    // The member sees [joined_at, left_at) only.
    sequence first = m.joined_at_sequence ? m.joined_at_sequence : 1;
    sequence last = m.left_at_sequence ? m.left_at_sequence - 1 : *head;
    last = std::min(last, *head);
    sequence after;
    if (resumed) {
      after = pos.after;
    } else if (cursor) {
      // store::sync checked every cursor on the first page; heads only
      // grow, so this holds, but a position is re-checked all the same.
      if (*cursor > *head)
        return caf::make_error(errc::cursor_ahead,
                               "cursor past head in conversation "
                                 + std::to_string(conv));
      after = *cursor;
    } else {
      after = last > recent ? last - recent : 0;
    }
    after = std::max(after, first - 1);
    while (after < last) {
      if (budget == 0) {
        stop_in(conv, after);
        return {};
      }
      // Reads as many as the room left holds at the size of the largest
      // message so far on this page: a page of large payloads reads few.
      // Before the first, a message may be as large as the whole room.
      uint64_t chunk = largest ? std::clamp<uint64_t>(left() / largest, 1, 64)
                               : 1;
      auto msgs = fetch_messages(kv, conv, after,
                                 std::min<uint64_t>({budget, last - after,
                                                     chunk}));
      if (!msgs)
        return msgs.error();
      if (msgs->empty())
        break;
      for (auto& msg : *msgs) {
        auto need = wire_size_bound(msg);
        if (!fits(need)) {
          stop_in(conv, after);
          return {};
        }
        take(need);
        largest = std::max(largest, need);
        after = msg.seq;
        page.messages.push_back(std::move(msg));
        --budget;
      }
    }
  }
  return {};
}

} // namespace parley::store
