#include "runtime/gateway/ws_sink.hpp"

namespace parley::gateway {

void to_wire_message(const stored_message& m, v1::Message& out) {
  out.set_conversation_id(m.conversation);
  out.set_server_sequence(m.seq);
  out.set_server_message_id(make_server_message_id(m.conversation, m.seq));
  out.set_sender_user_id(m.sender_user);
  out.set_sender_device_id(m.sender_device);
  out.set_client_message_id(m.client_message_id);
  out.set_sent_at_ms(m.sent_at_ms);
  out.set_kind(static_cast<v1::MessageKind>(m.kind));
  out.set_reply_to_sequence(m.reply_to);
  // Membership events are the server's own: structured, not opaque bytes.
  if (m.kind == message_kind_membership
      && out.mutable_membership()->ParseFromString(m.payload))
    return;
  out.set_payload(m.payload);
}

v1::ServerFrame accepted_frame(uint32_t rid, conversation_id conv,
                               const std::string& client_message_id,
                               const send_result& r) {
  v1::ServerFrame f;
  f.set_request_id(rid);
  auto* a = f.mutable_accepted();
  a->set_conversation_id(conv);
  a->set_client_message_id(client_message_id);
  a->set_server_message_id(r.server_message_id);
  a->set_server_sequence(r.server_sequence);
  a->set_sent_at_ms(r.sent_at_ms);
  a->set_deduplicated(r.deduplicated);
  return f;
}

void to_wire_inbox(const inbox_entry& e, v1::InboxEntry& out) {
  out.set_conversation_id(e.conversation);
  out.set_head_sequence(e.head);
  out.set_read_sequence(e.read);
  out.set_unread_count(e.unread);
  if (e.head != 0) {
    auto* m = out.mutable_latest(); // ids and time; the body comes by sync
    m->set_conversation_id(e.conversation);
    m->set_server_sequence(e.head);
    m->set_server_message_id(make_server_message_id(e.conversation, e.head));
    m->set_sender_user_id(e.latest_sender);
    m->set_sent_at_ms(e.latest_at_ms);
  }
  out.set_archived(e.archived);
  out.set_pinned(e.pinned);
  out.set_muted(e.muted);
}

void to_wire_receipt(const receipt_event& ev, v1::ReceiptUpdate& out) {
  out.set_conversation_id(ev.conversation);
  out.set_user_id(ev.user);
  out.set_kind(static_cast<v1::ReceiptKind>(ev.kind));
  out.set_up_to_sequence(ev.seq);
  out.set_at_ms(ev.at_ms);
  if (ev.member_count > 0) {
    out.set_delivered_count(ev.delivered_count);
    out.set_read_count(ev.read_count);
    out.set_member_count(ev.member_count);
  }
}

ws_sink::ws_sink(std::shared_ptr<ws_link> link, frame_format fmt,
                 std::shared_ptr<metrics> stats)
  : link_(std::move(link)), fmt_(fmt), stats_(std::move(stats)) {
}

bool ws_sink::send(v1::ServerFrame& f) {
  stats_->frames_out++;
  std::lock_guard<std::mutex> guard{send_mtx_};
  f.set_event_seq(next_event_seq());
  auto link = link_.lock();
  return link
         && link->send(encode_server_frame(f, fmt_),
                       fmt_ == frame_format::binary);
}

namespace {

void append_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

} // namespace

bool ws_sink::push(const prepared_message& pm) {
  auto idx = fmt_ == frame_format::binary ? 0 : 1;
  const std::string* body;
  {
    std::lock_guard<std::mutex> guard{pm.mtx};
    if (!pm.has_encoded[idx]) {
      v1::Message m;
      to_wire_message(pm.msg, m);
      pm.encoded[idx] = encode_message(m, fmt_);
      pm.has_encoded[idx] = true;
    }
    body = &pm.encoded[idx]; // never changes once set
  }
  stats_->frames_out++;
  std::lock_guard<std::mutex> guard{send_mtx_};
  auto seq = next_event_seq();
  std::string frame;
  frame.reserve(body->size() + 32);
  if (fmt_ == frame_format::binary) {
    // ServerFrame{event_seq = 2, message = 12}, fields in number order as
    // protobuf writes them.
    frame += static_cast<char>(2 << 3);
    append_varint(frame, seq);
    frame += static_cast<char>((12 << 3) | 2);
    append_varint(frame, body->size());
    frame += *body;
  } else {
    frame += "{\"eventSeq\":";
    frame += std::to_string(seq);
    frame += ",\"message\":";
    frame += *body;
    frame += '}';
  }
  // Prepared messages are large-group fan-out: the bulk lane.
  auto link = link_.lock();
  return link
         && link->send_bulk(std::move(frame), fmt_ == frame_format::binary);
}

bool ws_sink::push(const stored_message& msg) {
  v1::ServerFrame f;
  to_wire_message(msg, *f.mutable_message());
  return send(f);
}

bool ws_sink::push(const receipt_event& ev) {
  v1::ServerFrame f;
  to_wire_receipt(ev, *f.mutable_receipt());
  return send(f);
}

bool ws_sink::push(const inbox_entry& e) {
  v1::ServerFrame f;
  to_wire_inbox(e, *f.mutable_inbox_update());
  return send(f);
}

} // namespace parley::gateway
