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

bool ws_sink::send(v1::ServerFrame& f, bool bulk) {
  stats_->frames_out++;
  f.set_event_seq(next_event_seq());
  auto link = link_.lock();
  if (!link)
    return false;
  auto binary = fmt_ == frame_format::binary;
  auto data = encode_server_frame(f, fmt_);
  return bulk ? link->send_bulk(std::move(data), binary)
              : link->send(std::move(data), binary);
}

bool ws_sink::push(const stored_message& msg) {
  v1::ServerFrame f;
  to_wire_message(msg, *f.mutable_message());
  return send(f);
}

bool ws_sink::push_bulk(const stored_message& msg) {
  v1::ServerFrame f;
  to_wire_message(msg, *f.mutable_message());
  return send(f, true);
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
