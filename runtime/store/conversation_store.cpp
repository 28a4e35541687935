#include "runtime/store/conversation_store.hpp"

#include <algorithm>
#include <set>

#include <sodium.h>

#include "runtime/core/errors.hpp"
#include "runtime/core/placement.hpp"
#include "parley/v1/store.pb.h"
#include "parley/v1/wire.pb.h"
#include "runtime/store/keys.hpp"
#include "runtime/store/layout.hpp"
#include "runtime/store/membership_store.hpp"
#include "runtime/store/store_detail.hpp"

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

} // namespace

/// The highest sequence of `conv` (0 if empty) and, if `sent_at` is given,
/// that message's acceptance time.
caf::expected<sequence> head_of(kv_backend& kv, conversation_id conv,
                                int64_t* sent_at) {
  auto from = keys::message(conv, 0);
  auto to = keys::prefix_end(keys::conversation_records(keys::messages_tag,
                                                        conv));
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
  auto to = keys::prefix_end(keys::conversation_records(keys::receipts_tag,
                                                        conv));
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

void add_receipt(write_batch& batch, conversation_id conv,
                 const receipt_cursor& c) {
  std::string v;
  keys::append_u64(v, c.seq);
  batch.max_u64(keys::receipt(conv, c.user, static_cast<uint8_t>(c.kind)),
                std::move(v));
}

void add_message(write_batch& batch, const stored_message& msg,
                 uint64_t request_digest) {
  pb::MessageRecord rec;
  rec.set_sender_user_id(msg.sender_user);
  rec.set_sender_device_id(msg.sender_device);
  rec.set_client_message_id(msg.client_message_id);
  rec.set_sent_at_ms(msg.sent_at_ms);
  rec.set_kind(static_cast<parley::v1::MessageKind>(msg.kind));
  rec.set_payload(msg.payload);
  rec.set_reply_to_sequence(msg.reply_to);
  batch.put(keys::message(msg.conversation, msg.seq),
            rec.SerializeAsString());
  pb::IdempotencyRecord idem;
  idem.set_server_sequence(msg.seq);
  idem.set_accepted_at_ms(msg.sent_at_ms);
  if (request_digest != 0) {
    std::string d;
    keys::append_u64(d, request_digest);
    idem.set_request_digest(std::move(d));
  }
  batch.put(keys::idempotency(msg.conversation, msg.sender_user,
                              msg.sender_device, msg.client_message_id),
            idem.SerializeAsString());
}

uint64_t send_digest(int32_t kind, std::string_view payload,
                     sequence reply_to) {
  // Fixed-width fields first, then the payload: no two requests share an
  // encoding.
  std::string head;
  keys::append_u64(head, static_cast<uint32_t>(kind));
  keys::append_u64(head, reply_to);
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, crypto_generichash_BYTES_MIN);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(head.data()),
                            head.size());
  crypto_generichash_update(
    &st, reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
  uint8_t out[crypto_generichash_BYTES_MIN];
  crypto_generichash_final(&st, out, sizeof out);
  uint64_t d = 0;
  for (size_t i = 0; i < 8; ++i)
    d = (d << 8) | out[i];
  return d == 0 ? 1 : d;
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

std::string membership_payload(const group_change& c) {
  parley::v1::Membership m;
  m.set_change(static_cast<parley::v1::Membership::Change>(c.change));
  m.set_actor_user_id(c.actor);
  if (c.change == membership_change::left) {
    m.add_target_user_ids(c.actor);
  } else {
    std::set<user_id> targets(c.targets.begin(), c.targets.end());
    targets.erase(0);
    if (c.change == membership_change::created)
      targets.erase(c.actor);
    for (auto u : targets)
      m.add_target_user_ids(u);
  }
  if (c.change == membership_change::created
      || c.change == membership_change::renamed)
    m.set_name(c.name);
  return m.SerializeAsString();
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
  auto to = keys::prefix_end(keys::conversation_records(keys::members_tag,
                                                        conv));
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
  auto owed = member_events(kv, conv);
  if (!owed)
    return owed.error();
  snap.pending_memberships = std::move(*owed);
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
  uint64_t digest = 0;
  if (!parsed->request_digest().empty()) {
    auto d = keys::read_u64(parsed->request_digest(), 0);
    if (!d || parsed->request_digest().size() != 8)
      return caf::make_error(errc::storage_corrupt, "bad idempotency record");
    digest = *d;
  }
  return idempotency_hit{true, parsed->server_sequence(),
                         parsed->accepted_at_ms(), digest};
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
      msg.reply_to = rec->reply_to_sequence();
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

caf::expected<sequence> ack_limit(kv_backend& kv, user_id user,
                                  conversation_id conv) {
  // The conversation's side only (its member record and head): the
  // user's index ('y') is on the user's partition.
  auto bytes = kv.get(keys::member(conv, user));
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

namespace {

/// The conversations of table 'c' in slots [first, end) that owe delivery
/// or membership events.
caf::expected<std::vector<conversation_id>>
undispatched_in(kv_backend& kv, uint32_t first, uint32_t end) {
  std::vector<conversation_id> convs;
  auto scan_err = scan_table(
    kv, keys::conversations_tag, keys::table_start(first, keys::conversations_tag),
    [&](std::string_view k, std::string_view) {
      auto slot = keys::slot_of_key(k);
      if (!slot || *slot >= end)
        return false;
      if (auto id = keys::decode_conversation(k))
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
    if (snap->dispatched < snap->head || !snap->pending_memberships.empty())
      result.push_back(conv);
  }
  return result;
}

} // namespace

caf::expected<std::vector<conversation_id>>
undispatched_conversations(kv_backend& kv) {
  return undispatched_in(kv, 0, slot_count);
}

caf::expected<std::vector<conversation_id>>
undispatched_conversations(kv_backend& kv, uint32_t p, uint32_t partitions) {
  if (partitions == 0 || p >= partitions)
    return caf::make_error(errc::bad_request,
                           "no partition " + std::to_string(p) + " of "
                             + std::to_string(partitions));
  auto span = slot_range(p, partitions);
  return undispatched_in(kv, span.first, span.end);
}

} // namespace parley::store
