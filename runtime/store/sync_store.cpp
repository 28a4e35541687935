// store::sync (declared in conversation_store.hpp): one page of a device's
// sync, bounded in items (page_size messages) and in encoded bytes (the
// frame limit, see sync_paging.hpp), resumable from its continuation alone.

#include "runtime/store/conversation_store.hpp"

#include <algorithm>
#include <map>

#include "actors/errors.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/store_detail.hpp"
#include "runtime/store/sync_paging.hpp"

namespace parley::store {

namespace {

namespace pb = parley::store::v1;

using membership_list = std::vector<std::pair<conversation_id, member>>;

/// The user's conversations (also those they left), in id order.
caf::expected<membership_list> memberships(kv_backend& kv, user_id user) {
  membership_list convs;
  caf::error err;
  auto scan_err = kv.scan(
    keys::membership(user, 0), keys::membership(user + 1, 0),
    [&](std::string_view k, std::string_view v) {
      auto conv = keys::read_u64(k, 9);
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

/// Whether `user` shares read receipts (cached in `cache`).
caf::expected<bool> shares_reads(kv_backend& kv, user_id user,
                                 std::map<user_id, bool>& cache) {
  if (auto i = cache.find(user); i != cache.end())
    return i->second;
  auto name = kv.get(keys::user_name(user));
  if (!name)
    return name.error();
  bool shares = true;
  if (*name) {
    auto acct = kv.get(keys::account(**name));
    if (!acct)
      return acct.error();
    pb::AccountRecord rec;
    if (*acct
        && !rec.ParseFromArray((*acct)->data(),
                               static_cast<int>((*acct)->size())))
      return caf::make_error(errc::storage_corrupt, "bad account record");
    shares = !rec.read_receipts_off();
  }
  cache[user] = shares;
  return shares;
}

/// One page being built: where it started, what it holds, how much room
/// (in bounded encoded bytes) is left. The first item always goes in: the
/// frame limit is at least one largest item (min_server_frame_bytes).
struct page_builder {
  kv_backend& kv;
  user_id user;
  const sync_request& req;
  uint64_t recent;
  membership_list convs;
  sync_position pos; ///< where this page starts
  size_t room = 0;
  size_t used = 0;
  size_t items = 0;
  sync_page page;
  bool full = false; ///< the page ended early: page.continuation is set

  bool fits(size_t n) const {
    return items == 0 || used + n <= room;
  }

  void take(size_t n) {
    used += n;
    ++items;
  }

  void stop(const sync_position& next) {
    page.continuation = encode_continuation(next);
    full = true;
  }

  const sequence* cursor_of(conversation_id conv) const {
    auto i = std::lower_bound(pos.cursors.begin(), pos.cursors.end(),
                              std::make_pair(conv, sequence{0}));
    return i != pos.cursors.end() && i->first == conv ? &i->second : nullptr;
  }

  caf::error inbox();
  caf::error receipts();
  caf::error messages();
};

caf::error page_builder::inbox() {
  // Conversation-id order from page to page (a stable key: each
  // conversation exactly once, whatever changes meanwhile); each page's
  // entries most recent first, as list_inbox orders them.
  std::vector<conversation_id> rest;
  for (auto& c : convs)
    if (!pos.started || c.first > pos.conv)
      rest.push_back(c.first);
  size_t bound = wire_size_bound(inbox_entry{});
  size_t n = std::max<size_t>(1, room > used ? (room - used) / bound : 0);
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
    stop(sync_position{sync_phase::inbox, true, ids.back(), 0, pos.cursors});
    return {};
  }
  pos = sync_position{sync_phase::receipts, false, 0, 0, pos.cursors};
  return {};
}

caf::error page_builder::receipts() {
  // Groups show their senders aggregates, pushed live; other members'
  // cursors there are not listed (a large group has thousands).
  std::map<user_id, bool> sharing; // users' read-receipt settings
  sync_position done{sync_phase::receipts, pos.started, pos.conv, 0,
                     pos.cursors};
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
  pos = sync_position{sync_phase::messages, false, 0, 0, pos.cursors};
  return {};
}

caf::error page_builder::messages() {
  size_t budget = std::clamp<size_t>(req.page_size ? req.page_size : 100, 1,
                                     1000);
  // Resumes in `conv` after `after`; the cursors of later ones go along.
  auto stop_in = [this](conversation_id conv, sequence after) {
    sync_position next{sync_phase::messages, true, conv, after, {}};
    for (auto& c : pos.cursors)
      if (c.first > conv)
        next.cursors.push_back(c);
    stop(next);
  };
  for (auto& [conv, m] : convs) {
    if (pos.started && conv < pos.conv)
      continue;
    auto head = head_of(kv, conv);
    if (!head)
      return head.error();
    // The member sees [joined_at, left_at) only.
    sequence first = m.joined_at_sequence ? m.joined_at_sequence : 1;
    sequence last = m.left_at_sequence ? m.left_at_sequence - 1 : *head;
    last = std::min(last, *head);
    sequence after;
    if (pos.started && conv == pos.conv) {
      after = pos.after;
    } else if (auto c = cursor_of(conv)) {
      if (*c > *head)
        return caf::make_error(errc::cursor_ahead,
                               "cursor past head in conversation "
                                 + std::to_string(conv));
      after = *c;
    } else {
      after = last > recent ? last - recent : 0;
    }
    after = std::max(after, first - 1);
    // Reads a few messages at a time: a page of large payloads holds few.
    uint64_t chunk = 16;
    while (after < last) {
      if (budget == 0) {
        stop_in(conv, after);
        return {};
      }
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
        after = msg.seq;
        page.messages.push_back(std::move(msg));
        --budget;
        chunk = std::clamp<uint64_t>((room > used ? room - used : 0) / need
                                       + 1,
                                     1, 64);
      }
    }
  }
  return {};
}

} // namespace

caf::expected<sync_page> sync(kv_backend& kv, user_id user,
                              const sync_request& req, uint64_t recent) {
  auto convs = memberships(kv, user);
  if (!convs)
    return convs.error();
  page_builder b{kv, user, req, recent, std::move(*convs)};
  // A continuation is the whole rest of the request: it wins over any
  // cursors sent with it.
  if (!req.continuation.empty()) {
    auto pos = decode_continuation(req.continuation);
    if (!pos)
      return caf::make_error(errc::bad_request,
                             "bad continuation: send one from the last "
                             "SyncPage unchanged, or start again without");
    b.pos = std::move(*pos);
  } else {
    std::map<conversation_id, sequence> cursors;
    for (size_t i = 0; i < req.cursor_conversations.size()
                       && i < req.cursor_sequences.size();
         ++i)
      cursors[req.cursor_conversations[i]] = req.cursor_sequences[i];
    b.pos.cursors.assign(cursors.begin(), cursors.end());
  }
  auto reserve = continuation_reserve(b.pos.cursors);
  if (reserve > max_continuation_bytes)
    return caf::make_error(
      errc::too_large,
      std::to_string(b.pos.cursors.size())
        + " cursors do not fit one continuation (at most "
        + std::to_string(max_continuation_bytes)
        + " bytes): split them over several Syncs");
  // A position grants nothing: every cursor is checked against the
  // memberships read for this page.
  for (auto& [conv, seq] : b.pos.cursors) {
    auto it = std::lower_bound(b.convs.begin(), b.convs.end(),
                               std::make_pair(conv, member{}),
                               [](auto& x, auto& y) {
                                 return x.first < y.first;
                               });
    if (it == b.convs.end() || it->first != conv)
      return caf::make_error(errc::forbidden,
                             "not a member of conversation "
                               + std::to_string(conv));
  }
  size_t limit = req.max_frame_bytes;
  b.room = limit > sync_frame_overhead + reserve
             ? limit - sync_frame_overhead - reserve
             : 0;
  if (b.pos.phase == sync_phase::inbox)
    if (auto err = b.inbox(); err || b.full)
      return err ? caf::expected<sync_page>{err} : std::move(b.page);
  if (b.pos.phase == sync_phase::receipts)
    if (auto err = b.receipts(); err || b.full)
      return err ? caf::expected<sync_page>{err} : std::move(b.page);
  if (auto err = b.messages())
    return err;
  return std::move(b.page);
}

} // namespace parley::store
