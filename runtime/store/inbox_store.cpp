#include "runtime/store/inbox_store.hpp"

#include <algorithm>

#include "runtime/core/errors.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/records.hpp"

namespace parley::store {

namespace {

namespace pb = parley::store::v1;


caf::error read_flags(kv_backend& kv, user_id user, conversation_id conv,
                      inbox_entry& e) {
  auto flags = read_record<pb::InboxFlags>(kv, keys::inbox_flags(user, conv));
  if (!flags)
    return flags.error();
  if (*flags) {
    e.archived = (*flags)->archived();
    e.pinned = (*flags)->pinned();
    e.muted = (*flags)->muted();
  }
  return {};
}

} // namespace

caf::expected<std::optional<inbox_entry>>
load_inbox_entry(kv_backend& kv, user_id user, conversation_id conv) {
  auto rec = read_record<pb::InboxRecord>(kv, keys::inbox(user, conv));
  if (!rec)
    return rec.error();
  if (!*rec)
    return std::optional<inbox_entry>{};
  inbox_entry e;
  e.conversation = conv;
  e.head = (*rec)->applied_sequence();
  e.read = (*rec)->read_sequence();
  e.unread = (*rec)->unread_count();
  e.latest_sender = (*rec)->latest_sender_user_id();
  e.latest_at_ms = (*rec)->latest_sent_at_ms();
  if (auto err = read_flags(kv, user, conv, e))
    return err;
  return std::optional<inbox_entry>{e};
}

caf::expected<uint64_t> count_from_others(kv_backend& kv, conversation_id conv,
                                          user_id user, sequence after,
                                          sequence upto) {
  if (upto <= after)
    return uint64_t{0};
  uint64_t n = 0;
  caf::error err;
  auto scan_err = kv.scan(
    keys::message(conv, after + 1), keys::message(conv, upto) + '\0',
    [&](std::string_view, std::string_view v) {
      pb::MessageRecord rec;
      if (!rec.ParseFromArray(v.data(), static_cast<int>(v.size()))) {
        err = caf::make_error(errc::storage_corrupt, "bad message record");
        return false;
      }
      if (rec.sender_user_id() != user)
        ++n;
      return true;
    });
  if (scan_err)
    return scan_err;
  if (err)
    return err;
  return n;
}

namespace {

/// The cheap part of an entry: latest visible message, read cursor, flags;
/// `first` gets the first sequence the member may see. Unread is not set.
caf::expected<inbox_entry> probe_entry(kv_backend& kv, user_id user,
                                       conversation_id conv, sequence& first) {
  inbox_entry e;
  e.conversation = conv;
  auto m = read_record<pb::MemberRecord>(kv, keys::membership(user, conv));
  if (!m)
    return m.error();
  if (!*m)
    return caf::make_error(errc::forbidden, "not a member");
  first = (*m)->joined_at_sequence() ? (*m)->joined_at_sequence() : 1;
  // The latest message the member may see: before they left, if they did.
  auto upto_key = (*m)->left_at_sequence()
                    ? keys::message(conv, (*m)->left_at_sequence())
                    : keys::prefix_end(keys::conversation_records(
                      keys::messages_tag, conv));
  auto last = kv.last(keys::message(conv, first), upto_key);
  if (!last)
    return last.error();
  if (*last) {
    auto ids = keys::decode_message((*last)->first);
    pb::MessageRecord rec;
    if (!ids || !rec.ParseFromString((*last)->second))
      return caf::make_error(errc::storage_corrupt, "bad message record");
    e.head = ids->second;
    e.latest_sender = rec.sender_user_id();
    e.latest_at_ms = rec.sent_at_ms();
  }
  auto read_cursor = kv.get(keys::receipt(conv, user, keys::receipt_read));
  if (!read_cursor)
    return read_cursor.error();
  if (*read_cursor)
    e.read = keys::read_u64(**read_cursor, 0).value_or(0);
  if (auto err = read_flags(kv, user, conv, e))
    return err;
  return e;
}

caf::error count_unread(kv_backend& kv, user_id user, sequence first,
                        inbox_entry& e) {
  auto n = count_from_others(kv, e.conversation, user,
                             std::max(e.read, first - 1), e.head);
  if (!n)
    return n.error();
  e.unread = *n;
  return {};
}

} // namespace

caf::expected<inbox_entry> compute_inbox_entry(kv_backend& kv, user_id user,
                                               conversation_id conv) {
  sequence first = 1;
  auto e = probe_entry(kv, user, conv, first);
  if (!e)
    return e;
  if (auto err = count_unread(kv, user, first, *e))
    return err;
  return e;
}

void add_inbox_entry(write_batch& batch, user_id user, const inbox_entry& e) {
  pb::InboxRecord rec;
  rec.set_applied_sequence(e.head);
  rec.set_latest_sender_user_id(e.latest_sender);
  rec.set_latest_sent_at_ms(e.latest_at_ms);
  rec.set_read_sequence(e.read);
  rec.set_unread_count(e.unread);
  batch.put(keys::inbox(user, e.conversation), rec.SerializeAsString());
}

void add_inbox_flags(write_batch& batch, user_id user, conversation_id conv,
                     bool archived, bool pinned, bool muted) {
  pb::InboxFlags rec;
  rec.set_archived(archived);
  rec.set_pinned(pinned);
  rec.set_muted(muted);
  batch.put(keys::inbox_flags(user, conv), rec.SerializeAsString());
}

caf::expected<std::vector<conversation_id>>
user_conversations(kv_backend& kv, user_id user) {
  std::vector<conversation_id> out;
  auto from = keys::membership(user, 0);
  auto to = keys::prefix_end(keys::user_records(keys::memberships_tag, user));
  auto err = kv.scan(from, to, [&](std::string_view k, std::string_view) {
    if (auto ids = keys::decode_membership(k))
      out.push_back(ids->second);
    return true;
  });
  if (err)
    return err;
  return out;
}

caf::expected<std::vector<user_id>> users_with_conversations(kv_backend& kv) {
  std::vector<user_id> out;
  // A user's 'y' keys share the user's slot, so they come together.
  auto err = scan_table(kv, keys::memberships_tag,
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

void sort_inbox(std::vector<inbox_entry>& entries) {
  std::sort(entries.begin(), entries.end(),
            [](const inbox_entry& a, const inbox_entry& b) {
              if (a.pinned != b.pinned)
                return a.pinned;
              if (a.latest_at_ms != b.latest_at_ms)
                return a.latest_at_ms > b.latest_at_ms;
              return a.conversation < b.conversation;
            });
}

caf::expected<std::vector<inbox_entry>>
list_inbox(kv_backend& kv, user_id user, std::vector<inbox_entry>* stale) {
  auto convs = user_conversations(kv, user);
  if (!convs)
    return convs.error();
  return list_inbox(kv, user, *convs, stale);
}

caf::expected<std::vector<inbox_entry>>
list_inbox(kv_backend& kv, user_id user,
           const std::vector<conversation_id>& convs,
           std::vector<inbox_entry>* stale) {
  std::vector<inbox_entry> out;
  for (auto conv : convs) {
    auto stored = load_inbox_entry(kv, user, conv);
    if (!stored)
      return stored.error();
    // The stored entry is current if it counted up to the member's latest
    // message and the current read cursor; otherwise count from the log.
    sequence first = 1;
    auto fresh = probe_entry(kv, user, conv, first);
    if (!fresh)
      return fresh.error();
    fresh->unread = *stored ? (*stored)->unread : 0;
    if (!*stored || !(**stored == *fresh)) {
      if (auto err = count_unread(kv, user, first, *fresh))
        return err;
      if (stale)
        stale->push_back(*fresh);
    }
    out.push_back(*fresh);
  }
  sort_inbox(out);
  return out;
}

} // namespace parley::store
