#include "runtime/store/conversation_store.hpp"

#include <algorithm>
#include <map>

#include "actors/errors.hpp"
#include "parley/v1/store.pb.h"
#include "runtime/store/inbox_store.hpp"
#include "runtime/store/keys.hpp"

namespace parley::store {

namespace {

namespace pb = parley::store::v1;

template <class Record>
caf::expected<Record> parse(std::string_view bytes, const char* what) {
  Record rec;
  if (!rec.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    return caf::make_error(errc::storage_corrupt, what);
  return rec;
}

/// Reads and parses one record; an absent key reads as the default record.
template <class Record>
caf::expected<Record> read(kv_backend& kv, const std::string& key,
                           const char* what) {
  auto bytes = kv.get(key);
  if (!bytes)
    return bytes.error();
  if (!*bytes)
    return Record{};
  return parse<Record>(**bytes, what);
}

/// The highest sequence of `conv` (0 if empty) and, if `sent_at` is given,
/// that message's acceptance time.
caf::expected<sequence> head_of(kv_backend& kv, conversation_id conv,
                                int64_t* sent_at = nullptr) {
  auto from = keys::message(conv, 0);
  auto to = keys::message(conv + 1, 0);
  if (conv == UINT64_MAX)
    to = keys::prefix_end(std::string(1, keys::messages_tag));
  auto last = kv.last(from, to);
  if (!last)
    return last.error();
  if (!*last)
    return sequence{0};
  auto decoded = keys::decode_message((*last)->first);
  if (!decoded)
    return caf::make_error(errc::storage_corrupt, "bad message key");
  if (sent_at) {
    auto rec = parse<pb::MessageRecord>((*last)->second, "bad message record");
    if (!rec)
      return rec.error();
    *sent_at = rec->sent_at_ms();
  }
  return decoded->second;
}

/// Appends the receipt cursors of every member of `conv` to `out`.
caf::error read_receipts(kv_backend& kv, conversation_id conv,
                         std::vector<receipt_cursor>& out) {
  caf::error err;
  auto from = keys::receipt(conv, 0, 0);
  auto to = keys::prefix_end(from.substr(0, 9));
  auto scan_err = kv.scan(from, to, [&](std::string_view k,
                                        std::string_view v) {
    auto ids = keys::decode_receipt(k);
    auto seq = keys::read_u64(v, 0);
    if (!ids || !seq) {
      err = caf::make_error(errc::storage_corrupt, "bad receipt record");
      return false;
    }
    out.push_back(receipt_cursor{ids->first, ids->second, *seq});
    return true;
  });
  return scan_err ? scan_err : err;
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
    auto acct = read<pb::AccountRecord>(kv, keys::account(**name),
                                        "bad account record");
    if (!acct)
      return acct.error();
    shares = !acct->read_receipts_off();
  }
  cache[user] = shares;
  return shares;
}

} // namespace

void add_receipt(write_batch& batch, conversation_id conv,
                 const receipt_cursor& c) {
  std::string v;
  keys::append_u64(v, c.seq);
  batch.max_u64(keys::receipt(conv, c.user, static_cast<uint8_t>(c.kind)),
                std::move(v));
}

void add_message(write_batch& batch, const stored_message& msg) {
  pb::MessageRecord rec;
  rec.set_sender_user_id(msg.sender_user);
  rec.set_sender_device_id(msg.sender_device);
  rec.set_client_message_id(msg.client_message_id);
  rec.set_sent_at_ms(msg.sent_at_ms);
  rec.set_kind(static_cast<parley::v1::MessageKind>(msg.kind));
  rec.set_payload(msg.payload);
  batch.put(keys::message(msg.conversation, msg.seq),
            rec.SerializeAsString());
  pb::IdempotencyRecord idem;
  idem.set_server_sequence(msg.seq);
  idem.set_accepted_at_ms(msg.sent_at_ms);
  batch.put(keys::idempotency(msg.conversation, msg.sender_user,
                              msg.sender_device, msg.client_message_id),
            idem.SerializeAsString());
}

void add_watermark(write_batch& batch, conversation_id conv,
                   sequence dispatched) {
  pb::OutboxWatermark rec;
  rec.set_dispatched_sequence(dispatched);
  batch.put(keys::outbox(conv), rec.SerializeAsString());
}

void add_conversation(write_batch& batch, conversation_id conv, int32_t kind,
                      int64_t created_at_ms, const std::string& name,
                      const std::string& description, user_id creator,
                      const std::string& create_request_id) {
  pb::ConversationRecord rec;
  rec.set_kind(static_cast<pb::ConversationRecord::Kind>(kind));
  rec.set_created_at_ms(created_at_ms);
  rec.set_name(name);
  rec.set_description(description);
  rec.set_creator_user_id(creator);
  rec.set_create_request_id(create_request_id);
  batch.put(keys::conversation(conv), rec.SerializeAsString());
}

void add_member(write_batch& batch, conversation_id conv, const member& m) {
  pb::MemberRecord rec;
  rec.set_role(static_cast<pb::MemberRecord::Role>(m.role));
  rec.set_joined_at_sequence(m.joined_at_sequence);
  rec.set_left_at_sequence(m.left_at_sequence);
  auto bytes = rec.SerializeAsString();
  batch.put(keys::member(conv, m.user), bytes);
  batch.put(keys::membership(m.user, conv), bytes);
}

void erase_idempotency(write_batch& batch, conversation_id conv,
                       const idempotency_key& key) {
  batch.erase(
    keys::idempotency(conv, key.user, key.device, key.client_message_id));
}

void add_sweep_mark(write_batch& batch, conversation_id conv, sequence swept) {
  pb::IdempotencySweep rec;
  rec.set_swept_sequence(swept);
  batch.put(keys::sweep(conv), rec.SerializeAsString());
}

caf::expected<conversation_snapshot> load_conversation(kv_backend& kv,
                                                       conversation_id conv) {
  conversation_snapshot snap;
  auto rec = kv.get(keys::conversation(conv));
  if (!rec)
    return rec.error();
  snap.exists = rec->has_value();
  if (snap.exists) {
    auto c = parse<pb::ConversationRecord>(**rec, "bad conversation record");
    if (!c)
      return c.error();
    snap.kind = static_cast<int32_t>(c->kind());
    snap.name = c->name();
    snap.description = c->description();
    snap.created_at_ms = c->created_at_ms();
    snap.creator = c->creator_user_id();
    snap.create_request_id = c->create_request_id();
  }
  auto head = head_of(kv, conv, &snap.head_sent_at_ms);
  if (!head)
    return head.error();
  snap.head = *head;
  auto wm = read<pb::OutboxWatermark>(kv, keys::outbox(conv), "bad watermark");
  if (!wm)
    return wm.error();
  snap.dispatched = wm->dispatched_sequence();
  auto sw = read<pb::IdempotencySweep>(kv, keys::sweep(conv), "bad sweep mark");
  if (!sw)
    return sw.error();
  snap.swept = sw->swept_sequence();
  caf::error err;
  auto from = keys::member(conv, 0);
  auto to = keys::prefix_end(keys::member(conv, 0).substr(0, 9));
  auto scan_err = kv.scan(from, to, [&](std::string_view k,
                                        std::string_view v) {
    auto ids = keys::decode_member(k);
    auto m = parse<pb::MemberRecord>(v, "bad member record");
    if (!ids || !m) {
      err = caf::make_error(errc::storage_corrupt, "bad member record");
      return false;
    }
    snap.members.push_back(member{ids->second, static_cast<int32_t>(m->role()),
                                  m->joined_at_sequence(),
                                  m->left_at_sequence()});
    return true;
  });
  if (scan_err)
    return scan_err;
  if (err)
    return err;
  if (auto e = read_receipts(kv, conv, snap.receipts))
    return e;
  return snap;
}

caf::expected<idempotency_hit>
lookup_idempotency(kv_backend& kv, conversation_id conv, user_id user,
                   device_id device, std::string_view client_message_id) {
  auto rec = kv.get(keys::idempotency(conv, user, device, client_message_id));
  if (!rec)
    return rec.error();
  if (!*rec)
    return idempotency_hit{};
  auto parsed = parse<pb::IdempotencyRecord>(**rec, "bad idempotency record");
  if (!parsed)
    return parsed.error();
  return idempotency_hit{true, parsed->server_sequence(),
                         parsed->accepted_at_ms()};
}

caf::expected<std::vector<stored_message>>
fetch_messages(kv_backend& kv, conversation_id conv, sequence after,
               size_t limit) {
  std::vector<stored_message> result;
  if (limit == 0 || after == UINT64_MAX)
    return result;
  caf::error err;
  auto to = keys::prefix_end(keys::message(conv, UINT64_MAX));
  auto scan_err = kv.scan(
    keys::message(conv, after + 1), to,
    [&](std::string_view k, std::string_view v) {
      auto ids = keys::decode_message(k);
      auto rec = parse<pb::MessageRecord>(v, "bad message record");
      if (!ids || !rec || ids->first != conv) {
        err = caf::make_error(errc::storage_corrupt, "bad message record");
        return false;
      }
      stored_message msg;
      msg.conversation = conv;
      msg.seq = ids->second;
      msg.sender_user = rec->sender_user_id();
      msg.sender_device = rec->sender_device_id();
      msg.client_message_id = rec->client_message_id();
      msg.sent_at_ms = rec->sent_at_ms();
      msg.kind = rec->kind();
      msg.payload = rec->payload();
      result.push_back(std::move(msg));
      return result.size() < limit;
    });
  if (scan_err)
    return scan_err;
  if (err)
    return err;
  return result;
}

caf::expected<idempotency_sweep>
find_expired_idempotency(kv_backend& kv, conversation_id conv, sequence after,
                         int64_t cutoff_ms, size_t limit) {
  idempotency_sweep result;
  result.swept = after;
  auto msgs = fetch_messages(kv, conv, after, limit);
  if (!msgs)
    return msgs.error();
  for (auto& m : *msgs) {
    // Sequences follow acceptance; the first message still inside the
    // window ends the sweep (a clock step backwards only delays it).
    if (m.sent_at_ms >= cutoff_ms)
      return result;
    auto hit = lookup_idempotency(kv, conv, m.sender_user, m.sender_device,
                                  m.client_message_id);
    if (!hit)
      return hit.error();
    if (hit->found && hit->seq == m.seq)
      result.expired.push_back(
        idempotency_key{m.sender_user, m.sender_device, m.client_message_id});
    result.swept = m.seq;
  }
  result.more = msgs->size() == limit;
  return result;
}

caf::expected<sync_page> sync(kv_backend& kv, user_id user,
                              const sync_request& req, uint64_t recent) {
  constexpr size_t max_page_bytes = 512 * 1024;
  // The user's conversations, in id order.
  std::vector<std::pair<conversation_id, member>> convs;
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
  std::map<conversation_id, sequence> cursors;
  for (size_t i = 0; i < req.cursor_conversations.size()
                     && i < req.cursor_sequences.size();
       ++i)
    cursors[req.cursor_conversations[i]] = req.cursor_sequences[i];
  for (auto& [conv, seq] : cursors) {
    auto it = std::find_if(convs.begin(), convs.end(),
                           [conv = conv](auto& c) { return c.first == conv; });
    if (it == convs.end())
      return caf::make_error(errc::forbidden,
                             "not a member of conversation "
                               + std::to_string(conv));
  }
  // Where to resume: "<conversation>:<last sequence sent>".
  conversation_id resume_conv = 0;
  sequence resume_after = 0;
  bool resuming = !req.continuation.empty();
  if (resuming) {
    auto colon = req.continuation.find(':');
    try {
      if (colon == std::string::npos)
        throw std::invalid_argument("no colon");
      resume_conv = std::stoull(req.continuation.substr(0, colon));
      resume_after = std::stoull(req.continuation.substr(colon + 1));
    } catch (...) {
      return caf::make_error(errc::bad_request, "bad continuation");
    }
  }
  sync_page page;
  size_t budget = std::clamp<size_t>(req.page_size ? req.page_size : 100, 1,
                                     1000);
  size_t bytes = 0;
  // The inbox comes whole, before any message (a client draws it first).
  std::map<user_id, bool> sharing; // users' read-receipt settings
  // Later pages read heads only from where they resume.
  std::vector<sequence> heads(convs.size(), 0);
  for (size_t ci = 0; ci < convs.size(); ++ci) {
    auto conv = convs[ci].first;
    if (resuming && conv < resume_conv)
      continue;
    auto head = head_of(kv, conv);
    if (!head)
      return head.error();
    heads[ci] = *head;
    // Groups show their senders aggregates, pushed live; other members'
    // cursors there are not listed (a large group has thousands).
    if (resuming || !is_direct(conv))
      continue;
    std::vector<receipt_cursor> rcs;
    if (auto e = read_receipts(kv, conv, rcs))
      return e;
    for (auto& rc : rcs) {
      if (rc.user == user)
        continue;
      if (rc.kind == keys::receipt_read) {
        // Read state is shown only if the reader shares it, and in 1:1
        // only to users who share their own.
        if (is_direct(conv) && !req.read_receipts)
          continue;
        auto shares = shares_reads(kv, rc.user, sharing);
        if (!shares)
          return shares.error();
        if (!*shares)
          continue;
      }
      page.receipts.push_back(
        receipt_event{conv, rc.user, rc.kind, rc.seq, 0, true});
    }
  }
  if (!resuming) {
    // The inbox projection, checked against the log (stale entries are
    // computed for the answer; the inbox actor repairs the store).
    std::vector<conversation_id> ids;
    for (auto& c : convs)
      ids.push_back(c.first);
    auto inbox = list_inbox(kv, user, ids);
    if (!inbox)
      return inbox.error();
    page.inbox = std::move(*inbox);
  }
  for (size_t ci = 0; ci < convs.size(); ++ci) {
    auto& [conv, m] = convs[ci];
    auto head = &heads[ci];
    if (resuming && conv < resume_conv)
      continue;
    // The member sees [joined_at, left_at) only.
    sequence first = m.joined_at_sequence ? m.joined_at_sequence : 1;
    sequence last = m.left_at_sequence ? m.left_at_sequence - 1 : *head;
    last = std::min(last, *head);
    sequence after;
    if (resuming && conv == resume_conv) {
      after = resume_after;
    } else if (auto c = cursors.find(conv); c != cursors.end()) {
      if (c->second > *head)
        return caf::make_error(errc::cursor_ahead,
                               "cursor past head in conversation "
                                 + std::to_string(conv));
      after = c->second;
    } else {
      after = last > recent ? last - recent : 0;
    }
    after = std::max(after, first - 1);
    while (after < last) {
      if (budget == 0 || bytes >= max_page_bytes) {
        page.continuation = std::to_string(conv) + ":" + std::to_string(after);
        return page;
      }
      auto msgs = fetch_messages(kv, conv, after,
                                 std::min<uint64_t>(budget, last - after));
      if (!msgs)
        return msgs.error();
      if (msgs->empty())
        break;
      for (auto& msg : *msgs) {
        after = msg.seq;
        bytes += msg.payload.size() + 64;
        page.messages.push_back(std::move(msg));
        --budget;
      }
    }
  }
  return page;
}

caf::expected<sequence> ack_limit(kv_backend& kv, user_id user,
                                  conversation_id conv) {
  auto bytes = kv.get(keys::membership(user, conv));
  if (!bytes)
    return bytes.error();
  if (!*bytes)
    return caf::make_error(errc::forbidden, "not a member of conversation "
                                              + std::to_string(conv));
  auto rec = parse<pb::MemberRecord>(**bytes, "bad membership record");
  if (!rec)
    return rec.error();
  auto head = head_of(kv, conv);
  if (!head)
    return head.error();
  if (rec->left_at_sequence() != 0)
    return std::min(*head, rec->left_at_sequence() - 1);
  return *head;
}

caf::expected<std::vector<conversation_id>>
undispatched_conversations(kv_backend& kv) {
  std::vector<conversation_id> convs;
  std::string tag(1, keys::conversations_tag);
  auto scan_err = kv.scan(tag, keys::prefix_end(tag),
                          [&](std::string_view k, std::string_view) {
                            if (auto id = keys::read_u64(k, 1))
                              convs.push_back(*id);
                            return true;
                          });
  if (scan_err)
    return scan_err;
  std::vector<conversation_id> result;
  for (auto conv : convs) {
    auto snap = load_conversation(kv, conv);
    if (!snap)
      return snap.error();
    if (snap->dispatched < snap->head)
      result.push_back(conv);
  }
  return result;
}

} // namespace parley::store
