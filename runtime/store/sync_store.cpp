// store::sync (declared in conversation_store.hpp): one page of a device's
// sync, bounded in items (page_size messages) and in encoded bytes (the
// frame limit, see sync_paging.hpp), resumable from its continuation alone.
// This file checks the request; sync_builder.cpp builds the page.

#include "runtime/store/conversation_store.hpp"

#include <algorithm>
#include <map>

#include "runtime/core/errors.hpp"
#include "runtime/store/sync_builder.hpp"
#include "runtime/store/sync_paging.hpp"

namespace parley::store {

caf::expected<sync_page> sync(kv_backend& kv, user_id user,
                              const sync_request& req, uint64_t recent) {
  auto convs = memberships(kv, user);
  if (!convs)
    return convs.error();
  page_builder b{kv, user, req, recent, std::move(*convs)};
  // A continuation is the whole rest of the request: it wins over the
  // cursors, page size and cursors_only sent with it.
  bool first_page = req.continuation.empty();
  if (!first_page) {
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
    b.pos.page_size = std::clamp<uint32_t>(
      req.page_size ? req.page_size : default_sync_page_size, 1,
      max_sync_page_size);
    b.pos.cursors_only = req.cursors_only;
    if (req.cursors_only)
      b.pos.phase = sync_phase::messages; // no inbox, no receipts
  }
  auto reserve = continuation_reserve(b.pos.cursors);
  if (reserve > max_continuation_bytes)
    return caf::make_error(
      errc::too_large,
      std::to_string(b.pos.cursors.size())
        + " cursors do not fit one continuation (at most "
        + std::to_string(max_continuation_bytes)
        + " bytes): split them over several Syncs, the first as usual (it "
          "carries the inbox), the others with cursorsOnly");
  // A position grants nothing: every cursor is checked against the
  // memberships read for this page. On the first page each is checked
  // against its conversation's head too, while the client can still
  // correct it (a continuation is opaque to it).
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
    if (first_page) {
      auto head = b.head(conv);
      if (!head)
        return head.error();
      if (seq > *head)
        return caf::make_error(errc::cursor_ahead,
                               "cursor past head in conversation "
                                 + std::to_string(conv));
    }
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
