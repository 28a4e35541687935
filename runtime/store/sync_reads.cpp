// The partitions' side of a user's sync (sync_reads.hpp): each function
// reads only the records of the ids its request names.

#include "runtime/store/sync_reads.hpp"

#include <algorithm>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "parley/v1/store.pb.h"
#include "runtime/core/errors.hpp"
#include "runtime/store/account_store.hpp"
#include "runtime/store/conversation_store.hpp"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/inbox_reads.hpp"
#include "runtime/store/keys.hpp"
#include "runtime/store/records.hpp"
#include "runtime/store/store_detail.hpp"
#include "runtime/store/sync_paging.hpp"

namespace parley::store {

namespace {

namespace pb = parley::store::v1;

/// The page's limits a batch of message queries shares (conv_reads).
struct limits {
  uint64_t budget = 0;
  uint64_t room = 0;
  uint64_t used = 0;
  uint64_t items = 0;
  bool stopped = false; ///< the page stops at or before this point
  size_t largest = 0;   ///< the largest bound of a message read

  bool fits(size_t n) const {
    return items == 0 || used + n <= room;
  }

  /// How many messages to read next: as many as the room left holds at
  /// the size of the largest so far (a run of large payloads reads few);
  /// before the first, one (it may be as large as the whole room).
  uint64_t chunk() const {
    uint64_t left = room > used ? room - used : 0;
    return largest ? std::clamp<uint64_t>(left / largest, 1, 64) : 1;
  }
};

/// The user's conversations (also those they left), in id order.
caf::expected<std::vector<std::pair<conversation_id, member>>>
memberships(kv_backend& kv, user_id user) {
  std::vector<std::pair<conversation_id, member>> convs;
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

/// The member's inbox entry from the log: the latest message they may see,
/// their read cursor, and (if the stored entry disagrees) the unread count.
caf::error probe(kv_backend& kv, const conv_query& q, conv_answer& a) {
  auto head = head_of(kv, q.conv);
  if (!head)
    return head.error();
  a.head = *head;
  inbox_entry e;
  e.conversation = q.conv;
  sequence first = q.joined_at ? q.joined_at : 1;
  // The log is gapless: the latest visible message is the head, or the
  // last before the member left.
  sequence top = q.left_at ? std::min(*head, q.left_at - 1) : *head;
  if (top >= first) {
    auto msgs = fetch_messages(kv, q.conv, top - 1, 1);
    if (!msgs)
      return msgs.error();
    if (!msgs->empty() && msgs->front().seq == top) {
      e.head = top;
      e.latest_sender = msgs->front().sender_user;
      e.latest_at_ms = msgs->front().sent_at_ms;
    }
  }
  auto read = kv.get(keys::receipt(q.conv, q.user, keys::receipt_read));
  if (!read)
    return read.error();
  if (*read)
    e.read = keys::read_u64(**read, 0).value_or(0);
  e.archived = q.entry.archived;
  e.pinned = q.entry.pinned;
  e.muted = q.entry.muted;
  e.unread = q.stored ? q.entry.unread : 0;
  if (!q.stored || !(q.entry == e)) {
    auto n = count_from_others(kv, q.conv, q.user,
                               std::max(e.read, first - 1), e.head);
    if (!n)
      return n.error();
    e.unread = *n;
    a.stale = true;
  }
  a.entry = e;
  return {};
}

/// Messages of the member's window from where the query starts, while the
/// batch's limits allow (the page's share this partition may fill).
caf::error messages(kv_backend& kv, const conv_query& q, uint64_t recent,
                    limits& lim, conv_answer& a) {
  auto head = head_of(kv, q.conv);
  if (!head)
    return head.error();
  a.head = *head;
  sequence first = q.joined_at ? q.joined_at : 1;
  sequence last = q.left_at ? q.left_at - 1 : *head;
  last = std::min(last, *head);
  sequence after = q.after;
  if (q.start == conv_start_cursor && q.after > *head) {
    a.ahead = true;
    return {};
  }
  if (q.start == conv_start_recent)
    after = last > recent ? last - recent : 0;
  after = std::max(after, first - 1);
  a.after = after;
  a.last = last;
  a.complete = true;
  while (after < last) {
    if (lim.stopped || lim.budget == 0) {
      lim.stopped = true;
      a.complete = false;
      return {};
    }
    auto msgs = fetch_messages(
      kv, q.conv, after,
      std::min<uint64_t>({lim.budget, last - after, lim.chunk()}));
    if (!msgs)
      return msgs.error();
    if (msgs->empty())
      return {};
    for (auto& msg : *msgs) {
      auto need = wire_size_bound(msg);
      if (!lim.fits(need)) {
        lim.stopped = true;
        a.complete = false;
        return {};
      }
      lim.used += need;
      ++lim.items;
      lim.largest = std::max(lim.largest, need);
      --lim.budget;
      after = msg.seq;
      a.messages.push_back(std::move(msg));
    }
  }
  return {};
}

/// Whether `user` shares read receipts (their account's setting; a user
/// without an account does).
caf::expected<bool> shares_reads(kv_backend& kv, user_id user) {
  auto acct = find_account_by_id(kv, user);
  if (!acct)
    return acct.error();
  return !*acct || !(*acct)->read_receipts_off;
}

} // namespace

caf::expected<conv_answers> answer_conv_reads(kv_backend& kv,
                                              const conv_reads& reads,
                                              uint64_t recent) {
  conv_answers out;
  out.partition = reads.partition;
  limits lim{reads.budget, reads.room, 0, reads.items, false};
  for (auto& q : reads.queries) {
    conv_answer a;
    a.conv = q.conv;
    caf::error err;
    switch (q.kind) {
      case conv_read_head: {
        auto head = head_of(kv, q.conv);
        if (!head)
          return head.error();
        a.head = *head;
        break;
      }
      case conv_read_probe:
        err = probe(kv, q, a);
        break;
      case conv_read_receipts:
        err = read_receipts(kv, q.conv, a.receipts);
        break;
      case conv_read_messages:
        err = messages(kv, q, recent, lim, a);
        break;
      case conv_read_member_probe: // runtime/store/inbox_reads.cpp
        err = member_probe(kv, q, recent, a);
        break;
      default:
        return caf::make_error(errc::bad_request, "unknown conversation read");
    }
    if (err)
      return err;
    out.answers.push_back(std::move(a));
  }
  return out;
}

caf::expected<user_answers> answer_user_reads(kv_backend& kv,
                                              const user_reads& reads) {
  user_answers out;
  out.partition = reads.partition;
  switch (reads.kind) {
    case user_read_memberships: {
      auto convs = memberships(kv, reads.user);
      if (!convs)
        return convs.error();
      for (auto& [conv, m] : *convs) {
        out.convs.push_back(conv);
        out.members.push_back(m);
      }
      return out;
    }
    case user_read_inbox:
      for (auto conv : reads.convs) {
        auto stored = load_inbox_entry(kv, reads.user, conv);
        if (!stored)
          return stored.error();
        if (*stored) {
          out.entries.push_back(**stored);
          out.stored.push_back(conv);
          continue;
        }
        inbox_entry e;
        e.conversation = conv;
        auto flags = read_record<pb::InboxFlags>(
          kv, keys::inbox_flags(reads.user, conv));
        if (!flags)
          return flags.error();
        if (*flags) {
          e.archived = (*flags)->archived();
          e.pinned = (*flags)->pinned();
          e.muted = (*flags)->muted();
        }
        out.entries.push_back(e);
      }
      return out;
    case user_read_sharing:
      for (auto user : reads.users) {
        auto shares = shares_reads(kv, user);
        if (!shares)
          return shares.error();
        if (*shares)
          out.sharing.push_back(user);
      }
      return out;
    default:
      return caf::make_error(errc::bad_request, "unknown user read");
  }
}

} // namespace parley::store
