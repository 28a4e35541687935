// The connection actor's Sync: asks the user's actor (actors/user.hpp,
// addressed by user id through the directory) for one page and answers
// with a SyncPage frame within max_server_frame_bytes (the page's encoded
// size is bounded, see runtime/store/sync_paging.hpp). A timeout or an
// unavailable owner answers a retryable error: nothing was written, the
// client asks again.

#include <caf/event_based_actor.hpp>
#include <spdlog/spdlog.h>

#include "runtime/core/timeouts.hpp"
#include "runtime/gateway/connection_detail.hpp"

namespace parley::gateway::connection_detail {

void on_sync(self_ptr self, const v1::ClientFrame& frame, frame_format fmt) {
  auto& st = self->state;
  st.deps.stats->sync_requests++;
  auto rid = frame.request_id();
  auto& s = frame.sync();
  sync_request req;
  for (auto& c : s.cursors()) {
    req.cursor_conversations.push_back(c.conversation_id());
    req.cursor_sequences.push_back(c.after_sequence());
  }
  req.page_size = s.page_size();
  req.continuation = s.continuation();
  req.cursors_only = s.cursors_only();
  req.read_receipts = st.who.read_receipts;
  req.max_frame_bytes = static_cast<uint32_t>(st.deps.max_server_frame_bytes);
  self
    ->request(st.deps.directory, timeouts::ask, sync_atom::value, st.who.user,
              req)
    .then(
      [self, rid, fmt](sync_page& page) {
        auto& st = self->state;
        v1::ServerFrame f;
        f.set_request_id(rid);
        auto* p = f.mutable_sync_page();
        for (auto& item : page.inbox)
          to_wire_inbox(item, *p->add_inbox());
        p->set_total_unread(page.total_unread);
        for (auto& ev : page.receipts)
          to_wire_receipt(ev, *p->add_receipts());
        for (auto& m : page.messages)
          to_wire_message(m, *p->add_messages());
        p->set_continuation(page.continuation);
        auto bytes = encode_server_frame(f, fmt);
        // The store's bounds hold by construction (and by test); should one
        // ever fail, say so rather than send what the client may refuse.
        if (bytes.size() > st.deps.max_server_frame_bytes) {
          spdlog::error("sync page of {} bytes exceeds max-server-frame-bytes "
                        "({}); not sent",
                        bytes.size(), st.deps.max_server_frame_bytes);
          reply_error(self, rid, fmt, v1::Error::CODE_INTERNAL,
                      "sync page exceeds the frame limit");
          return;
        }
        st.deps.stats->frames_out++;
        st.link->send(std::move(bytes), fmt == frame_format::binary);
      },
      [self, rid, fmt](caf::error& err) { reply_error(self, rid, fmt, err); });
}

} // namespace parley::gateway::connection_detail
