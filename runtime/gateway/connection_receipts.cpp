// The connection actor's receipt and inbox-flag frames: Delivered, Read
// and SetConversationFlags. Delivered and Read move the device's own cursor
// (its actor coalesces acks into cursor writes) and the user's receipt
// cursor in the conversation, which validates, coalesces and pushes it.

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

#include "runtime/core/errors.hpp"
#include "runtime/core/timeouts.hpp"
#include "runtime/gateway/connection_detail.hpp"

namespace parley::gateway::connection_detail {

namespace {

/// Moves the user's receipt cursor in a conversation; no answer on
/// success (receipts are fire-and-forget), an Error frame otherwise.
void send_receipt(self_ptr self, conversation_id conv, int32_t kind,
                  sequence seq, uint32_t rid, frame_format fmt) {
  auto& who = self->state.who;
  // A tagged message (no CAF clock entry per receipt); a timeout answers
  // as a request timeout did (UNAVAILABLE, retryable).
  auto tag = await_answer(self, awaited_answer{rid, fmt, true, conv, {}});
  self->send(self->state.deps.directory, receipt_atom::value,
             tagged_receipt{tag, conv, who.user, who.device, kind, seq,
                            who.read_receipts});
}

} // namespace

void on_receipt_answer(self_ptr self, const awaited_answer& a,
                       const caf::error& err) {
  if (err)
    reply_error(self, a.request_id, a.fmt, err);
}

/// A delivered ack goes to the device's actor, which coalesces acks into
/// cursor writes. No answer on success (acks are fire-and-forget); an ack
/// for a conversation the user is not in, or past what exists, gets an
/// Error frame.
void on_delivered(self_ptr self, const v1::ClientFrame& frame,
                  frame_format fmt) {
  auto rid = frame.request_id();
  auto& d = frame.delivered();
  if (d.conversation_id() == 0 || d.up_to_sequence() == 0) {
    reply_error(self, rid, fmt, v1::Error::CODE_BAD_FRAME,
                "delivered needs conversation_id and up_to_sequence");
    return;
  }
  // Both at once: the device's own cursor (its actor checks it the same
  // way and its answer is not needed) and the user-level delivered receipt,
  // whose answer carries any refusal.
  caf::anon_send(self->state.device, ack_atom::value, d.conversation_id(),
                 d.up_to_sequence());
  send_receipt(self, d.conversation_id(), 1, d.up_to_sequence(), rid, fmt);
}

/// Flags on the user's own inbox entry; answered with the entry.
void on_set_flags(self_ptr self, const v1::ClientFrame& frame,
                  frame_format fmt) {
  auto rid = frame.request_id();
  auto& fl = frame.set_conversation_flags();
  if (fl.conversation_id() == 0) {
    reply_error(self, rid, fmt, v1::Error::CODE_BAD_FRAME,
                "set_conversation_flags needs conversation_id");
    return;
  }
  auto& st = self->state;
  self
    ->request(st.deps.inbox, timeouts::commit, caf::put_atom::value,
              st.who.user, fl.conversation_id(), fl.archived(), fl.pinned(), fl.muted())
    .then(
      [self, rid, fmt](inbox_entry& e) {
        auto& st = self->state;
        v1::ServerFrame f;
        f.set_request_id(rid);
        to_wire_inbox(e, *f.mutable_inbox_update());
        reply(self, f, fmt);
        // The user's other online devices get the change pushed.
        self->send(st.deps.registry, caf::update_atom::value, st.who.user,
                   st.who.device, e);
      },
      [self, rid, fmt](caf::error& err) { reply_error(self, rid, fmt, err); });
}

/// Read is per user: any device moves the read cursor for all of them.
void on_read(self_ptr self, const v1::ClientFrame& frame, frame_format fmt) {
  auto& r = frame.read();
  if (r.conversation_id() == 0 || r.up_to_sequence() == 0) {
    reply_error(self, frame.request_id(), fmt, v1::Error::CODE_BAD_FRAME,
                "read needs conversation_id and up_to_sequence");
    return;
  }
  // A read implies delivery: the device's own cursor moves too (its actor
  // checks it as for Delivered), and the conversation moves both of the
  // user's cursors.
  caf::anon_send(self->state.device, ack_atom::value, r.conversation_id(),
                 r.up_to_sequence());
  send_receipt(self, r.conversation_id(), 2, r.up_to_sequence(),
               frame.request_id(), fmt);
}

} // namespace parley::gateway::connection_detail
